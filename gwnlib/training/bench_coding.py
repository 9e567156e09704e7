"""The entropy-coding benchmark (issue 30; a benchmark, not a timed test):
``python -m gwnlib bench coding``.

For one codec and a set of images it measures, per way of coding them, the real payload and
header bits per image next to the model's estimate on the same images, and encode + decode
seconds per image: today's single-image streams (one stream per image and channel,
:func:`gwnlib.model.streams.compress`) and chunks of N images per channel
(:func:`~gwnlib.model.streams.compress_chunk`, all N advancing together through the raster
scan). Every row also says whether the round trip was exact, the hardware and the date.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import torch

from gwnlib.model import streams
from gwnlib.model.entropy import bits
from gwnlib.runtime import check_int, hardware


@torch.no_grad()
def coding_benchmark(codec, x: torch.Tensor, chunks=(1, 16, 256, 1024), single: int | None = None,
                     progress=None) -> list[dict]:  # fmt: skip
    """Rows for ``codec`` (eval mode) on the images ``x``: one for single-image streams on the
    first ``single`` images (all when None), one per chunk size N of ``chunks`` (sizes larger
    than ``len(x)`` are skipped), each coding ``x`` as chunks of N."""
    codec.eval()
    streams.update(codec)
    about = {"codec": getattr(codec, "header_name", codec.name), "hardware": hardware("cpu"),
             "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
             "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    rows = []
    n = len(x) if single is None else check_int("single", single, 1)
    few = x[:n]
    out = codec(few)
    estimate = sum(bits(lik).sum().item() for lik in out["likelihoods"].values())
    start = time.perf_counter()
    coded = codec.compress(few)
    middle = time.perf_counter()
    decoded = codec.decompress(coded["strings"], coded["shapes"])
    end = time.perf_counter()
    strings = [s for values in coded["strings"].values() for s in values]
    payload = sum(len(s) - streams.HEADER_SIZE for s in strings)
    exact = all(torch.equal(decoded[k], out[k]) for k in coded["strings"])
    rows.append({**about, "mode": "single-image streams", "chunk": 1, "images": n,
                 "estimated bits per image": estimate / n,
                 "payload bits per image": 8 * payload / n,
                 "header bits per image": 8 * streams.HEADER_SIZE * len(strings) / n,
                 "encode s per image": (middle - start) / n,
                 "decode s per image": (end - middle) / n, "exact": exact})  # fmt: skip
    out = codec(x)
    estimate = sum(bits(lik).sum().item() for lik in out["likelihoods"].values())
    sizes = [check_int("chunk", size, 1) for size in chunks if size <= len(x)]
    for size in progress(sizes) if progress is not None else sizes:
        payload = header = 0
        encode = decode = 0.0
        exact = True
        for part, first in zip(x.split(size), range(0, len(x), size), strict=True):
            start = time.perf_counter()
            chunk = streams.compress_chunk(codec, part)
            middle = time.perf_counter()
            back = streams.decompress_chunk(codec, chunk["strings"])
            encode, decode = encode + middle - start, decode + time.perf_counter() - middle
            for key, stream in chunk["strings"].items():
                payload += len(stream) - streams.CHUNK_HEADER.size
                header += streams.CHUNK_HEADER.size
                exact &= torch.equal(back[key], out[key][first : first + len(part)])
        rows.append({**about, "mode": "chunks", "chunk": size, "images": len(x),
                     "estimated bits per image": estimate / len(x),
                     "payload bits per image": 8 * payload / len(x),
                     "header bits per image": 8 * header / len(x),
                     "encode s per image": encode / len(x), "decode s per image": decode / len(x),
                     "exact": exact})  # fmt: skip
    return rows

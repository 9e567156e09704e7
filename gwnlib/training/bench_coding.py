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

import os
import time
from datetime import datetime, timezone

import torch

from gwnlib.model import streams
from gwnlib.model.entropy import bits
from gwnlib.runtime import check_int, hardware

#: The rANS coder's fixed cost per stream: CompressAI's coder ends a message by flushing its
#: 64-bit state (``Rans64EncFlush``), whatever the message's length.
FLUSH_BITS = 64


def _estimate(codec, x) -> tuple[dict, dict]:
    out = codec(x)
    return {key: bits(lik).sum().item() for key, lik in out["likelihoods"].items()}, out


@torch.no_grad()
def coding_benchmark(codec, x: torch.Tensor, chunks=(1, 16, 256, 1024), single: int | None = 256,
                     progress=None) -> list[dict]:  # fmt: skip
    """Rows for ``codec`` (eval mode) on the images ``x``: one for today's single-image streams
    (one stream per image and channel, each coded alone) on the first ``single`` images (all
    when None), and one per chunk size N of ``chunks`` (sizes larger than ``len(x)`` are
    skipped) coding the first ``max(N, single)`` images as chunks of N, all N advancing together
    through the raster scan. Each row has the model's estimate on its images, the real payload
    (with the coder's flush), the headers, the payload's excess over estimate plus one flush per
    stream (the per-symbol cost of coding with integer tables), encode and decode seconds per
    image, and whether the round trip was exact."""
    codec.eval()
    streams.update(codec)
    about = {"codec_name": getattr(codec, "header_name", codec.name), "hardware": hardware("cpu"),
             "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
             "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             # the times are only as good as the machine was idle: record how idle it was
             "load average at start": os.getloadavg()[0]}  # fmt: skip
    n = len(x) if single is None else min(len(x), check_int("single", single, 1))
    sizes = [check_int("chunk", size, 1) for size in chunks if size <= len(x)]
    rows = []
    codec.compress(x[:1])  # warm up both paths (first-call allocations) before timing them
    streams.compress_chunk(codec, x[:1])
    few = x[:n]
    estimate, out = _estimate(codec, few)
    start = time.perf_counter()
    coded = codec.compress(few)
    middle = time.perf_counter()
    decoded = codec.decompress(coded["strings"], coded["shapes"])
    end = time.perf_counter()
    payload = {key: 8 * sum(len(s) - streams.HEADER_SIZE for s in values)
               for key, values in coded["strings"].items()}  # fmt: skip
    count = sum(map(len, coded["strings"].values()))
    exact = all(torch.equal(decoded[k], out[k]) for k in coded["strings"])
    rows.append(_row(about, "single-image streams", 1, n, estimate, payload,
                     8 * streams.HEADER_SIZE * count, count, middle - start, end - middle,
                     _transforms(codec, [few]), exact))  # fmt: skip
    for size in progress(sizes) if progress is not None else sizes:
        part_of_x = x[: max(size, n)]
        estimate, out = _estimate(codec, part_of_x)
        payload = dict.fromkeys(estimate, 0)
        header = count = 0
        encode = decode = 0.0
        exact = True
        for part, first in zip(part_of_x.split(size), range(0, len(part_of_x), size), strict=True):
            start = time.perf_counter()
            chunk = streams.compress_chunk(codec, part)
            middle = time.perf_counter()
            back = streams.decompress_chunk(codec, chunk["strings"])
            encode, decode = encode + middle - start, decode + time.perf_counter() - middle
            for key, stream in chunk["strings"].items():
                payload[key] += 8 * (len(stream) - streams.CHUNK_HEADER.size)
                header += 8 * streams.CHUNK_HEADER.size
                count += 1
                exact &= torch.equal(back[key], out[key][first : first + len(part)])
        rows.append(_row(about, "chunks", size, len(part_of_x), estimate, payload, header, count,
                         encode, decode, _transforms(codec, part_of_x.split(size)),
                         exact))  # fmt: skip
    return rows


def _transforms(codec, parts) -> float:
    """Seconds the analysis transforms and both tasks' synthesis transforms take on ``parts``
    (the same batches the row codes): what both paths spend outside the entropy coder."""
    start = time.perf_counter()
    for part in parts:
        latents, _ = codec.encode(part)
        for task in (1, 2):
            codec.decode(codec.decoder_input(latents, task), task)
    return time.perf_counter() - start


def _row(about, mode, chunk, images, estimates, payloads, header, count, encode, decode,
         transforms, exact):  # fmt: skip
    """One row; ``estimates`` and ``payloads`` are bits per channel, summed over the images;
    ``encode``, ``decode`` and ``transforms`` seconds over them."""
    estimate, payload = sum(estimates.values()), sum(payloads.values())
    excess = payload - estimate - FLUSH_BITS * count
    per_channel = {}
    for key in estimates:
        per_channel[f"{key} estimated bits per image"] = estimates[key] / images
        per_channel[f"{key} payload bits per image"] = payloads[key] / images
    return {**about, "mode": mode, "chunk": chunk, "images": images, "streams": count,
            "estimated bits per image": estimate / images,
            "payload bits per image": payload / images, "header bits per image": header / images,
            **per_channel,
            "payload / estimate": payload / estimate if estimate > 0 else float("nan"),
            "excess over estimate and flushes": excess / estimate if estimate > 0 else float("nan"),
            "encode s per image": encode / images, "decode s per image": decode / images,
            "transforms s per image": transforms / images,
            "entropy coding s per image": (encode + decode - transforms) / images,
            "exact": exact}  # fmt: skip


def test_images(config, count: int) -> torch.Tensor:
    """The first ``count`` test inputs of ``config``'s experiment as one CPU batch (the images
    that training's real-bits measurement codes first). ``ValueError`` for a dataset whose
    inputs are not one tensor per batch (the vision tasks), or a test split with fewer."""
    from gwnlib.experiments import Experiment
    from gwnlib.training.train import first_inputs

    check_int("images", count, 1)
    batches = first_inputs(Experiment(config, torch.device("cpu")), count)
    if any(isinstance(batch, tuple) for batch in batches):
        raise ValueError(f"dataset {config.dataset!r}: its inputs are not one image tensor per "
                         "batch; the coding benchmark reads image datasets only")  # fmt: skip
    x = torch.cat(batches) if batches else torch.empty(0)
    if len(x) < count:
        raise ValueError(f"images must be at most the test split's size ({len(x)}); got {count}")
    return x


def coding_suite(runs=(), codec: str | None = None, dataset: str = "synthetic",
                 preset: str = "paper", images: int = 1024, chunks=(1, 16, 256, 1024),
                 single: int | None = 256, progress: bool | None = None) -> list[dict]:  # fmt: skip
    """:func:`coding_benchmark` rows for each trained run folder of ``runs`` (its best
    checkpoint, on its test split's first ``images`` inputs) and, when ``codec`` is given, for
    that codec of ``dataset`` at ``preset`` freshly initialised (seeded; untrained weights, for
    speed at a size no committed run has). Every row names its source (run key or
    ``untrained``) and the run's settings (codec, pmf, beta, eta)."""
    from tqdm.auto import tqdm

    from gwnlib.experiments import Experiment
    from gwnlib.experiments.config import resolve
    from gwnlib.runtime import show_progress
    from gwnlib.training.runs import load_codec, load_config

    cases = [("run", str(folder)) for folder in runs]
    if codec is not None:
        cases.append(("untrained", codec))
    rows = []
    bar = tqdm(cases, desc="coding benchmark", disable=not show_progress(progress))
    for kind, what in bar:
        if kind == "run":
            config = load_config(what)
            model = load_codec(what, device="cpu")
            source = {"source": f"run {config.key}"}
        else:
            config = resolve(dataset, preset, codec=what)
            torch.manual_seed(config.seed)
            model = Experiment(config, torch.device("cpu")).codec().eval()
            source = {"source": "untrained (seeded initialisation)"}
        names = ("dataset", "preset", "codec", "pmf", "law", "beta", "eta", "seed")
        settings = {name: getattr(config, name) for name in names}
        x = test_images(config, images)
        for row in coding_benchmark(model, x, chunks, single):
            rows.append({**source, **settings, **row})
    return rows


def coding_table(rows: list[dict]) -> str:
    """The rows as a Markdown table: per source and mode, estimated, payload and header bits per
    image, payload over estimate, the excess over estimate and flushes, encode and decode ms
    per image, exactness."""
    lines = ["| source | codec | mode | N | images | estimate | payload | header | "
             "payload / estimate | excess | encode ms | decode ms | of which coding ms | exact |",
             "|" + "---|" * 14]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r.get('source', '')} | {r['codec_name']} | {r['mode']} | {r['chunk']} | "
            f"{r['images']} | {r['estimated bits per image']:.1f} | "
            f"{r['payload bits per image']:.1f} | {r['header bits per image']:.1f} | "
            f"{r['payload / estimate']:.4f} | {r['excess over estimate and flushes']:+.2%} | "
            f"{1e3 * r['encode s per image']:.2f} | {1e3 * r['decode s per image']:.2f} | "
            f"{1e3 * r['entropy coding s per image']:.2f} | {r['exact']} |"
        )
    return "\n".join(lines)

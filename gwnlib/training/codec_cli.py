"""``python -m gwnlib codec``: a trained run's codec on the command line, in the spirit of
CompressAI's example codec (issue 30).

``encode --run RUN_DIR IMAGES... -o FILE`` codes images (PNG/JPEG files, read as RGB in [0, 1],
or ``.pt`` tensors [N, C, H, W] / [C, H, W] for other inputs) into a container of chunk streams
(:mod:`gwnlib.model.container`); ``decode FILE --run RUN_DIR --task T -o OUT`` decodes only what
task T's receiver reads and writes its predictions (``.csv``: one class per image, for
classifiers; ``.pt``: the task outputs and latents); ``info FILE`` shows what the file holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

#: Image files ``encode`` reads with PIL; anything else must be a ``.pt`` tensor.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def add_codec_parser(commands) -> None:
    codec = commands.add_parser("codec", help="encode images to a stream file, decode, inspect")
    actions = codec.add_subparsers(dest="action", required=True)
    encode = actions.add_parser("encode", help="code images with a trained run's codec")
    encode.add_argument("--run", required=True, help="a finished run's folder (its best.pt)")
    encode.add_argument("images", nargs="+", help="image files, or .pt tensors")
    encode.add_argument("-o", "--out", required=True, help="the stream file to write")
    encode.add_argument("--chunk", type=int, default=256, help="images per chunk (default 256)")
    decode = actions.add_parser("decode", help="decode one receiver's streams")
    decode.add_argument("file", help="a stream file written by encode")
    decode.add_argument("--run", required=True, help="the run whose codec wrote the file")
    decode.add_argument("--task", type=int, required=True, help="the receiver: 1 or 2")
    decode.add_argument("-o", "--out", required=True, help=".csv (classes) or .pt (tensors)")
    info = actions.add_parser("info", help="channels, images, bits per channel, model")
    info.add_argument("file", help="a stream file written by encode")


def codec_command(args) -> int:
    from gwnlib.files import DamagedFile

    try:
        if args.action == "encode":
            return _encode(args)
        if args.action == "decode":
            return _decode(args)
        return _info(args)
    except (ValueError, DamagedFile, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def read_images(paths) -> torch.Tensor:
    """The images of ``paths`` as one float32 batch [N, C, H, W]: image files as RGB in [0, 1],
    ``.pt`` files as the tensors they hold. All must share one shape (``ValueError`` naming the
    first file that does not)."""
    import numpy as np
    from PIL import Image

    images = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".pt":
            tensor = torch.load(path, weights_only=True)
            if not isinstance(tensor, torch.Tensor) or tensor.dim() not in (3, 4):
                raise ValueError(f"{path}: a .pt input must hold a tensor [N, C, H, W] or "
                                 "[C, H, W]")  # fmt: skip
            images += list(tensor.float()[None] if tensor.dim() == 3 else tensor.float())
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
            images.append(torch.from_numpy(array).permute(2, 0, 1))
        else:
            accepted = ", ".join((*IMAGE_SUFFIXES, ".pt"))
            raise ValueError(f"{path}: not an input this command reads (accepted: {accepted})")
        if images[-1].shape != images[0].shape:
            raise ValueError(f"{path}: shape {tuple(images[-1].shape)} differs from the first "
                             f"input's {tuple(images[0].shape)}")  # fmt: skip
    return torch.stack(images)


def _encode(args) -> int:
    from tqdm.auto import tqdm

    from gwnlib.model import container
    from gwnlib.runtime import check_int, show_progress
    from gwnlib.training.runs import load_codec

    chunk = check_int("chunk", args.chunk, 1)
    codec = load_codec(args.run, device="cpu")
    x = read_images(args.images)
    if x.shape[1] != codec.in_channels:
        raise ValueError(f"the images have {x.shape[1]} channels; the codec of {args.run} reads "
                         f"{codec.in_channels}")  # fmt: skip
    progress = (lambda it: tqdm(list(it), desc="encoding chunks")) if show_progress() else None
    index = container.write(codec, x.split(chunk), args.out, progress=progress)
    size = Path(args.out).stat().st_size
    print(f"{index.images} images in {len(index.counts)} chunk(s) -> {args.out}: {size} bytes, "
          f"{8 * size / index.images:.1f} bits per image")  # fmt: skip
    return 0


def _decode(args) -> int:
    from gwnlib.model import container
    from gwnlib.training.runs import load_codec

    if args.task not in (1, 2):
        raise ValueError(f"task must be 1 or 2; got {args.task}")
    out = Path(args.out)
    if out.suffix not in (".csv", ".pt"):
        raise ValueError(f"-o must name a .csv or .pt file; got {args.out!r}")
    codec = load_codec(args.run, device="cpu")
    decoded = container.decode(codec, args.file, tasks=(args.task,))
    z = decoded[f"z{args.task}_hat"].detach()
    from gwnlib.files import atomic_write

    if out.suffix == ".csv":
        if z.dim() != 2:
            raise ValueError(f"task {args.task} outputs {tuple(z.shape[1:])} per image, not class "
                             "scores: write a .pt file instead")  # fmt: skip
        lines = ["image,prediction"] + [f"{i},{c}" for i, c in enumerate(z.argmax(1).tolist())]
        atomic_write(out, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    else:
        atomic_write(out, lambda f: torch.save({k: v.detach() for k, v in decoded.items()}, f))
    read = [key for key in decoded if key.startswith("y")]
    print(f"receiver {args.task}: decoded {', '.join(read)} of {len(z)} images -> {out}")
    return 0


def _info(args) -> int:
    from gwnlib.model import container

    print(json.dumps(container.info(args.file), indent=2))
    return 0

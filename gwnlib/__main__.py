"""Command line of gwnlib.

``python -m gwnlib book`` executes the chapters and builds the book (``python3 make.py book`` at
the top of the checkout creates the environment first and then runs this). ``python -m gwnlib
sweep NAME`` trains a chapter's sweep outside the notebook, on this machine or a Slurm cluster,
e.g. ``python -m gwnlib sweep synthetic --preset paper --executor slurm --gpus 1 --timeout-min
600 --partition gpu --export``. ``python -m gwnlib bench synthetic`` measures throughput.
``python -m gwnlib download mnist coco_small`` fetches the data of the smoke build.
``python -m gwnlib install-cells`` rewrites each chapter's install cell for ``_config.yml``'s
repository (:mod:`gwnlib.analysis.publish`). ``python -m gwnlib codec encode/decode/info`` is the
command-line codec of a trained run (:mod:`gwnlib.training.codec_cli`).
"""

from __future__ import annotations

import argparse
import sys

from gwnlib import DEVICES, PRESETS
from gwnlib.training.cli import (
    add_bench_parser,
    add_sweep_parser,
    bench,
    number_or_text,
    sweep_command,
)
from gwnlib.training.codec_cli import add_codec_parser, codec_command


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (the workflows' test checks the commands they run on it)."""
    parser = argparse.ArgumentParser(prog="python -m gwnlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    book = commands.add_parser("book", help="execute every chapter with papermill and build HTML")
    book.add_argument(
        "--preset", default="smoke", help=f"one of {', '.join(PRESETS)} (default: smoke)"
    )
    book.add_argument(
        "--device", default="auto", help=f"one of {', '.join(DEVICES)} (default: auto)"
    )
    book.add_argument("--out", default=None, help="build folder (default: _build at the top)")
    book.add_argument(
        "--only", nargs="+", metavar="CHAPTER", help="execute only these chapters (file names)"
    )
    book.add_argument(
        "--no-html", action="store_true", help="execute and write the status page, skip HTML"
    )
    book.add_argument(
        "--student",
        action="store_true",
        help="the student edition: exercise solutions hidden (default out: _build/student)",
    )
    book.add_argument(
        "--repository",
        metavar="URL",
        help="the book's repository for this build (default: _config.yml's): Colab and "
        "JupyterHub launch buttons, and the chapters' install cell, use it",
    )
    book.add_argument("--branch", default="main", help="with --repository (default: main)")
    book.add_argument(
        "--jupyterhub",
        metavar="URL",
        help="with --repository: a JupyterHub with nbgitpuller, for its launch button",
    )
    book.add_argument(
        "--force",
        action="store_true",
        help="execute every chapter, even those whose executed copy of an earlier build is current",
    )
    commands.add_parser(
        "install-cells",
        help="write each chapter's install cell for _config.yml's repository (gwnlib.analysis."
        "publish)",
    )
    add_bench_parser(commands)
    add_sweep_parser(commands)
    add_codec_parser(commands)
    _add_curve_parser(commands)
    assign = commands.add_parser(
        "assign", help="build the autograded course assignments (student, autograder, solutions)"
    )
    assign.add_argument(
        "--out", default="_build/assignments", help="output folder (default: _build/assignments)"
    )
    assign.add_argument(
        "--only", nargs="+", metavar="NAME", help="build only these assignments (default: all)"
    )
    download = commands.add_parser(
        "download", help="fetch datasets into the data root (skipping what is already there)"
    )
    download.add_argument(
        "datasets",
        nargs="+",
        choices=DOWNLOADS,
        help="mnist: MNIST through torchvision (coloured MNIST chapters); coco_small: the smoke "
        "preset's COCO subset (gwnlib.data.coco.download_coco_small)",
    )
    download.add_argument("--root", default=None, help="data root (default: GWN_DATA_DIR or data/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.command == "assign":
        return _assign(args)
    if args.command == "download":
        return _download(args)

    if args.command == "sweep":
        return sweep_command(args)
    if args.command == "curve":
        return _curve(args)
    if args.command == "bench":
        return bench(args)
    if args.command == "codec":
        return codec_command(args)
    if args.command == "install-cells":
        return _install_cells()

    from gwnlib.analysis import book as book_module
    from gwnlib.analysis.publish import Repository

    kwargs = {"out": args.out} if args.out else {}
    if args.repository:
        kwargs["repository"] = Repository(args.repository, args.branch, args.jupyterhub)
    if args.student and not args.out:  # beside the full edition, not over it
        kwargs["out"] = book_module.PROJECT_ROOT / "_build" / "student"
    try:
        runs, index = book_module.build(
            preset=args.preset,
            device=args.device,
            only=args.only,
            html=not args.no_html,
            student=args.student,
            force=args.force,
            **kwargs,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [run for run in runs if not run.ok]
    for run in failed:
        print(f"chapter {run.file} failed: {run.error}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(runs)} chapter(s) failed; HTML not built", file=sys.stderr)
        return 1
    if index is not None:
        print(f"Book built: {index}")
    return 0


#: What ``python -m gwnlib download`` fetches.
DOWNLOADS = ("mnist", "coco_small")


def _download(args) -> int:
    from pathlib import Path

    from gwnlib.runtime import data_dir

    root = Path(args.root) if args.root else data_dir()
    try:
        for name in dict.fromkeys(args.datasets):
            if name == "mnist":
                from gwnlib.data.colored_mnist import mnist_images

                for train in (True, False):
                    mnist_images(root, train, download=True)
                print(f"MNIST: {root / 'MNIST'}")
            else:
                from gwnlib.data.coco import download_coco_small

                print(f"COCO subset: {download_coco_small(root / 'coco_small')}")
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _install_cells() -> int:
    import yaml

    from gwnlib.analysis import publish
    from gwnlib.analysis.book import PROJECT_ROOT, chapters

    config = yaml.safe_load((PROJECT_ROOT / "_config.yml").read_text(encoding="utf-8"))
    repository = publish.repository_of(config)
    cell = publish.install_cell(repository, PROJECT_ROOT / "requirements-lock.txt")
    changed = [nb.name for nb in chapters() if publish.write_install_cell(nb, cell)]
    print(f"install cell for {repository.url if repository else 'no repository'}: "
          f"{len(changed)} chapter(s) changed {' '.join(changed)}")  # fmt: skip
    return 0


def _add_curve_parser(commands) -> None:
    from gwnlib.experiments import DATASETS

    curve = commands.add_parser(
        "curve", help="validation metrics through one run's first epoch (train.learning_curve)"
    )
    curve.add_argument("dataset", choices=DATASETS)
    curve.add_argument("--preset", default="smoke", help=f"one of {', '.join(PRESETS)}")
    curve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run setting, e.g. --set codec=shared --set train_size=none (none: unset)",
    )
    curve.add_argument("--every", type=int, default=125, help="optimiser steps between evaluations")
    curve.add_argument("--device", default="cpu", help=f"one of {', '.join(DEVICES)}")
    curve.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    curve.add_argument(
        "--out", required=True, help="CSV file; rows are added with the settings, hardware, date"
    )


def _curve(args) -> int:
    import dataclasses
    from datetime import datetime, timezone
    from pathlib import Path

    import pandas as pd
    import torch

    from gwnlib.experiments import resolve
    from gwnlib.files import atomic_write
    from gwnlib.runtime import check_int, hardware
    from gwnlib.runtime import device as resolve_device
    from gwnlib.training.train import learning_curve

    try:
        settings = {}
        for item in args.set:
            name, sep, value = item.partition("=")
            if not sep or not name or not value:
                raise ValueError(f"--set must look like NAME=VALUE; got {item!r}")
            settings[name] = None if value.lower() == "none" else number_or_text(value)
        if args.threads is not None:
            torch.set_num_threads(check_int("threads", args.threads))
        config = resolve(args.dataset, args.preset, **settings)
        dev = resolve_device(args.device)
        rows = learning_curve(config, every=args.every, device=args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    about = {
        **{k: v for k, v in dataclasses.asdict(config).items() if v is not None},
        "hardware": hardware(dev),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    table = pd.DataFrame([{**about, **row} for row in rows])
    path = Path(args.out)
    if path.is_file():
        table = pd.concat([pd.read_csv(path), table], ignore_index=True)
    text = table.to_csv(index=False)
    atomic_write(path, lambda f: f.write(text.encode()))
    last = rows[-1]
    shown = {k: round(v, 4) for k, v in last.items() if isinstance(v, float)}
    print(f"{len(rows)} evaluations written to {path}; last: {shown}")
    return 0


def _assign(args) -> int:
    from gwnlib.analysis import assign

    try:
        built = assign.build(args.out, args.only)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for item in built:
        print(f"{item.name}: {len(item.points)} questions, {item.total:g} points")
        print(f"  student:    {item.student}")
        print(f"  autograder: {item.autograder}")
        print(f"  solutions:  {item.solutions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

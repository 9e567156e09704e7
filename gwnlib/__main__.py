"""Command line: ``python -m gwnlib book`` executes the chapters and builds the book.

``python3 make.py book`` (at the top of the checkout) creates the environment first and then runs
this; inside an environment that already has gwnlib, call it directly.
"""

from __future__ import annotations

import argparse
import sys

from gwnlib import DEVICES, PRESETS


def main(argv: list[str] | None = None) -> int:
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
    bench = commands.add_parser("bench", help="measure throughput (see gwnlib.bench)")
    bench.add_argument("what", choices=["synthetic"], help="what to measure")
    bench.add_argument("--batch-size", type=int, default=100)
    bench.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)}")
    bench.add_argument("--side", type=int, default=64, help="grid side of the source (paper: 64)")
    args = parser.parse_args(argv)

    if args.command == "bench":
        from gwnlib.bench import synthetic_batches

        result = synthetic_batches(args.batch_size, args.device, args.side)
        for key, value in result.items():
            print(f"{key:>14}: {value}")
        return 0

    from gwnlib import book as book_module

    kwargs = {"out": args.out} if args.out else {}
    try:
        runs, index = book_module.build(
            preset=args.preset, device=args.device, only=args.only, html=not args.no_html, **kwargs
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


if __name__ == "__main__":
    sys.exit(main())

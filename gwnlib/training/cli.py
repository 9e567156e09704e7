"""The command line of training: ``python -m gwnlib sweep`` and ``python -m gwnlib bench``
(parsers and commands; :mod:`gwnlib.__main__` dispatches to them). Chapter "Training and
sweeps" shows both.
"""

from __future__ import annotations

import sys

from gwnlib.runtime import DEVICES, PRESETS


def add_bench_parser(commands) -> None:
    bench = commands.add_parser("bench", help="measure throughput (see gwnlib.training.bench)")
    bench.add_argument(
        "what",
        choices=["synthetic", "train", "coding", "report"],
        help="source batches, the training step, entropy coding (single-image streams against "
        "chunks), or a report of saved training rows",
    )
    bench.add_argument(
        "files",
        nargs="*",
        help="report: JSON files of rows (bench train --out FILE); coding: trained run folders "
        "(none: --codec of --dataset at --preset, untrained)",
    )
    bench.add_argument(
        "--codec",
        default="shared",
        help="codec(s) of the training benchmark (comma list), or 'all'",
    )
    bench.add_argument("--dataset", default="synthetic", help="dataset of the training benchmark")
    bench.add_argument("--preset", default="paper", help="size of the training benchmark")
    bench.add_argument("--amp", default="auto", help="auto, bf16 or fp32 (training)")
    bench.add_argument(
        "--variant",
        default="eager",
        help="execution variant(s) (gwnlib.training.bench.VARIANTS; comma list), or 'all'",
    )
    bench.add_argument("--points", type=int, default=5, help="points of the fused variant")
    bench.add_argument("--windows", type=int, default=3, help="timed windows (median reported)")
    bench.add_argument("--steps", type=int, default=3, help="steps per timed window")
    bench.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    bench.add_argument(
        "--out",
        default=None,
        help="also write the rows to this JSON file (training: after every case; cases it "
        "holds from the same settings are not measured again)",
    )
    bench.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size (synthetic batches: default 100; training: overrides the preset's)",
    )
    bench.add_argument(
        "--lr", type=float, default=None, help="training: learning rate (overrides the preset's)"
    )
    bench.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's, one per core)"
    )
    bench.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)}")
    bench.add_argument("--side", type=int, default=64, help="grid side of the source (paper: 64)")
    bench.add_argument("--images", type=int, default=1024, help="coding: test images per codec")
    bench.add_argument(
        "--chunks", default="1,16,256,1024", help="coding: chunk sizes (comma list of images)"
    )
    bench.add_argument(
        "--single",
        type=int,
        default=256,
        help="coding: images coded as single-image streams (today's per-sample path; 0: all); "
        "chunks of N code max(N, this) images",
    )


def bench(args) -> int:
    import torch

    from gwnlib.model.codecs import CODECS
    from gwnlib.training.bench import VARIANTS, synthetic_batches, training_suite
    from gwnlib.training.bench_report import report

    if args.what == "report":
        return bench_report(args.files)
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads must be >= 1; got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    if args.what == "coding":
        return bench_coding(args)
    if args.files:
        print(f"error: files are for 'bench report', not 'bench {args.what}'", file=sys.stderr)
        return 2
    if args.what == "synthetic":
        rows = [synthetic_batches(args.batch_size or 100, args.device, args.side)]
    else:
        codecs = CODECS if args.codec == "all" else tuple(args.codec.split(","))
        variants = VARIANTS if args.variant == "all" else tuple(args.variant.split(","))
        for name, value, accepted in (
            ("codec", codecs, CODECS),
            ("variant", variants, VARIANTS),
        ):
            unknown = [v for v in value if v not in accepted]
            if unknown:
                print(
                    f"error: --{name} must be 'all' or a comma list of {', '.join(accepted)}; "
                    f"got {unknown[0]!r}",
                    file=sys.stderr,
                )
                return 2
        rows = training_suite(
            codecs,
            variants,
            dataset=args.dataset,
            preset=args.preset,
            device=args.device,
            amp=args.amp,
            points=args.points,
            windows=args.windows,
            steps=args.steps,
            warmup=args.warmup,
            out=args.out,
            **{
                name: value
                for name, value in (("batch_size", args.batch_size), ("lr", args.lr))
                if value is not None
            },
        )
    if args.what == "train":
        print(report(rows))
    else:
        for row in rows:
            for key, value in row.items():
                print(f"{key:>14}: {value}")
    if args.out and args.what == "synthetic":  # the training suite writes as it goes
        from pathlib import Path

        from gwnlib.files import write_json

        write_json(Path(args.out), rows)
    return 0 if all("error" not in row for row in rows) else 1


def bench_coding(args) -> int:
    """``bench coding``: :func:`gwnlib.training.bench_coding.coding_suite` as a table, and as
    JSON rows with ``--out`` (:func:`bench` has set ``--threads``)."""
    from gwnlib.training.bench_coding import coding_suite, coding_table

    try:
        chunks = tuple(int(size) for size in args.chunks.split(","))
    except ValueError:
        print(f"error: --chunks must be a comma list of integers; got {args.chunks!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        rows = coding_suite(
            runs=args.files,
            codec=None if args.files else args.codec,
            dataset=args.dataset,
            preset=args.preset,
            images=args.images,
            chunks=chunks,
            single=args.single or None,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(coding_table(rows))
    if args.out:
        from pathlib import Path

        from gwnlib.files import write_json

        write_json(Path(args.out), rows)
    return 0


def add_sweep_parser(commands) -> None:
    from gwnlib.training.accel import AMP_MODES
    from gwnlib.training.executors import CLUSTERS
    from gwnlib.training.sweep import EXECUTORS, SWEEPS

    sweep = commands.add_parser(
        "sweep", help="train a chapter's sweep (resumable; finished points are skipped)"
    )
    sweep.add_argument("name", choices=sorted(SWEEPS), help="which chapter's sweep")
    sweep.add_argument("--preset", default="smoke", help=f"one of {', '.join(PRESETS)}")
    sweep.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)}")
    sweep.add_argument(
        "--executor", default=None, choices=EXECUTORS, help="default: sequential (or --budget's)"
    )
    sweep.add_argument("--workers", type=int, default=None, help="processes (executor pool)")
    sweep.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="NAME=V1[,V2...]",
        help="only points with these settings, e.g. --where codec=shared,joint",
    )
    sweep.add_argument("--root", default=None, help="run directories (default: GWN_RUNS_DIR)")
    sweep.add_argument("--amp", default="auto", choices=AMP_MODES)
    sweep.add_argument("--compile", action="store_true", help="torch.compile the codec")
    sweep.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="train only the pending points that fit SECONDS on this device, fused or one after "
        "another (gwnlib.training.plan.plan), from the throughputs in --bench; points already "
        "in the committed results are skipped",
    )
    sweep.add_argument(
        "--bench", default=None, metavar="FILE", help="benchmark rows (bench train --out FILE)"
    )
    sweep.add_argument(
        "--overrun",
        action="store_true",
        help="with --budget, when not even one point fits: train the quickest anyway, on the "
        "chance that early stopping ends it in time (default: train nothing)",
    )
    sweep.add_argument(
        "--channels-last", action="store_true", help="train in channels-last (NHWC) memory"
    )
    sweep.add_argument(
        "--list",
        action="store_true",
        help="list the points and their status, train nothing (with --export: export the "
        "finished ones)",
    )
    sweep.add_argument(
        "--export",
        nargs="?",
        const="",
        default=None,
        metavar="FOLDER",
        help="write the results CSV (default folder: book/results)",
    )
    slurm = sweep.add_argument_group("slurm (executor slurm, through submitit)")
    slurm.add_argument(
        "--cluster",
        default=None,
        choices=CLUSTERS,
        help="default: slurm when sbatch exists, else local processes",
    )
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--gpus", type=int, default=None, help="GPUs per job")
    slurm.add_argument("--cpus", type=int, default=None, help="CPUs per job")
    slurm.add_argument("--mem-gb", type=float, default=None)
    slurm.add_argument("--timeout-min", type=int, default=None, help="time limit per job")
    slurm.add_argument("--parallelism", type=int, default=None, help="array jobs at once")
    slurm.add_argument("--no-array", action="store_true", help="one job per point")
    slurm.add_argument("--no-wait", action="store_true", help="submit and return")
    slurm.add_argument(
        "--requeues",
        type=int,
        default=None,
        metavar="N",
        help="times a job stopped at its time limit is requeued, to resume from its last.pt "
        "(submitit's max_num_timeout; an integer >= 0; default 3); preempted jobs are "
        "requeued whatever N is",
    )
    slurm.add_argument(
        "--signal-delay",
        type=int,
        default=None,
        metavar="SECONDS",
        help="Slurm signals a job this long before its time limit, so that it requeues itself "
        "(submitit's signal_delay_s; 1 to 65535 and less than --timeout-min; default 90)",
    )
    sweep.set_defaults(parser=sweep)


def parse_where(items: list[str]) -> dict:
    where = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"--where must look like NAME=VALUE[,VALUE...]; got {item!r}")
        if name in where:
            raise ValueError(
                f"--where names {name!r} twice; give its values once: --where {name}=A,B"
            )
        where[name] = [number_or_text(v) for v in values.split(",")]
    return where


def number_or_text(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def bench_report(files: list[str]) -> int:
    """Print saved training-benchmark rows, with the synthetic paper sweep's cost when they
    cover the synthetic source at the paper's size."""
    from pathlib import Path

    from gwnlib.files import read_json
    from gwnlib.training.bench import BENCH_REMEDY
    from gwnlib.training.bench_report import measured_at, report
    from gwnlib.training.sweep import named

    if not files:
        print("error: bench report needs one or more JSON files of rows", file=sys.stderr)
        return 2
    for name in files:
        path = Path(name)
        if not path.is_file():
            print(f"error: no such file: {path}", file=sys.stderr)
            return 2
        try:
            rows = read_json(path, BENCH_REMEDY)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{path}:")
        print(report(rows, named("synthetic", "paper") if measured_at(rows) else None))
    return 0


def sweep_command(args) -> int:
    from gwnlib.training.sweep import named

    slurm = {
        key: value
        for key, value in {
            "slurm_partition": args.partition,
            "gpus_per_node": args.gpus,
            "cpus_per_task": args.cpus,
            "mem_gb": args.mem_gb,
            "timeout_min": args.timeout_min,
            "slurm_array_parallelism": args.parallelism,
            "slurm_max_num_timeout": args.requeues,
            "slurm_signal_delay_s": args.signal_delay,
        }.items()
        if value is not None
    }
    try:
        sweep = named(args.name, args.preset, root=args.root)
        where = parse_where(args.where)
        if where:
            sweep = sweep.select(**where)
            if not sweep.configs():
                chosen = " ".join(f"{k}={','.join(map(str, v))}" for k, v in where.items())
                raise ValueError(f"--where {chosen} matches no point of the grid (see --list)")
        if args.budget is not None:
            sweep, args.executor = _budgeted(sweep, args)
        elif args.bench is not None or args.overrun:
            raise ValueError("--bench and --overrun are read only with --budget")
        args.executor = args.executor or "sequential"
        if args.list:
            print(sweep.status().to_string(index=False))
            if args.export is not None:  # the finished points, nothing trained
                _export(sweep, args.export)
            return 0
        options = {}
        if args.executor == "slurm":
            options = {
                "cluster": args.cluster,
                "array": not args.no_array,
                "wait": not args.no_wait,
                "slurm": slurm,
            }
        elif slurm or args.cluster or args.no_array or args.no_wait:
            raise ValueError("the slurm options need --executor slurm")
        if args.executor == "pool":
            options["workers"] = args.workers
        elif args.workers is not None:
            raise ValueError("--workers needs --executor pool")
        table = sweep.run(
            args.executor,
            device=args.device,
            amp=args.amp,
            compile=args.compile,
            channels_last=args.channels_last,
            **options,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    columns = [
        c
        for c in (
            "codec",
            "pmf",
            "beta",
            "eta",
            "r0",
            "r1",
            "r2",
            "rate_transmit",
            "rate_receive",
            "d1",
            "d2",
            "acc1",
            "acc2",
        )
        if c in table
    ]
    if len(table):
        print(table[columns].to_string(index=False))
    print(f"{len(table)} of {len(sweep.configs())} point(s) finished in {sweep.root}")
    if args.export is not None:
        _export(sweep, args.export)
    return 0


def _budgeted(sweep, args):
    """``sweep`` cut to the points :func:`gwnlib.training.plan.plan` says fit ``--budget`` seconds
    on
    this device, and the executor it chose; the plan is printed. Points whose results are
    already committed are left out."""
    from pathlib import Path

    from gwnlib.files import read_json
    from gwnlib.runtime import device, hardware
    from gwnlib.training.bench import BENCH_REMEDY
    from gwnlib.training.bench_report import measured_at
    from gwnlib.training.plan import FINISH_SECONDS, plan

    if args.executor is not None:
        raise ValueError(
            "--budget chooses the executor itself (fused or sequential); drop --executor"
        )
    if args.bench is None:
        raise ValueError("--budget needs --bench FILE: the throughputs measured on this device")
    if not args.budget > 0:
        raise ValueError(f"--budget must be a number of seconds > 0; got {args.budget}")
    path = Path(args.bench)
    if not path.is_file():
        raise ValueError(f"--bench: no such file: {path}")
    here = hardware(device(args.device))
    rows = measured_at(read_json(path, BENCH_REMEDY), sweep.dataset, sweep.preset)
    rows = [row for row in rows if row.get("hardware") == here]
    if not rows:
        raise ValueError(f"{path} has no rows measured on {here} at the {sweep.dataset} "
                         f"{sweep.preset} size: run `bench train --device {args.device} --out "
                         f"{path}` here first")  # fmt: skip
    # Points the committed results already hold were finished on another machine (an earlier
    # lease, whose run directories are gone): not worth the budget again.
    committed = sweep.load()
    done = set() if committed is None else set(committed.key)
    pending = [config for config in sweep.pending() if config.key not in done]
    if done:
        print(f"{len(done)} point(s) already in {sweep.results_file()}: not trained again")
    if not pending:
        print("plan: every point is finished; nothing to train", flush=True)
        return sweep.select(key=[]), "sequential"
    chosen = plan(pending, rows, args.budget, finish=FINISH_SECONDS)
    print(f"plan for {args.budget:.0f} s: {chosen}", flush=True)
    if not chosen.fits and not args.overrun:
        # Measured on an H200 lease: a synthetic paper point was at epoch 17 of 100 after 7
        # minutes, its validation loss still falling; early stopping did not save it.
        print("plan: nothing trained, since no point can reach its last epoch in the budget "
              "(--overrun trains the quickest anyway, in case early stopping ends it sooner)",
              flush=True)  # fmt: skip
        return sweep.select(key=[]), "sequential"
    return sweep.select(key=[config.key for config in chosen.configs]), chosen.executor


def _export(sweep, folder: str) -> None:
    path = sweep.export(folder or None)
    if path.is_file():
        print(f"results written to {path}")
    else:
        print("no finished point: nothing exported")

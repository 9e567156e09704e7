#!/usr/bin/env python3
"""Set up gwn-book on a fresh machine and run its two jobs. Needs only Python >= 3.10 with pip.

    python3 make.py book [--preset smoke|short|paper] [--device auto|cpu|cuda] [--force]
                         [--repository URL [--branch B]] [...]
    python3 make.py test [pytest arguments]
    python3 make.py assign [--out DIR] [--only NAME ...]   the autograded course assignments
    python3 make.py env      create or update the environment only
    python3 make.py lock     write requirements-lock.txt from the (tested) environment

The environment is a virtual environment in ``.venv`` (or the folder named by ``GWN_VENV``). It is
created when missing and re-synchronised whenever ``pyproject.toml`` or ``requirements-lock.txt``
change: gwnlib is installed in editable mode with its ``book``, ``test`` and ``teach`` extras,
every package constrained to the tested pins of ``requirements-lock.txt``. Conda users can
instead create the environment from ``environment.yml`` and run ``python -m gwnlib book`` /
``python -m pytest``.

When ``GWN_DATA_DIR`` is unset and a folder ``../shared/data`` (the offline copy of MNIST and a
small COCO subset used on machines without internet) exists beside the checkout, both jobs use it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LOCK = ROOT / "requirements-lock.txt"
EXTRAS = "book,test,teach"
STAMP = ".gwn-env-stamp"
#: The jobs of ``python3 make.py COMMAND`` (the workflows' test checks theirs against it).
COMMANDS = ("book", "test", "assign", "env", "lock")

if sys.version_info < (3, 10):  # noqa: UP036  (this script runs under any python3)
    sys.exit(f"gwn-book needs Python >= 3.10; this is {sys.version.split()[0]}")


def venv_dir() -> Path:
    return Path(os.environ.get("GWN_VENV") or ROOT / ".venv").resolve()


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def fingerprint() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in (ROOT / "pyproject.toml", LOCK):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_env() -> Path:
    """Create the environment if it is missing, re-sync it if its inputs changed; return python."""
    env = venv_dir()
    python = venv_python(env)
    stamp = env / STAMP
    wanted = fingerprint()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    if not python.exists():
        print(f"Creating the environment in {env} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    tested = locked_python()
    here = ".".join(map(str, sys.version_info[:2]))
    if tested == here:
        print("Installing gwnlib and its tested dependencies (a few minutes the first time) ...")
        cmd += ["-c", str(LOCK)]
    else:
        print(
            f"Note: requirements-lock.txt was tested with Python {tested}, this is Python {here}: "
            "installing from the version ranges of pyproject.toml instead (untested versions)."
        )
    run([*cmd, "-e", f"{ROOT}[{EXTRAS}]"])
    stamp.write_text(wanted)
    return python


def locked_python() -> str:
    """The Python version (major.minor) that requirements-lock.txt was frozen and tested with."""
    for line in LOCK.read_text().splitlines():
        if line.startswith("# Frozen on") and "Python " in line:
            return ".".join(line.split("Python ", 1)[1].split(";")[0].strip().split(".")[:2])
    sys.exit(f"{LOCK.name} has no '# Frozen on ... with Python X.Y' line; regenerate it")


def offline_data() -> None:
    """Point GWN_DATA_DIR at ../shared/data when it is unset and that folder exists."""
    shared = ROOT.parent / "shared" / "data"
    if not os.environ.get("GWN_DATA_DIR") and shared.is_dir():
        os.environ["GWN_DATA_DIR"] = str(shared)
        print(f"Using the offline data in {shared} (GWN_DATA_DIR)", flush=True)


def run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def lock(python: Path) -> None:
    frozen = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    pins = sorted(
        (line for line in frozen.splitlines() if "==" in line and not line.startswith("gwnlib")),
        key=str.lower,
    )
    header = [
        "# Tested pins of gwn-book's environment, used as a pip constraints file by make.py:",
        "#   pip install -c requirements-lock.txt -e '.[book,test,teach]'",
        "# Regenerate with `python3 make.py lock` once the test command passes on new versions.",
        f"# Frozen on {sys.platform} with Python {sys.version.split()[0]}; platform-only packages",
        "# (nvidia-*, triton) are constraints that other platforms simply do not install.",
    ]
    LOCK.write_text("\n".join(header + pins) + "\n")
    print(f"Wrote {len(pins)} pins to {LOCK.name}")


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.exit(f"unknown command {command!r}; use one of: {', '.join(COMMANDS)}")
    python = ensure_env()
    if command == "env":
        print(f"Environment ready: {python}")
    elif command == "lock":
        lock(python)
    elif command == "book":
        offline_data()
        run([str(python), "-m", "gwnlib", "book", *rest])
    elif command == "assign":
        run([str(python), "-m", "gwnlib", "assign", *rest])
    else:
        offline_data()
        run([str(python), "-m", "pytest", *rest])


if __name__ == "__main__":
    main(sys.argv[1:])

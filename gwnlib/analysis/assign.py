"""Course assignments: autograded notebooks for four chapters, built with Otter Assign.

The sources in ``assignments/`` are Otter Assign master notebooks (format v1): each question a
``# BEGIN QUESTION`` block with its points, solutions between ``# BEGIN SOLUTION`` and
``# END SOLUTION``, public tests students run with ``grader.check`` and ``# HIDDEN`` tests only
the autograder runs. :func:`build` stages each source with the committed results it reads
(:data:`ASSIGNMENTS`), runs ``otter assign`` on it (which also checks that the solutions pass
every test) and collects, per assignment:

- ``student/NAME.ipynb`` (with the public tests in ``student/tests/``): what students get,
  without solutions or hidden tests;
- ``autograder/NAME-autograder_*.zip``: the bundle ``otter run`` (locally) or Gradescope
  grades with;
- ``solutions/NAME.ipynb``: the solution notebook, for instructors.

Run it with ``python -m gwnlib assign [--out DIR] [--only NAME ...]`` or
``python3 make.py assign``; the book's "For instructors" page says how to hand out and grade.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from gwnlib.runtime import PROJECT_ROOT, results_dir, show_progress

#: Where the master notebooks live.
SOURCES = PROJECT_ROOT / "assignments"
#: Each assignment: its chapter and the committed results files it reads (copied beside it).
ASSIGNMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "theory": ("gray_wyner_theory", ()),
    "anatomy": ("anatomy", ()),
    "training": ("training", ("synthetic-short.csv", "synthetic_seeds-short.csv")),
    "colored_mnist": ("colored_mnist", ("colored_mnist-short.csv",)),
}


@dataclass
class Built:
    """What :func:`build` wrote for one assignment."""

    name: str
    student: Path  # the student notebook
    autograder: Path  # the autograder zip
    solutions: Path  # the solution notebook
    points: dict[str, float]  # points per question

    @property
    def total(self) -> float:
        return sum(self.points.values())


def check_names(names) -> list[str]:
    """``names`` (None: all) as a list, each one of :data:`ASSIGNMENTS`."""
    if names is None:
        return list(ASSIGNMENTS)
    unknown = [name for name in names if name not in ASSIGNMENTS]
    if unknown or not names:
        given = ", ".join(unknown) or "none"
        raise ValueError(f"assignment must be one of {', '.join(ASSIGNMENTS)}; got {given}")
    return list(names)


def points(source: str | Path) -> dict[str, float]:
    """Points per question of a master notebook, read from its ``# BEGIN QUESTION`` cells."""
    import yaml

    out = {}
    for cell in json.loads(Path(source).read_text())["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "raw" and text.lstrip().startswith("# BEGIN QUESTION"):
            config = yaml.safe_load(text.split("\n", 1)[1])
            out[config["name"]] = float(config.get("points", 1))
    return out


def build(
    out: str | Path = "_build/assignments", names=None, progress: bool | None = None
) -> list[Built]:
    """Build student, autograder and solution files for ``names`` (default: every assignment)
    under ``out/NAME/``. Each build replaces that folder whole, or leaves it as it was: Otter
    writes into a temporary folder first. ``otter assign`` runs the solutions against every
    test and fails the build where one does not pass."""
    names = check_names(names)
    out = Path(out)
    built = []
    for name in tqdm(
        names, desc="assignments", unit="notebook", disable=not show_progress(progress)
    ):
        _, files = ASSIGNMENTS[name]
        source = SOURCES / f"{name}.ipynb"
        with tempfile.TemporaryDirectory(prefix=f"gwn-assign-{name}-") as tmp:
            staged = Path(tmp) / "source"
            staged.mkdir()
            shutil.copy2(source, staged / source.name)
            for file in files:
                shutil.copy2(results_dir() / file, staged / file)
            dist = Path(tmp) / "dist"
            done = subprocess.run(
                [sys.executable, "-m", "otter", "assign", source.name, str(dist)],
                cwd=staged,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"otter assign failed on {source}:\n{(done.stdout + done.stderr)[-4000:]}"
                )
            (dist / "solutions").mkdir()
            shutil.move(dist / "autograder" / source.name, dist / "solutions" / source.name)
            for file in files:  # the solution notebook reads the same data
                shutil.copy2(staged / file, dist / "solutions" / file)
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(dist, target)
        (zipped,) = sorted((target / "autograder").glob(f"{name}-autograder_*.zip"))
        built.append(
            Built(
                name,
                target / "student" / source.name,
                zipped,
                target / "solutions" / source.name,
                points(source),
            )
        )
    return built


def grade(autograder: str | Path, notebook: str | Path) -> dict[str, float]:
    """Score ``notebook`` with an autograder zip through ``otter run`` (locally, no Docker):
    ``{question: score}``, hidden tests included."""
    with tempfile.TemporaryDirectory(prefix="gwn-grade-") as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "otter", "run", "-a", str(autograder), "-o", tmp, str(notebook)],
            capture_output=True,
            text=True,
        )
        results = Path(tmp) / "results.json"
        if done.returncode != 0 or not results.is_file():
            raise RuntimeError(
                f"otter run failed on {notebook}:\n{(done.stdout + done.stderr)[-4000:]}"
            )
        tests = json.loads(results.read_text())["tests"]
    return {test["name"]: float(test["score"]) for test in tests if "score" in test}

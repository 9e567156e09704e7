"""Build the book: execute every chapter with papermill, write the status page, build the HTML.

The chapters in ``book/`` are committed without outputs. A build copies the book into a staging
folder (``_build/source``), executes each notebook listed in ``_toc.yml`` top to bottom in a fresh
kernel with the chosen ``preset`` and ``device`` injected into its ``parameters`` cell, writes the
execution-status page (``book/status.md``: preset, device, wall time and versions for each chapter,
in the spirit of QuantEcon's execution statistics) and builds HTML from the executed notebooks with
Jupyter Book 1, execution off and warnings as errors. Run it with ``python -m gwnlib book``.

A chapter is executed only when its executed copy from an earlier build (kept in ``executed/``
beside ``source/``) is stale: :mod:`gwnlib.analysis.book_cache` says what its key covers. The
repository setting, the launch buttons, each chapter's install cell and the zip of executed
chapters are :mod:`gwnlib.analysis.publish`'s; the ipywidgets manager that the HTML serves itself
is :mod:`gwnlib.analysis.widgets_js`'s.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from gwnlib import __version__
from gwnlib.analysis import publish, widgets_js
from gwnlib.analysis.book_cache import ChapterCache, chapter_inputs, shared_inputs, slowest_cells
from gwnlib.runtime import PROGRESS_ENV, PROJECT_ROOT, check_preset, hardware
from gwnlib.runtime import device as resolve_device

STATUS_PAGE = "book/status.md"
KERNEL_NAME = "python3"
#: Seconds a single cell may run before the chapter fails, per preset. In ``smoke`` no cell should
#: take more than seconds, so a hung kernel (a lost message between papermill and the kernel)
#: fails the build in bounded time; ``short`` and ``paper`` train, so their cells are unbounded.
CELL_TIMEOUT = {"smoke": 900, "short": None, "paper": None}


@dataclass
class ChapterRun:
    """The outcome of executing one chapter."""

    file: str  # path relative to the book root, e.g. "book/getting_started.ipynb"
    preset: str
    device: str  # the resolved device, e.g. "cpu" or "cuda"
    seconds: float
    ok: bool
    error: str | None = None
    reused: bool = False  # copied from an earlier build (book_cache): its inputs are unchanged


def toc_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every page listed in ``root/_toc.yml`` (format ``jb-book``), in reading order.

    Entries without a suffix are resolved to the ``.ipynb`` or ``.md`` file that exists; a missing
    file is an error, so a typo in the table of contents fails the build early.
    """
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries: list[str] = [toc["root"]]

    def walk(items: list[dict]) -> None:
        for item in items:
            if "file" in item:
                entries.append(item["file"])
            for key in ("parts", "chapters", "sections"):
                walk(item.get(key, []))

    walk([toc])
    return [_resolve_page(root, entry) for entry in entries]


def _resolve_page(root: Path, entry: str) -> Path:
    path = root / entry
    if path.suffix in (".ipynb", ".md") and path.is_file():
        return path
    for suffix in (".ipynb", ".md"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"_toc.yml lists {entry!r}, but no {entry}.ipynb or {entry}.md exists")


def chapters(root: Path = PROJECT_ROOT) -> list[Path]:
    """The executable chapters: the notebooks listed in ``_toc.yml``, in reading order."""
    return [page for page in toc_files(root) if page.suffix == ".ipynb"]


def stage(
    out: Path,
    root: Path = PROJECT_ROOT,
    student: bool = False,
    repository: publish.Repository | None = None,
) -> Path:
    """Copy the book sources (``_config.yml``, ``_toc.yml``, ``book/``) into ``out/source``.

    ``student``: the student edition, whose exercise solutions are left out of the HTML
    (sphinx-exercise's ``hide_solutions``), for courses that hand the book out with assignments.
    ``repository``: the book's repository for this build (default: ``_config.yml``'s), written
    into the copy of the config (launch buttons) and into each chapter's install cell.
    """
    import yaml

    source = out / "source"
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, source / name)
    config_path = source / "_config.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    repository = repository or publish.repository_of(config)
    config = publish.configure(config, repository)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), "utf-8")
    if student:
        student_config(config_path)
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "_build", "__pycache__")
    shutil.copytree(root / "book", source / "book", ignore=ignore)
    cell = publish.install_cell(repository, PROJECT_ROOT / "requirements-lock.txt")
    for notebook in chapters(source):
        publish.write_install_cell(notebook, cell)
    return source


def student_config(path: Path) -> None:
    """Turn the Jupyter Book config at ``path`` into the student edition's: solutions hidden,
    and the title says which edition it is."""
    import yaml

    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    config["title"] = f"{config.get('title', 'gwn-book')} (student edition)"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def add_sphinx_config(path: Path, settings: dict) -> None:
    """Add ``settings`` to the ``sphinx: config:`` of the Jupyter Book config at ``path``; a
    list setting extends the list already there."""
    import yaml

    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    for key, value in settings.items():
        sphinx[key] = [*sphinx.get(key, []), *value] if isinstance(value, list) else value
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def execute_chapter(
    notebook: Path,
    output: Path,
    preset: str,
    device: str,
    resolved_device: str,
    label: str | None = None,
    cell_timeout: float | None = None,
) -> ChapterRun:
    """Run ``notebook`` top to bottom in a fresh kernel with papermill, writing ``output``.

    ``preset`` and ``device`` are injected into the notebook's ``parameters`` cell. A failing cell
    does not raise: the executed notebook (with the traceback) is still written and the returned
    :class:`ChapterRun` says what failed. ``label`` names the chapter (default: the file name).
    A cell running longer than ``cell_timeout`` seconds (None: no limit) fails the chapter.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    # Keeps the debugger's note on frozen modules out of the outputs.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # The kernel inherits this environment: a non-inline MPLBACKEND (Agg, say) would make every
    # figure silently vanish from the book, so the kernel never sees it.
    saved_backend = os.environ.pop("MPLBACKEND", None)
    # Progress bars are for people watching; in a built page they would be frozen at 0%.
    saved_progress = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "0"
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={"preset": preset, "device": device},
            kernel_name=KERNEL_NAME,
            cwd=str(output.parent),
            progress_bar=False,
            execution_timeout=cell_timeout,
        )
    except papermill.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except CellTimeoutError:
        error = f"a cell ran longer than {cell_timeout} s (cell_timeout) and was stopped"
    except DeadKernelError as exc:
        error = f"the kernel died: {exc}"
    finally:
        if saved_backend is not None:
            os.environ["MPLBACKEND"] = saved_backend
        if saved_progress is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = saved_progress
    seconds = time.perf_counter() - start
    return ChapterRun(
        file=label or notebook.name,
        preset=preset,
        device=resolved_device,
        seconds=seconds,
        ok=error is None,
        error=error,
    )


def execute_all(
    source: Path,
    preset: str = "smoke",
    device: str = "auto",
    only: list[str] | None = None,
    progress: bool = True,
    cell_timeout: float | None | str = "preset",
    cache: Path | None = None,
    force: bool = False,
) -> list[ChapterRun]:
    """Execute, in place in the staged ``source`` folder, every chapter of its ``_toc.yml``.

    ``only`` restricts the run to chapters whose file name (with or without ``.ipynb``) is listed.
    An unknown ``preset`` or ``device`` fails here, before any chapter starts. ``cell_timeout``
    defaults to the preset's entry of :data:`CELL_TIMEOUT`. ``cache``: the folder of executed
    chapters (:class:`~gwnlib.analysis.book_cache.ChapterCache`); a chapter whose kept copy is
    not stale is copied from there instead of executed, unless ``force``. With ``progress``, it
    prints what ran, what was reused and why, and the slowest cells.
    """
    check_preset(preset)
    if cell_timeout == "preset":
        cell_timeout = CELL_TIMEOUT[preset]
    resolved = str(resolve_device(device))
    notebooks = chapters(source)
    if only:
        wanted = {Path(name).stem for name in only}
        unknown = wanted - {nb.stem for nb in notebooks}
        if unknown:
            names = ", ".join(nb.stem for nb in notebooks)
            raise ValueError(
                f"only names unknown chapters {sorted(unknown)}; chapters are: {names}"
            )
        notebooks = [nb for nb in notebooks if nb.stem in wanted]
    kept = ChapterCache(cache) if cache is not None else None
    shared = shared_inputs() if kept is not None else {}
    parameters = {"preset": preset, "device": device, "resolved_device": resolved}
    say = print if progress else lambda *args, **kwargs: None
    runs = []
    for i, notebook in enumerate(notebooks, 1):
        rel = notebook.relative_to(source).as_posix()
        say(f"[{i}/{len(notebooks)}] {rel} (preset {preset}, device {resolved}): ", end="")
        inputs = chapter_inputs(notebook, parameters, shared)
        stale = ["--force"] if force or kept is None else kept.stale(rel, inputs)
        if not stale:
            record = kept.restore(rel, notebook)
            run = ChapterRun(**{**record["run"], "reused": True})
            say(f"reused (executed {record['executed_utc']}, {run.seconds:.1f} s)", flush=True)
        else:
            why = "no executed copy" if stale == ["new"] else f"changed: {', '.join(stale)}"
            say(f"executing ({why if kept else 'no cache'}) ...", flush=True)
            run = execute_chapter(
                notebook, notebook, preset, device, resolved, label=rel, cell_timeout=cell_timeout
            )
            say(
                f"    {run.seconds:.1f} s, {'ok' if run.ok else f'FAILED: {run.error}'}", flush=True
            )
            if kept is not None and run.ok:
                kept.store(rel, notebook, inputs, asdict(run))
        runs.append(run)
    if progress:
        report(runs, {nb.relative_to(source).as_posix(): nb for nb in notebooks})
    return runs


def report(runs: list[ChapterRun], notebooks: dict[str, Path], top: int = 5) -> None:
    """Print how many chapters ran and were reused, and the ``top`` slowest cells of
    ``notebooks`` ({label: executed notebook})."""
    reused = sum(run.reused for run in runs)
    print(f"{len(runs) - reused} chapter(s) executed, {reused} reused from an earlier build")
    print(f"The {top} slowest cells (chapter #code cell: first line):")
    for seconds, label, number, line in slowest_cells(notebooks, top):
        print(f"  {seconds:8.1f} s  {label} #{number}: {line[:60]}")


def write_status(source: Path, runs: list[ChapterRun], preset: str, device: str) -> Path:
    """Write the execution-status page into the staged book and ``status.json`` beside it."""
    import torch

    now = datetime.now(timezone.utc)
    resolved = runs[0].device if runs else str(resolve_device(device))
    lines = [
        "# Execution status",
        "",
        "This page is written by the build (`python -m gwnlib book`). Each chapter below was run",
        "top to bottom in a fresh kernel by papermill, with the preset and device shown; the book",
        "shows those outputs. The `smoke` preset only checks that the code runs: its numbers are",
        "not a reproduction of the paper.",
        "",
        f"- Built: {now:%Y-%m-%d %H:%M} UTC",
        f"- Preset: `{preset}`; device parameter `{device}`, resolved to `{resolved}`",
        f"- Hardware: {hardware(resolved)}",
        f"- Software: gwnlib {__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        "",
        "| Chapter | Preset | Device | Wall time | torch | gwnlib | Status |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        doc = "/" + run.file.removesuffix(".ipynb")
        status = "passed" if run.ok else f"**failed**: {_escape_cell(run.error or '')}"
        status += " (reused from an earlier build: nothing it depends on changed)" * run.reused
        lines.append(
            f"| {{doc}}`{doc}` | {run.preset} | {run.device} | {run.seconds:.1f} s "
            f"| {torch.__version__} | {__version__} | {status} |"
        )
    total = sum(run.seconds for run in runs)
    lines += ["", f"Total execution time: {total:.1f} s for {len(runs)} chapter(s)."]
    reused = [run for run in runs if run.reused]
    if reused:
        lines[-1] += (
            f" {len(reused)} of them were reused from an earlier build, whose times "
            f"({sum(run.seconds for run in reused):.1f} s) they show: what they depend on "
            "(code cells, parameters, gwnlib, pinned packages, committed results) is unchanged."
        )
    lines.append("")
    page = source / STATUS_PAGE
    page.write_text("\n".join(lines), encoding="utf-8")
    record = {
        "built_utc": now.isoformat(timespec="seconds"),
        "preset": preset,
        "device": device,
        "resolved_device": resolved,
        "hardware": hardware(resolved),
        "gwnlib": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "chapters": [asdict(run) for run in runs],
    }
    (source.parent / "status.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return page


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def build_html(source: Path, out: Path) -> Path:
    """Build HTML from the staged, executed book with Jupyter Book 1 (execution off, ``-W``),
    with the zip of its chapters (:data:`~gwnlib.analysis.publish.NOTEBOOKS_ZIP`) that the
    introduction links and the ipywidgets manager in ``_static/widgets/``
    (:func:`~gwnlib.analysis.widgets_js.stage`, whose settings go into the staged config).

    Jupyter Book writes the Sphinx ``conf.py`` from ``_config.yml`` and ``_toc.yml``; Sphinx then
    builds into ``out/html`` with warnings as errors. Returns the path of ``index.html``.
    """
    bindir = Path(sys.executable).parent
    jupyter_book = shutil.which("jupyter-book", path=str(bindir)) or shutil.which("jupyter-book")
    if jupyter_book is None:
        raise RuntimeError("jupyter-book is not installed: pip install 'gwnlib[book]'")
    publish.write_notebooks_zip(source, chapters(source))
    settings = widgets_js.stage(source)
    if settings is not None:
        add_sphinx_config(source / "_config.yml", settings)
    subprocess.run([jupyter_book, "config", "sphinx", str(source)], check=True)
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    cmd = [
        sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
        "-d", str(out / "doctrees"), str(source), str(html),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return html / "index.html"


def build(
    preset: str = "smoke",
    device: str = "auto",
    out: Path | str = PROJECT_ROOT / "_build",
    only: list[str] | None = None,
    html: bool = True,
    student: bool = False,
    repository: publish.Repository | None = None,
    force: bool = False,
) -> tuple[list[ChapterRun], Path | None]:
    """Execute every chapter and build the book; see the module docstring. ``student``: the
    student edition, exercise solutions hidden; ``repository``: the book's repository for this
    build (default: ``_config.yml``'s; :func:`stage`). Chapters executed by an earlier build into
    ``out`` are reused while not stale, unless ``force``.

    Returns the chapter runs and the path of the built ``index.html`` (``None`` when ``html`` is
    false or a chapter failed: a book with a failed chapter is not built).
    """
    check_preset(preset)
    resolve_device(device)
    out = Path(out).resolve()
    source = stage(out, student=student, repository=repository)
    runs = execute_all(
        source, preset=preset, device=device, only=only, cache=out / "executed", force=force
    )
    write_status(source, runs, preset=preset, device=device)
    if not html or not all(run.ok for run in runs):
        return runs, None
    return runs, build_html(source, out)

"""The book: its table of contents, clean chapter notebooks, and a real smoke build.

The slow tests execute every chapter of ``_toc.yml`` in the ``smoke`` preset with papermill (as the
book build does) and build the HTML from those executed notebooks with warnings as errors.
"""

import ast
import json
import os
import re
import zipfile

import pytest

# The book's own packages; a machine with only the training stack (a GPU image running
# `pytest -m gpu`) skips these tests instead of failing to collect them.
papermill = pytest.importorskip("papermill", reason="the book's packages are not installed")
import yaml  # noqa: E402

import gwnlib  # noqa: E402
from gwnlib.__main__ import main as cli  # noqa: E402
from gwnlib.analysis import book, widgets_js  # noqa: E402

ROOT = book.PROJECT_ROOT
CHAPTERS = book.chapters()
ALL_NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def test_toc_lists_the_skeleton_pages():
    pages = [p.relative_to(ROOT).as_posix() for p in book.toc_files()]
    assert pages[0] == "book/intro.md"
    for page in ("book/status.md", "book/references.md", "book/getting_started.ipynb"):
        assert page in pages
    assert CHAPTERS, "the book has no executable chapter"


def test_every_notebook_is_in_the_toc():
    # only_build_toc_files: a notebook missing from _toc.yml would silently not be built.
    assert set(ALL_NOTEBOOKS) == set(CHAPTERS)


def test_a_missing_toc_entry_is_an_error(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: nope\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    with pytest.raises(FileNotFoundError, match="nope"):
        book.toc_files(tmp_path)


def test_config_executes_nothing_itself_and_enables_the_extensions():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    assert {"sphinx_proof", "sphinx_exercise"} <= set(config["sphinx"]["extra_extensions"])
    for bib in config["bibtex_bibfiles"]:
        assert (ROOT / bib).is_file()
    assert "deandrade2026gwn" in (ROOT / "book/references.bib").read_text()


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    for cell in code_cells(load(path)):
        assert cell["outputs"] == [], f"{path.name} has outputs: clear them before committing"
        assert cell["execution_count"] is None, f"{path.name} has execution counts"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_have_a_parameters_cell(path):
    cells = code_cells(load(path))
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one code cell tagged 'parameters'"
    values = {}
    for node in ast.parse("".join(tagged[0]["source"])).body:
        assert isinstance(node, ast.Assign), "the parameters cell holds plain assignments only"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert values.get("preset") in gwnlib.PRESETS
    assert values.get("device") in ("auto", "cpu", "cuda")
    assert isinstance(values.get("seed", 0), int)
    assert "gwnlib.setup(" in "".join("".join(c["source"]) for c in cells), (
        f"{path.name} must check its parameters with gwnlib.setup"
    )


def test_status_page_lists_each_chapter(tmp_path):
    (tmp_path / "book").mkdir()
    runs = [
        book.ChapterRun("book/a.ipynb", "smoke", "cpu", 1.25, True),
        book.ChapterRun("book/b.ipynb", "smoke", "cpu", 3.0, False, "cell 4: ValueError: x | y"),
    ]
    page = book.write_status(tmp_path, runs, preset="smoke", device="auto").read_text()
    assert "{doc}`/book/a` | smoke | cpu | 1.2 s |" in page
    assert "**failed**: cell 4: ValueError: x \\| y" in page
    assert "resolved to `cpu`" in page and gwnlib.__version__ in page
    record = json.loads((tmp_path.parent / "status.json").read_text())
    assert [c["ok"] for c in record["chapters"]] == [True, False]


def test_cli_rejects_unknown_preset_and_device(tmp_path, capsys):
    assert cli(["book", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert "preset must be one of smoke, short, paper" in capsys.readouterr().err
    assert cli(["book", "--device", "tpu", "--out", str(tmp_path)]) == 2
    assert "device must be one of auto, cpu, cuda, cuda:N" in capsys.readouterr().err
    assert not (tmp_path / "source").exists(), "nothing may be staged before parameters are checked"


def test_unknown_chapter_in_only_is_an_error(tmp_path):
    source = book.stage(tmp_path)
    with pytest.raises(ValueError, match="unknown chapters"):
        book.execute_all(source, only=["no_such_chapter"], progress=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("preset", "huge", "preset must be one of smoke, short, paper"),
        ("device", "tpu", "device must be one of auto, cpu, cuda, cuda:N"),
    ],
)
def test_a_chapter_stops_at_once_on_bad_parameters(tmp_path, name, value, message):
    chapter = CHAPTERS[0]
    out = tmp_path / chapter.name
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(
            str(chapter), str(out), parameters={name: value}, progress_bar=False, cwd=str(tmp_path)
        )
    assert info.value.ename == "ValueError" and message in info.value.evalue
    # It failed in the first cell after the parameters: nothing else ran. (Before them: the
    # install cell, a no-op here.)
    executed = [c for c in code_cells(load(out)) if c["execution_count"] is not None]
    tags = [c["metadata"].get("tags", []) for c in executed]
    assert len(executed) == 4 and "injected-parameters" in tags[2]
    assert executed[0]["id"] == "install-gwnlib" and executed[0]["outputs"] == []


@pytest.fixture(scope="session")
def executed_book(tmp_path_factory):
    # Set on purpose: the executor must keep a non-inline backend away from the kernels.
    mp = pytest.MonkeyPatch()
    mp.setenv("MPLBACKEND", "Agg")
    out = tmp_path_factory.mktemp("book")
    source = book.stage(out)
    runs = book.execute_all(source, preset="smoke", device="cpu", progress=False)
    book.write_status(source, runs, preset="smoke", device="cpu")
    assert os.environ["MPLBACKEND"] == "Agg", "the executor restores the caller's environment"
    mp.undo()
    return out, source, {run.file: run for run in runs}


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_runs_in_the_smoke_preset(executed_book, path):
    _, source, runs = executed_book
    run = runs[path.relative_to(ROOT).as_posix()]
    assert run.ok, f"{path.name} failed: {run.error}"
    assert run.preset == "smoke" and run.device == "cpu"
    executed = load(source / path.relative_to(ROOT))
    for cell in code_cells(executed):
        assert cell["execution_count"] is not None, "every cell runs, top to bottom"
        for output in cell["outputs"]:
            assert output["output_type"] != "error"
            # Warnings and stray logs land in the book: a chapter prints nothing to stderr.
            if output["output_type"] == "stream":
                assert output["name"] == "stdout", "".join(output["text"])[:500]


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(executed_book):
    out, _, runs = executed_book
    index = book.build_html(out / "source", out)
    html = index.parent
    assert index.is_file()
    status = (html / "book" / "status.html").read_text()
    assert "smoke" in status and "Execution status" in status
    for file in runs:
        stem = file.removesuffix(".ipynb")
        assert f'href="{stem.split("/")[-1]}.html"' in status or f"{stem}.html" in status
        page = (html / f"{stem}.html").read_text()
        assert re.search(r'<img[^>]+src="[^"]+\.png"', page), f"{stem}: no figure in the page"
    chapter = (html / "book" / "getting_started.html").read_text()
    assert "exercise" in chapter and "solution" in chapter and "dropdown" in chapter
    intro = (html / "index.html").read_text() + (html / "book" / "intro.html").read_text()
    assert "Transmit and receive rates" in intro  # a sphinx-proof definition
    references = (html / "book" / "references.html").read_text()
    assert "Gray-Wyner" in references
    # The intro's zip holds every chapter as executed here.
    link = re.search(r'href="([^"]+gwn-book-notebooks\.zip)"', intro).group(1)
    with zipfile.ZipFile((html / "book" / link).resolve()) as archive:
        assert sorted(archive.namelist()) == sorted(runs)
        for name in archive.namelist():
            cells = code_cells(json.loads(archive.read(name)))
            assert all(cell["execution_count"] is not None for cell in cells), name
    # Offline: no page loads a script from elsewhere; pages with saved widget state load the
    # widget manager from _static/widgets/ (widgets_js), unless the build could not fetch it.
    served = widgets_js.cached()
    widget_pages = []
    for page in html.rglob("*.html"):
        text = page.read_text()
        if "application/vnd.jupyter.widget-state+json" in text:
            widget_pages.append(page)
            if not served:
                continue
            scripts = re.findall(r'<script[^>]*\ssrc="([^"]*_static/widgets/[^"]*)"', text)
            assert [src.split("?")[0].rsplit("/", 1)[1] for src in scripts] == [
                "require.js",
                "embed-amd.js",
            ], page
            for src in scripts:
                assert (page.parent / src.split("?")[0]).resolve().is_file(), src
        external = re.findall(r'<script[^>]*\ssrc="((?:https?:)?//[^"]*)"', text)
        assert external == [], page
    assert widget_pages, "no chapter saved widget state: the widget check tests nothing"
    if not served:
        pytest.skip(
            "widget pages not checked: the npm registry was unreachable and the widget manager "
            f"is not cached in {widgets_js.cache()}, so they load it from CDNs"
        )


@pytest.mark.slow
def test_a_hung_cell_fails_the_chapter_in_bounded_time(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            'preset = "smoke"\ndevice = "auto"', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell("import time\ntime.sleep(60)"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "hang.ipynb"
    nbformat.write(nb, path)
    run = book.execute_chapter(path, path, "smoke", "cpu", "cpu", cell_timeout=3)
    assert not run.ok and "cell_timeout" in run.error and run.seconds < 45
    assert book.CELL_TIMEOUT["smoke"] is not None


def execute_with_results(tmp_path, monkeypatch, chapter: str, results: dict) -> list[dict]:
    """The outputs of ``chapter`` executed in the smoke preset on the CPU, with ``results``
    ({file name: DataFrame}) as the committed results folder; none of them may be an error."""
    folder = tmp_path / "results"
    folder.mkdir()
    for name, table in results.items():
        table.to_csv(folder / name, index=False)
    monkeypatch.setenv("GWN_RESULTS_DIR", str(folder))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # ipykernel's inline figures (image/png)
    out = tmp_path / chapter
    papermill.execute_notebook(
        str(ROOT / "book" / chapter),
        str(out),
        parameters={"preset": "smoke", "device": "cpu"},
        progress_bar=False,
        cwd=str(tmp_path),
    )
    outputs = [output for cell in code_cells(load(out)) for output in cell["outputs"]]
    assert [o.get("evalue") for o in outputs if o["output_type"] == "error"] == []
    return outputs


def shown_text(outputs: list[dict]) -> str:
    """What ``outputs`` show as text, in order: streams, else Markdown, else plain text."""
    shown = []
    for output in outputs:
        data = output.get("data", {})
        text = output.get("text") or data.get("text/markdown") or data.get("text/plain", "")
        shown.append("".join(text))
    return "\n".join(shown)


def shown_html(outputs: list[dict], *needles: str) -> str:
    """The first HTML output (a displayed DataFrame) that contains every one of ``needles``."""
    html = ["".join(output.get("data", {}).get("text/html", "")) for output in outputs]
    return next(h for h in html if all(needle in h for needle in needles))


def html_frame(html: str) -> dict[tuple, dict[tuple, str]]:
    """A displayed DataFrame with a MultiIndex on both axes, read back from its HTML: {row index:
    {column: cell text}}. Pandas writes an outer label once for the rows it spans, so a row with
    fewer labels than the index has levels takes the missing (leading) ones from the row above."""
    from bs4 import BeautifulSoup

    rows = BeautifulSoup(html, "html.parser").find_all("tr")
    body = [tr for tr in rows if tr.find_all("td")]
    width = len(body[0].find_all("td"))
    levels = max(len(tr.find_all("th")) for tr in body)

    def expanded(tr):  # a header row's labels over the data columns, colspans repeated
        cells = [
            th.get_text() for th in tr.find_all("th") for _ in range(int(th.get("colspan", 1)))
        ]
        return cells[-width:]

    headers = [expanded(tr) for tr in rows if not tr.find_all("td")]
    columns = list(zip(*[h for h in headers if any(h)], strict=True))
    frame, labels = {}, [""] * levels
    for tr in body:
        given = [th.get_text() for th in tr.find_all("th")]
        labels[levels - len(given) :] = given
        cells = [td.get_text() for td in tr.find_all("td")]
        frame[tuple(labels)] = dict(zip(columns, cells, strict=True))
    return frame


def partial_paper_results(points):
    """A stand-in ``synthetic-paper.csv`` holding only ``points`` ((codec, beta, eta) triples):
    each row is the paper's own table row under the key of our paper-preset config, labelled as
    a test fixture. It stands for what a short GPU lease commits (test data, never committed)."""
    import pandas as pd

    from gwnlib.analysis import paper
    from gwnlib.training.sweep import named

    reference = paper.results("synthetic").assign(beta=lambda t: t.beta.fillna(1.0))
    rows = []
    for config in named("synthetic", "paper").configs():
        if (config.codec, config.beta, config.eta) not in points:
            continue
        table = reference.query("codec == @config.codec and beta == @config.beta")
        row = table[table.eta == config.eta].iloc[0]
        rates = ["r0", "r1", "r2", "rate_transmit", "rate_receive", "d1", "d2"]
        rows.append(
            {
                "key": config.key,
                **config.to_dict(),
                **{name: row[name] for name in rates},
                "coded_rate_transmit": row.rate_transmit,
                "real_rate_transmit": row.rate_transmit + 0.01,
                "real_bits_samples": 100,
                "hardware": "GPU: test stand-in",
                "date": "2026-01-01T00:00:00+00:00",
            }
        )
    assert len(rows) == len(points)
    return pd.DataFrame(rows)


@pytest.mark.slow
@pytest.mark.parametrize(
    "points",
    [
        # What one short lease finishes first: the cheapest codec's curve, nothing else.
        [("joint", 1.0, eta) for eta in (0.001, 0.01, 0.1, 0.5, 1.0)],
        # Both baselines at two etas (empirical MI defined) and one Shared point.
        [(c, 1.0, eta) for c in ("joint", "independent") for eta in (0.01, 0.5)]
        + [("shared", 2.0, 0.1)],
    ],
    ids=["joint-curve", "baselines-and-one-shared-point"],
)
def test_the_synthetic_chapter_shows_partial_paper_results(tmp_path, monkeypatch, points):
    """Paper-setting results arrive a few points per GPU lease; the chapter shows whatever is
    committed, with a coverage table, and marks what a missing curve leaves undefined."""
    results = {"synthetic-paper.csv": partial_paper_results(points)}
    outputs = execute_with_results(tmp_path, monkeypatch, "synthetic_study.ipynb", results)
    text = shown_text(outputs)
    assert f"paper : {len(points):2d} runs on GPU: test stand-in" in text
    joints = sum(codec == "joint" for codec, _, _ in points)
    assert re.search(rf"etas run, of 5 +smoke +paper\n.*\njoint +1\.0 +5 +{joints}\n", text)
    assert f"**Paper preset** ({len(points)} of 55 runs, GPU: test stand-in)" in text
    claims = html_frame(shown_html(outputs, ">says<", ">margin<"))

    # Defined only where the committed points allow it; the paper's own tables always.
    below = claims[
        ("2. R0 below empirical MI, beta = 2 (share of points)", "none (point by point)")
    ]
    assert below[("paper", "says")] == (
        "100%" if ("independent", 1.0, 0.5) in points else "undefined"
    )
    assert below[("paper's tables", "says")] == "100%"
    assert below[("smoke", "says")] == "n/a (smoke)"
    close = claims[("1. Shared vs Joint, BD R_t, beta = 1 (Fig. 3b: +10.42%)", "cubic")]
    assert close[("paper", "says")] == "undefined"
    assert close[("paper's tables", "says")].endswith("%")


@pytest.mark.slow
def test_the_vision_chapter_shows_committed_results_of_another_preset(tmp_path, monkeypatch):
    """A GPU user commits part of the Cityscapes paper sweep (no COCO): the smoke build shows it
    beside its own runs, labelled, and marks the BD-rates it leaves undefined."""
    import pandas as pd

    from gwnlib.analysis import paper
    from gwnlib.training.sweep import named

    reference = paper.results("cityscapes").set_index(["codec", "eta"])
    points = [("joint", 0.01), ("joint", 0.1), ("joint", 1.0), ("shared", 0.1)]
    rows = []
    for config in named("cityscapes", "paper").configs():
        if (config.codec, config.eta) in points:
            row = reference.loc[(config.codec, config.eta)]
            columns = ["r0", "r1", "r2", "rate_transmit", "rate_receive", "miou", "rmse"]
            rows.append(
                {
                    "key": config.key,
                    **config.to_dict(),
                    **{name: row[name] for name in columns},
                    "hardware": "GPU: test stand-in",
                    "date": "2026-01-01T00:00:00+00:00",
                }
            )
    results = {"cityscapes-paper.csv": pd.DataFrame(rows)}
    outputs = execute_with_results(tmp_path, monkeypatch, "vision_tasks.ipynb", results)
    text = shown_text(outputs)
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    assert "paper  cityscapes:  4 runs (committed); GPU: test stand-in" in text
    assert "**cityscapes** (paper preset, committed):" in text
    assert "**Paper preset** (cityscapes: 4 of 16 runs)" in text
    assert "**Short preset: not yet run**" in text
    # BD-rates: two last columns (cubic, PCHIP) for the committed preset, "undefined" for each
    # Cityscapes row (4 points, 3 of them Joint's, define no curve), empty for COCO (no file)
    table = html_frame(shown_html(outputs, ">reported<", ">PCHIP<"))
    assert list(next(iter(table.values())))[-2:] == [
        ("committed (paper)", "cubic"),
        ("committed (paper)", "PCHIP"),
    ]
    for fit in ("cubic", "PCHIP"):
        last = [row[("committed (paper)", fit)] for row in table.values()]
        assert [value[:9] for value in last] == ["undefined"] * 3 + [""] * 3
    assert images >= 5  # two data figures; Fig. 5 of the paper, of this build, of the commit


def test_the_student_edition_hides_exercise_solutions(tmp_path):
    """A one-page book with an exercise: the solution is in the HTML of the full edition and
    absent from the student edition's (sphinx-exercise's hide_solutions, set by stage)."""
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (root / "book" / "references.bib").write_text((ROOT / "book" / "references.bib").read_text())
    (root / "book" / "page.md").write_text(
        "# Page\n\n:::{exercise}\n:label: ex-one\n\nWhat is one plus one?\n:::\n\n"
        ":::{solution} ex-one\n:class: dropdown\n\nThe answer is SOLUTIONTEXT.\n:::\n"
    )
    pages = {}
    for student in (False, True):
        out = tmp_path / ("student" if student else "full")
        index = book.build_html(book.stage(out, root, student=student), out)
        pages[student] = (index.parent / "book" / "page.html").read_text()
    assert "SOLUTIONTEXT" in pages[False] and "What is one plus one?" in pages[False]
    assert "SOLUTIONTEXT" not in pages[True] and "What is one plus one?" in pages[True]
    assert "(student edition)" in pages[True]


#: A code cell of a chapter is at most this long: plotting and bookkeeping belong in gwnlib.
MAX_CELL_LINES = 40


def test_code_cells_are_short():
    long = []
    for path in ALL_NOTEBOOKS:
        for cell in code_cells(load(path)):
            source = "".join(cell["source"]).splitlines()
            if len(source) > MAX_CELL_LINES:
                long.append((path.name, len(source), source[0]))
    assert long == [], "code cells over 40 lines: move plotting or bookkeeping into gwnlib"


#: A line that draws: a call on a figure or axes, or a setter of one.
DRAWING = re.compile(r"\b(ax|axes|plt|fig|axis)\b[.\[,]|\.set_|legend\(|annotate\(|\.plot\(")


def test_plumbing_cells_hide_their_input():
    """The HTML folds away what a reader need not read: each chapter's imports (the cell after
    the parameters) and every cell that mostly draws (at least 40% of its code lines). Their
    outputs stay; the code is one click away (Jupyter Book's ``hide-input`` tag)."""
    shown = []
    for path in ALL_NOTEBOOKS:
        cells = list(code_cells(load(path)))
        for before, cell in zip([None, *cells[:-1]], cells, strict=True):
            lines = [line for line in "".join(cell["source"]).splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
            setup = before is not None and "parameters" in before["metadata"].get("tags", [])
            draws = len(lines) > 3 and sum(map(bool, map(DRAWING.search, lines))) >= 0.4 * len(
                lines
            )
            if (setup or draws) and "hide-input" not in cell["metadata"].get("tags", []):
                shown.append((path.name, cell["id"], "imports" if setup else "drawing"))
    assert shown == [], "tag these cells hide-input"
    assert DRAWING.search("fig, ax = plt.subplots()") and not DRAWING.search("x = f(axis=0)")

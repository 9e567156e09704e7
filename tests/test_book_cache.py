"""Fast rebuilds (gwnlib.analysis.book_cache): a chapter is executed again only when something
its outputs depend on changed. No chapter is really executed here: the executor is a stand-in."""

import json
import shutil

import pytest

pytest.importorskip("papermill", reason="the book's packages are not installed")
import nbformat  # noqa: E402

from gwnlib.analysis import book, book_cache  # noqa: E402

PARAMETERS = {"preset": "smoke", "device": "cpu", "resolved_device": "cpu"}


@pytest.fixture
def project(tmp_path):
    """A stand-in checkout: a gwnlib package, a lock file and a results folder."""
    root = tmp_path / "project"
    (root / "gwnlib" / "sub").mkdir(parents=True)
    (root / "gwnlib" / "__init__.py").write_text("x = 1\n")
    (root / "gwnlib" / "sub" / "model.py").write_text("y = 2\n")
    (root / "requirements-lock.txt").write_text("torch==2.0\n")
    (root / "results").mkdir()
    (root / "results" / "synthetic-short.csv").write_text("a,b\n1,2\n")
    (root / "chapter.ipynb").write_text(json.dumps({"cells": [CODE, PROSE]}) + "\n")
    return root


CODE = {"cell_type": "code", "metadata": {}, "source": ["x = 1\n", "x"], "outputs": []}
PROSE = {"cell_type": "markdown", "metadata": {}, "source": ["Some prose."]}


def edit(root, cells):
    (root / "chapter.ipynb").write_text(json.dumps({"cells": cells}) + "\n")


def key(root, parameters=PARAMETERS):
    shared = book_cache.shared_inputs(root, results=root / "results")
    return book_cache.key_of(book_cache.chapter_inputs(root / "chapter.ipynb", parameters, shared))


def test_the_key_is_stable_while_nothing_changes(project):
    assert key(project) == key(project)
    # Compiled files and notebook checkpoints are not sources.
    (project / "gwnlib" / "__pycache__").mkdir()
    (project / "gwnlib" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    (project / "gwnlib" / "sub" / "stale.pyc").write_bytes(b"\0")
    assert key(project) == key(project.parent / "project")


@pytest.mark.parametrize(
    "change",
    [
        lambda root: edit(root, [{**CODE, "source": "x = 2\nx"}, PROSE]),
        lambda root: edit(root, [CODE, CODE, PROSE]),
        lambda root: (root / "gwnlib" / "sub" / "model.py").write_text("y = 3\n"),
        lambda root: (root / "gwnlib" / "sub" / "new.py").write_text(""),
        lambda root: (root / "gwnlib" / "sub" / "model.py").rename(root / "gwnlib" / "m.py"),
        lambda root: (root / "requirements-lock.txt").write_text("torch==2.1\n"),
        lambda root: (root / "results" / "synthetic-short.csv").write_text("a,b\n1,3\n"),
        lambda root: (root / "results" / "new-paper.csv").write_text("a\n"),
    ],
    ids=[
        "code-cell",
        "new-code-cell",
        "gwnlib-file",
        "gwnlib-new-file",
        "gwnlib-rename",
        "lock",
        "results",
        "new",
    ],
)
def test_a_change_in_any_input_changes_the_key(project, change):
    before = key(project)
    change(project)
    assert key(project) != before


@pytest.mark.parametrize(
    "cells",
    [
        [CODE, {**PROSE, "source": "Other prose."}],
        [PROSE, CODE, PROSE],
        [{**CODE, "metadata": {"tags": ["hide-input"]}, "outputs": ["stale"]}, PROSE],
        [{**CODE, "source": "".join(CODE["source"])}, PROSE],  # the same source as one string
    ],
    ids=["prose", "new-prose-cell", "tags-and-outputs", "source-as-string"],
)
def test_prose_tags_and_outputs_leave_the_key_unchanged(project, cells):
    before = key(project)
    edit(project, cells)
    assert key(project) == before


@pytest.mark.parametrize(
    "parameters",
    [
        {**PARAMETERS, "preset": "short"},
        {**PARAMETERS, "device": "auto"},
        {**PARAMETERS, "resolved_device": "cuda"},
        {**PARAMETERS, "seed": 1},
    ],
    ids=["preset", "device", "resolved-device", "another-parameter"],
)
def test_a_change_in_the_parameters_changes_the_key(project, parameters):
    assert key(project, parameters) != key(project)


def test_the_default_results_are_the_folder_chapters_read(project, monkeypatch):
    monkeypatch.setenv("GWN_RESULTS_DIR", str(project / "results"))
    assert book_cache.shared_inputs(project) == book_cache.shared_inputs(
        project, results=project / "results"
    )


def write_book(root, names):
    """A book of tiny chapters (a parameters cell and one more) under ``root``."""
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("title: A tiny book\n")
    chapters = "".join(f"  - file: book/{name}\n" for name in names)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n{chapters}")
    for name in names:
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell('preset = "smoke"', metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(f"print({name!r})"),
        ]
        nbformat.write(nb, root / "book" / f"{name}.ipynb")


class Executor:
    """Stands in for papermill: counts calls, injects a parameters cell after the parameters
    cell, gives every code cell an output, can fail."""

    def __init__(self):
        self.calls, self.fail = [], set()

    def __call__(self, notebook, output, preset, device, resolved, label=None, cell_timeout=None):
        self.calls.append(label)
        nb = nbformat.read(notebook, as_version=4)
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        injected = nbformat.v4.new_code_cell('preset = "smoke"')
        injected.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(at + 1, injected)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", text=f"run {len(self.calls)}\n")]
            cell.execution_count = i + 1
            cell.metadata["papermill"] = {"duration": 10.0 * (i + 1) + len(self.calls)}
        nbformat.write(nb, output)
        ok = label not in self.fail
        return book.ChapterRun(label, preset, resolved, 1.5, ok, None if ok else "cell 2: boom")


@pytest.fixture
def builder(tmp_path, monkeypatch):
    """``build(**kwargs)``: stage the tiny book and execute it with the stand-in executor and
    the chapter cache, as ``book.build`` does; returns the runs."""
    write_book(tmp_path / "root", ["one", "two"])
    executor = Executor()
    monkeypatch.setattr(book, "execute_chapter", executor)
    shared = {"gwnlib": "g1", "lock": "l1", "results": "r1", "python": "3", "torch": "2"}
    monkeypatch.setattr(book, "shared_inputs", lambda: dict(shared))
    out = tmp_path / "out"

    def build(root=tmp_path / "root", **kwargs):
        source = book.stage(out, root)
        kwargs = {"preset": "smoke", "device": "cpu", "progress": False, **kwargs}
        return book.execute_all(source, cache=out / "executed", **kwargs)

    build.executor, build.shared, build.root, build.out = executor, shared, tmp_path / "root", out
    return build


def test_an_unchanged_chapter_is_reused_not_executed(builder):
    first = builder()
    assert builder.executor.calls == ["book/one.ipynb", "book/two.ipynb"]
    assert not any(run.reused for run in first)
    second = builder()
    assert builder.executor.calls == ["book/one.ipynb", "book/two.ipynb"], "nothing re-executed"
    assert [run.reused for run in second] == [True, True]
    assert [run.seconds for run in second] == [1.5, 1.5]  # the time of the run that made it
    # The reused copy is the executed one, in the staged book.
    executed = json.loads((builder.out / "source" / "book" / "one.ipynb").read_text())
    assert executed["cells"][-1]["execution_count"] is not None


@pytest.mark.parametrize(
    "change",
    ["code", "preset", "gwnlib", "lock", "results", "force"],
)
def test_a_change_makes_the_chapter_stale(builder, change):
    builder()
    kwargs = {}
    if change == "code":  # a code cell of one chapter: that chapter only
        path = builder.root / "book" / "two.ipynb"
        nb = nbformat.read(path, as_version=4)
        nb.cells[-1].source += "  # a comment"
        nbformat.write(nb, path)
    elif change == "preset":
        kwargs["preset"] = "short"
    elif change == "force":
        kwargs["force"] = True
    else:  # what shared_inputs digests: a gwnlib file, the lock file, a results file
        builder.shared[change] += "-changed"
    builder.executor.calls.clear()
    runs = builder(**kwargs)
    again = ["book/two.ipynb"] if change == "code" else ["book/one.ipynb", "book/two.ipynb"]
    assert builder.executor.calls == again
    assert [run.reused for run in runs] == [run.file not in again for run in runs]


def test_a_prose_change_reuses_the_outputs_with_the_new_prose(builder):
    """Prose and tags are not executed: the kept outputs come back under the edited text."""
    builder()
    path = builder.root / "book" / "two.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# Two"))
    nb.cells.append(nbformat.v4.new_markdown_cell("One more sentence."))
    nb.cells[2].metadata["tags"] = ["hide-input"]
    nbformat.write(nb, path)
    builder.executor.calls.clear()
    runs = builder()
    assert builder.executor.calls == [] and all(run.reused for run in runs)
    staged = nbformat.read(builder.out / "source" / "book" / "two.ipynb", as_version=4)
    tags = [c.metadata.get("tags", [""])[0] for c in staged.cells]  # the stage adds an install cell
    assert tags == ["", "remove-input", "parameters", "injected-parameters", "hide-input", ""]
    assert staged.cells[0].source == "# Two" and staged.cells[-1].source == "One more sentence."
    assert staged.cells[4].source == "print('two')"
    assert [c.outputs[0]["text"] for c in staged.cells[1:5]] == ["run 2\n"] * 4


def test_merge_prose_refuses_other_code():
    executed = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}]}
    staged = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 2", "outputs": []}]}
    with pytest.raises(ValueError, match="code cells"):
        book_cache.merge_prose(executed, staged)


def test_a_failed_chapter_is_not_kept(builder):
    builder.executor.fail.add("book/two.ipynb")
    builder()
    builder.executor.calls.clear()
    builder.executor.fail.clear()
    runs = builder()
    assert builder.executor.calls == ["book/two.ipynb"]
    assert [run.ok for run in runs] == [True, True]


def test_stale_names_what_changed(tmp_path):
    cache = book_cache.ChapterCache(tmp_path / "executed")
    inputs = {"code": "n1", "gwnlib": "g1", "lock": "l1"}
    assert cache.stale("book/a.ipynb", inputs) == ["new"]
    executed = tmp_path / "a.ipynb"
    executed.write_text("{}")
    cache.store("book/a.ipynb", executed, inputs, {"file": "book/a.ipynb"})
    assert cache.stale("book/a.ipynb", inputs) == []
    assert cache.stale("book/a.ipynb", {**inputs, "gwnlib": "g2", "lock": "l2"}) == [
        "gwnlib",
        "lock",
    ]
    (tmp_path / "executed" / "book" / "a.json").write_text("{not json")
    assert cache.stale("book/a.ipynb", inputs) == ["new"]


def test_the_build_reports_reuse_and_the_slowest_cells(builder, capsys):
    builder(progress=True)
    builder(progress=True)
    out = capsys.readouterr().out
    assert "executing (no executed copy)" in out
    assert "2 chapter(s) executed, 0 reused" in out and "0 chapter(s) executed, 2 reused" in out
    assert "book/two.ipynb (preset smoke, device cpu): reused (executed " in out
    slowest = out.split("slowest cells")[-1].splitlines()[1:3]
    # The last code cell (#4, after the install, parameters and injected cells) of the chapter
    # executed second (42 s), then of the first (41 s); the reused copies keep their durations.
    assert "42.0 s  book/two.ipynb #4: print('two')" in slowest[0]
    assert "41.0 s  book/one.ipynb #4: print('one')" in slowest[1]


def test_the_status_page_marks_reused_chapters(tmp_path):
    (tmp_path / "book").mkdir()
    runs = [book.ChapterRun("book/a.ipynb", "smoke", "cpu", 2.0, True, reused=True)]
    page = book.write_status(tmp_path, runs, preset="smoke", device="cpu").read_text()
    assert "passed (reused from an earlier build" in page
    assert "1 of them were reused from an earlier build, whose times (2.0 s)" in page


def test_build_keeps_executed_chapters_in_the_build_folder(tmp_path, monkeypatch):
    """book.build passes out/executed as the cache (so that --out folders do not mix)."""
    seen = {}

    def fake_execute_all(source, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(book, "execute_all", fake_execute_all)
    book.build(out=tmp_path, html=False, force=True)
    assert seen["cache"] == tmp_path.resolve() / "executed" and seen["force"] is True
    shutil.rmtree(tmp_path / "source")

"""Publishing the book (gwnlib.analysis.publish): the install cell of every chapter, the launch
buttons of a book that names its repository, the zip of executed chapters, offline formulas and
widgets (gwnlib.analysis.widgets_js)."""

import base64
import hashlib
import importlib.util
import io
import json
import re
import shutil
import socket
import sys
import tarfile
import zipfile
from urllib.parse import unquote

import pytest

pytest.importorskip("papermill", reason="the book's packages are not installed")
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
import yaml  # noqa: E402
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402

from gwnlib.__main__ import main as cli  # noqa: E402
from gwnlib.analysis import book, publish, widgets_js  # noqa: E402

ROOT = book.PROJECT_ROOT
LOCK = ROOT / "requirements-lock.txt"
REPOSITORY = publish.Repository("https://github.com/someone/gwn-book", "dev", "https://hub.test")


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def committed_repository():
    return publish.repository_of(yaml.safe_load((ROOT / "_config.yml").read_text()))


@pytest.mark.parametrize("path", book.chapters(), ids=lambda p: p.name)
def test_every_chapter_starts_with_the_install_cell(path):
    code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    first = code[0]
    assert first["id"] == publish.INSTALL_CELL_ID
    assert first["metadata"]["tags"] == ["remove-input"]  # out of the HTML, in the notebook
    # In step with _config.yml's repository and the lock's pins: else run the command.
    expected = publish.install_cell(committed_repository(), LOCK)
    assert "".join(first["source"]) == expected, "run `python -m gwnlib install-cells`"
    # Papermill injects after the cell tagged 'parameters', which stays the next code cell.
    assert "parameters" in code[1]["metadata"]["tags"]


class FakeIPython:
    """Records the shell commands and line magics a transformed cell would run."""

    def __init__(self):
        self.calls = []

    def system(self, command):
        self.calls.append(("!", command))

    def run_line_magic(self, name, line, _stack_depth=1):
        self.calls.append((name, line))


def run_cell(source, monkeypatch, cwd, gwnlib_found):
    """Execute the install cell as IPython would (magics transformed), with gwnlib importable or
    not; returns the recorded commands and the folders it put on sys.path."""
    find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args):
        return find_spec(name, *args) if name != "gwnlib" or gwnlib_found else None

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(cwd)
    before, shell = list(sys.path), FakeIPython()
    code = TransformerManager().transform_cell(source)
    exec(compile(code, "install-cell", "exec"), {"get_ipython": lambda: shell})
    return shell.calls, [p for p in sys.path if p not in before]


@pytest.mark.parametrize("repository", [None, REPOSITORY], ids=["no-repository", "repository"])
def test_the_install_cell_does_nothing_where_gwnlib_imports(tmp_path, monkeypatch, repository):
    source = publish.install_cell(repository, LOCK)
    calls, added = run_cell(source, monkeypatch, tmp_path, gwnlib_found=True)
    assert calls == [] and added == []


def test_the_install_cell_clones_and_installs_where_gwnlib_is_missing(tmp_path, monkeypatch):
    source = publish.install_cell(REPOSITORY, LOCK)
    calls, added = run_cell(source, monkeypatch, tmp_path, gwnlib_found=False)
    pins = publish.lock_pins(LOCK)
    clone = f"git clone -q --depth 1 --branch dev {REPOSITORY.url} {{root}}"
    assert calls[0] == ("!", clone)
    assert calls[1] == (
        "pip",
        f"install -q --no-deps {pins['compressai']} {pins['pytorch-msssim']}",
    )
    installed = " ".join(line.removeprefix("install -q ") for _, line in calls[2:])
    assert installed.split() == [pins[name] for name in publish.INSTALLED]
    assert all(name == "pip" for name, _ in calls[1:])
    assert added == [str(tmp_path / "gwn-book")]


def test_the_install_cell_uses_the_checkout_around_the_notebook(tmp_path, monkeypatch):
    """A JupyterHub's git-pull opens book/NAME.ipynb of a clone: no clone of its own."""
    (tmp_path / "gwnlib").mkdir()
    (tmp_path / "book").mkdir()
    source = publish.install_cell(REPOSITORY, LOCK)
    calls, added = run_cell(source, monkeypatch, tmp_path / "book", gwnlib_found=False)
    assert [name for name, _ in calls] == ["pip"] * len(calls) and calls
    assert added == [str(tmp_path)]


def test_without_a_repository_the_install_cell_says_what_is_missing(tmp_path, monkeypatch):
    source = publish.install_cell(None, LOCK)
    with pytest.raises(ModuleNotFoundError, match="gwnlib is missing"):
        run_cell(source, monkeypatch, tmp_path, gwnlib_found=False)


def test_the_install_cell_covers_gwnlibs_requirements():
    """Every requirement of gwnlib is either the hosted image's or installed by the cell, and the
    packages installed without dependencies are those of `.ci/gpu wheels`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in project["dependencies"]}
    covered = set(publish.HOSTED) | set(publish.NO_DEPS) | set(publish.INSTALLED)
    assert required <= covered, f"not installed by the cell: {required - covered}"
    wheels = re.search(r"^WHEELS=\((.*)\)$", (ROOT / ".ci/gpu").read_text(), re.M).group(1)
    assert {w.split("==")[0] for w in wheels.split()} == set(publish.NO_DEPS)
    pins = publish.lock_pins(LOCK)
    for name in (*publish.NO_DEPS, *publish.INSTALLED):
        assert pins[name] in publish.install_cell(None, LOCK)


def test_writing_the_install_cell_keeps_the_other_cells_byte_identical(tmp_path):
    chapter = book.chapters()[0]
    path = tmp_path / chapter.name
    shutil.copy(chapter, path)
    original = path.read_text()
    assert publish.write_install_cell(path, "print('another source')")
    changed = load(path)["cells"]
    assert "".join(changed[1]["source"]) == "print('another source')"
    rest = [c for c in changed if c["id"] != publish.INSTALL_CELL_ID]
    assert rest == [c for c in load(chapter)["cells"] if c["id"] != publish.INSTALL_CELL_ID]
    # Written back with its own source, the file is the committed one, byte for byte.
    assert publish.write_install_cell(path, publish.install_cell(committed_repository(), LOCK))
    assert path.read_text() == original
    assert not publish.write_install_cell(path, publish.install_cell(committed_repository(), LOCK))
    path.write_text(json.dumps(load(path), indent=2))
    with pytest.raises(ValueError, match="nbformat's layout"):
        publish.write_install_cell(path, "x = 1")


def test_configure_adds_launch_buttons_only_with_a_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    without = publish.configure(config, None)
    assert without["repository"] == {"url": ""}  # not Jupyter Book's default repository
    assert not {"colab_url", "jupyterhub_url"} & set(without["launch_buttons"])
    assert without["html"]["use_repository_button"] is False
    assert publish.repository_of(without) is None
    with_ = publish.configure(config, REPOSITORY)
    assert with_["repository"] == {"url": REPOSITORY.url, "branch": "dev", "path_to_book": ""}
    assert with_["launch_buttons"]["colab_url"] == publish.COLAB_URL
    assert with_["launch_buttons"]["jupyterhub_url"] == "https://hub.test"
    assert publish.repository_of(with_) == REPOSITORY
    no_hub = publish.configure(config, publish.Repository(REPOSITORY.url))
    assert "jupyterhub_url" not in no_hub["launch_buttons"]


def test_a_build_repository_goes_into_the_staged_copy_only(tmp_path):
    committed = (ROOT / "_config.yml").read_text()
    source = book.stage(tmp_path, repository=REPOSITORY)
    staged = yaml.safe_load((source / "_config.yml").read_text())
    assert publish.repository_of(staged) == REPOSITORY
    assert (ROOT / "_config.yml").read_text() == committed
    for chapter in book.chapters(source):
        first = next(c for c in load(chapter)["cells"] if c["cell_type"] == "code")
        assert REPOSITORY.url in "".join(first["source"])
        assert REPOSITORY.url not in (ROOT / "book" / chapter.name).read_text()


def test_cli_passes_the_repository_to_the_build(tmp_path, monkeypatch):
    seen = {}

    def fake_build(**kwargs):
        seen.update(kwargs)
        return [], None

    monkeypatch.setattr(book, "build", fake_build)
    args = ["book", "--out", str(tmp_path), "--repository", REPOSITORY.url, "--branch", "dev"]
    assert cli([*args, "--jupyterhub", "https://hub.test", "--force", "--no-html"]) == 0
    assert seen["repository"] == REPOSITORY and seen["force"] is True
    seen.clear()
    assert cli(["book", "--out", str(tmp_path), "--no-html"]) == 0
    assert "repository" not in seen and seen["force"] is False  # _config.yml's, all if stale


def test_the_notebooks_zip_holds_every_chapter(tmp_path):
    source = book.stage(tmp_path)
    notebooks = book.chapters(source)
    archive = publish.write_notebooks_zip(source, notebooks)
    assert archive == source / publish.NOTEBOOKS_ZIP
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(nb.relative_to(source).as_posix() for nb in notebooks)
        assert (
            z.read("book/getting_started.ipynb")
            == (source / "book/getting_started.ipynb").read_bytes()
        )


def external_scripts(html: str) -> list[str]:
    return re.findall(r'<script[^>]*\ssrc="((?:https?:)?//[^"]*)"', html)


def widget_scripts(page) -> list:
    """The files of the widget manager (``_static/widgets/``) that the HTML ``page`` loads."""
    sources = re.findall(r'<script[^>]*\ssrc="([^"]*_static/widgets/[^"]*)"', page.read_text())
    return [(page.parent / src.split("?")[0]).resolve() for src in sources]


def fake_package(tmp_path, files, name="@fake/manager"):
    """A package whose tarball (a local file) holds ``files`` ({path below package/: bytes})."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = tmp_path / "manager-1.0.0.tgz"
    tarball.write_bytes(buffer.getvalue())
    digest = base64.b64encode(hashlib.sha512(buffer.getvalue()).digest()).decode()
    return widgets_js.Package(
        name, "1.0.0", tarball.as_uri(), f"sha512-{digest}", "dist/embed-amd.js"
    )


#: A bundle that, like html-manager's, loads a font from its own folder.
BUNDLE = b'define("x",[],()=>{e.exports=n.p+"abc123.woff2"});'
FAKE_FILES = {
    "dist/embed-amd.js": BUNDLE,
    "dist/abc123.woff2": b"font",
    "dist/unused.ttf": b"not loaded by the bundle",
    "dist/embed.js": b"another bundle",
}


def closed_port_url():
    """An http URL on which nothing listens: the registry cannot be reached."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/manager-1.0.0.tgz"


def test_the_widget_manager_is_extracted_once_with_only_its_files(tmp_path):
    package = fake_package(tmp_path, FAKE_FILES)
    cache = tmp_path / "cache"
    folder = widgets_js.fetch(package, cache)
    assert folder == cache / "fake-manager-1.0.0"
    assert sorted(p.name for p in folder.iterdir()) == ["abc123.woff2", "embed-amd.js"]
    assert (folder / "embed-amd.js").read_bytes() == BUNDLE
    assert list(cache.iterdir()) == [folder]  # no temporary file or folder left
    assert widgets_js.cached([package], cache)
    # Cached: used as it is, without the registry.
    offline = widgets_js.Package(**{**vars(package), "tarball": closed_port_url()})
    assert widgets_js.fetch(offline, cache) == folder


def test_a_tarball_with_another_digest_is_refused_and_nothing_is_cached(tmp_path):
    package = fake_package(tmp_path, FAKE_FILES)
    expected = "sha512-" + base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    pinned = widgets_js.Package(**{**vars(package), "integrity": expected})
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="@fake/manager@1.0.0") as error:
        widgets_js.fetch(pinned, cache)
    assert expected in str(error.value) and package.integrity in str(error.value)
    assert list(cache.iterdir()) == []
    assert not widgets_js.cached([pinned], cache)


def test_a_bundle_whose_font_is_missing_is_refused_and_nothing_is_cached(tmp_path):
    files = {name: data for name, data in FAKE_FILES.items() if name != "dist/abc123.woff2"}
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="abc123.woff2"):
        widgets_js.fetch(fake_package(tmp_path, files), cache)
    assert list(cache.iterdir()) == []


def test_the_build_serves_the_widget_manager_from_the_book(tmp_path, monkeypatch):
    package = fake_package(tmp_path, FAKE_FILES)
    monkeypatch.setattr(widgets_js, "PACKAGES", (package,))
    source = tmp_path / "source"
    settings = widgets_js.stage(source, tmp_path / "cache")
    assert settings == {
        "html_static_path": [widgets_js.STATIC],
        "nb_ipywidgets_js": {"widgets/embed-amd.js": {}},  # no data-jupyter-widgets-cdn
    }
    served = source / widgets_js.STATIC / "widgets"
    assert sorted(p.name for p in served.iterdir()) == ["abc123.woff2", "embed-amd.js"]


def test_offline_without_a_cache_the_build_keeps_the_cdns_and_says_so(
    tmp_path, monkeypatch, capsys
):
    package = fake_package(tmp_path, FAKE_FILES)
    offline = widgets_js.Package(**{**vars(package), "tarball": closed_port_url()})
    monkeypatch.setattr(widgets_js, "PACKAGES", (offline,))
    source, cache = tmp_path / "source", tmp_path / "cache"
    assert widgets_js.stage(source, cache) is None
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "@fake/manager" in err and "need internet" in err
    assert not (source / widgets_js.STATIC).exists() and list(cache.iterdir()) == []
    # With the package cached, the same offline build serves it.
    widgets_js.fetch(package, cache)
    assert widgets_js.stage(source, cache) is not None
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_book_with_a_repository_has_launch_buttons_a_zip_and_offline_formulas(tmp_path):
    """The real book, staged without executing it (cheap), built with a repository."""
    source = book.stage(tmp_path, repository=REPOSITORY)
    html = book.build_html(source, tmp_path).parent
    for chapter in book.chapters(source):
        rel = chapter.relative_to(source).as_posix()
        page = (html / rel).with_suffix(".html").read_text()
        colab = f"{publish.COLAB_URL}/github/someone/gwn-book/blob/dev/{rel}"
        assert f'href="{colab}"' in page, rel
        hub = re.search(r'href="(https://hub\.test/hub/user-redirect/git-pull\?[^"]+)"', page)
        assert hub and f"repo={REPOSITORY.url}" in unquote(hub.group(1)), rel
        assert f"gwn-book/{rel}" in unquote(hub.group(1)) and "branch=dev" in hub.group(1)
    intro = (html / "book" / "intro.html").read_text()
    link = re.search(r'href="([^"]+gwn-book-notebooks\.zip)"', intro).group(1)
    with zipfile.ZipFile((html / "book" / link).resolve()) as z:
        assert "book/getting_started.ipynb" in z.namelist()
    # Offline: no page loads a script from elsewhere, and the MathJax it loads is in the build.
    for page in html.rglob("*.html"):
        text = page.read_text()
        assert external_scripts(text) == [], page.name
        for src in re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', text):
            assert (page.parent / src.split("?")[0]).resolve().is_file(), src
    assert re.search(r'src="\.\./_static/mathjax/tex-chtml\.js"', intro)
    mathjax = (html / "_static" / "mathjax" / "tex-chtml.js").read_text()
    assert 'VERSION="3.' in mathjax  # MathJax 3, which Sphinx 7's math output is written for
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts").is_dir()


@pytest.mark.slow
def test_a_book_without_a_repository_has_no_launch_buttons(tmp_path):
    """A one-chapter book with the committed config (no repository): no launch or repository
    button, and nothing that points at Jupyter Book's own repository."""
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/chapter\n")
    chapter = load(ROOT / "book" / "getting_started.ipynb")
    chapter["cells"] = [
        {"cell_type": "markdown", "id": "t", "metadata": {}, "source": ["# A chapter\n", "$x$"]},
        {"cell_type": "code", "execution_count": None, "id": "p", "metadata": {}, "outputs": []}
        | {"source": ["x = 1"]},
    ]
    (root / "book" / "chapter.ipynb").write_text(json.dumps(chapter, indent=1) + "\n")
    out = tmp_path / "out"
    html = book.build_html(book.stage(out, root), out).parent
    page = (html / "book" / "chapter.html").read_text()
    assert "colab.research.google.com" not in page and "git-pull" not in page
    assert "github.com" not in page and "executablebooks" not in page
    assert external_scripts(page) == []
    assert 'src="../_static/mathjax/tex-chtml.js"' in page


@pytest.mark.slow
def test_a_page_with_saved_widgets_loads_the_widget_manager_from_the_book(tmp_path):
    """A one-chapter book whose notebook carries an IntSlider's saved state: its page loads
    require.js and the widget manager from ``_static/widgets/``, nothing from elsewhere."""
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/chapter\n")
    model = "0123456789abcdef0123456789abcdef"
    controls = {"_model_module": "@jupyter-widgets/controls", "_model_module_version": "2.0.0"}
    slider = {
        "model_name": "IntSliderModel",
        "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0",
        "state": controls
        | {"_model_name": "IntSliderModel", "_view_name": "IntSliderView"}
        | {"_view_module": "@jupyter-widgets/controls", "_view_module_version": "2.0.0"}
        | {"description": "n", "max": 10, "min": 0, "step": 1, "value": 3},
    }
    view = {"model_id": model, "version_major": 2, "version_minor": 0}
    chapter = load(ROOT / "book" / "getting_started.ipynb")
    chapter["metadata"]["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {model: slider},
        }
    }
    output = {"output_type": "display_data", "metadata": {}}
    output["data"] = {"application/vnd.jupyter.widget-view+json": view, "text/plain": ["n"]}
    chapter["cells"] = [
        {"cell_type": "markdown", "id": "t", "metadata": {}, "source": ["# A chapter"]},
        {"cell_type": "code", "execution_count": 1, "id": "w", "metadata": {}}
        | {"outputs": [output], "source": ["IntSlider(3, 0, 10, description='n')"]},
    ]
    (root / "book" / "chapter.ipynb").write_text(json.dumps(chapter, indent=1) + "\n")
    out = tmp_path / "out"
    html = book.build_html(book.stage(out, root), out).parent
    page = html / "book" / "chapter.html"
    assert "application/vnd.jupyter.widget-state+json" in page.read_text()
    if not widgets_js.cached():
        pytest.skip("the npm registry is unreachable and the widget manager is not cached")
    assert external_scripts(page.read_text()) == []
    scripts = widget_scripts(page)
    assert [path.name for path in scripts] == ["require.js", "embed-amd.js"]
    assert all(path.is_file() for path in scripts)
    served = html / "_static" / "widgets"
    fonts = [path for path in served.iterdir() if path.suffix in (".woff2", ".woff", ".ttf")]
    assert fonts, "the widget manager's icon fonts are not in the build"
    assert "data-jupyter-widgets-cdn" not in page.read_text()

"""Publishing the book: launch buttons, each chapter's install cell, the zip of executed chapters.

A reader of the HTML opens a chapter on Colab or a JupyterHub with the theme's launch buttons,
which need the book's repository: ``repository: {url, branch}`` of ``_config.yml``, or ``python -m
gwnlib book --repository URL [--branch B]``, which writes it into the build's copy of the config
only (:func:`configure`). There gwnlib is missing, so every chapter's first code cell
(:func:`install_cell`, hidden from the HTML) fetches the repository and installs what the hosted
image lacks at the tested pins of ``requirements-lock.txt``; where gwnlib imports (a local
environment, the book build) it does nothing. The build also zips the executed chapters
(:func:`write_notebooks_zip`); the introduction links the zip.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

COLAB_URL = "https://colab.research.google.com"
#: The install cell's id in every chapter; :func:`write_install_cell` replaces the cell by it.
INSTALL_CELL_ID = "install-gwnlib"
#: Out of the HTML (where gwnlib imports it prints nothing); shown to whoever runs the notebook.
INSTALL_CELL_TAGS = ["remove-input"]
#: The zip of the executed chapters, relative to the book's root; ``book/intro.md`` links it.
NOTEBOOKS_ZIP = "book/gwn-book-notebooks.zip"

#: Installed without their dependencies (as ``.ci/gpu wheels``): CompressAI's metadata caps numpy
#: below 2, which would make pip replace a hosted image's numpy 2 and break the image.
NO_DEPS = ("compressai", "pytorch-msssim")
#: What the hosted image lacks: gwnlib's requirements (pyproject.toml) that hosted images do not
#: ship, and CompressAI's imports (einops, torch-geometric), at the tested pins.
INSTALLED = ("einops", "torch-geometric", "submitit", "torchmetrics", "pycocotools", "papermill")
#: gwnlib's requirements that a hosted image already has; its own versions are kept.
HOSTED = ("numpy", "torch", "torchvision", "scipy", "pandas", "matplotlib", "tqdm", "ipywidgets")


@dataclass(frozen=True)
class Repository:
    """Where the book's sources live, for launch buttons and for the install cell."""

    url: str  # e.g. https://github.com/OWNER/gwn-book
    branch: str = "main"
    jupyterhub: str | None = None  # a JupyterHub with nbgitpuller; None: no JupyterHub button


def repository_of(config: dict) -> Repository | None:
    """The repository named by a Jupyter Book config (``_config.yml`` as a dict), or None."""
    block = config.get("repository") or {}
    if not block.get("url"):
        return None
    hub = (config.get("launch_buttons") or {}).get("jupyterhub_url") or None
    return Repository(block["url"].rstrip("/"), block.get("branch") or "main", hub)


def configure(config: dict, repository: Repository | None) -> dict:
    """``config`` with the launch settings of ``repository``: the repository block, the Colab
    and (with a hub) JupyterHub buttons and the repository button; with None, none of them."""
    config = dict(config)
    launch = dict(config.get("launch_buttons") or {})
    html = dict(config.get("html") or {})
    for key in ("colab_url", "jupyterhub_url", "binderhub_url"):
        launch.pop(key, None)
    html["use_repository_button"] = repository is not None
    if repository is None:
        config["repository"] = {"url": ""}  # not Jupyter Book's default (its own repository)
    else:
        config["repository"] = {
            "url": repository.url,
            "branch": repository.branch,
            "path_to_book": "",  # _config.yml is at the repository's top; chapters in book/
        }
        launch["colab_url"] = COLAB_URL
        if repository.jupyterhub:
            launch["jupyterhub_url"] = repository.jupyterhub
    config["launch_buttons"], config["html"] = launch, html
    return config


def lock_pins(lock: Path) -> dict[str, str]:
    """``{name: "name==version"}`` of a pip constraints file (names lower-case, ``_`` as ``-``)."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name = line.split("==")[0].strip().lower().replace("_", "-")
            pins[name] = line.strip()
    return pins


def install_cell(repository: Repository | None, lock: Path) -> str:
    """The source of every chapter's first code cell (see the module docstring).

    Without gwnlib, it uses the checkout around the notebook (a JupyterHub's git-pull opens
    ``book/CHAPTER.ipynb`` of a clone) or clones ``repository`` beside it (Colab), installs
    :data:`NO_DEPS` without dependencies and :data:`INSTALLED` normally, at ``lock``'s pins, and
    puts the checkout on ``sys.path``. Without a repository it says what is missing instead.
    """
    pins = lock_pins(lock)
    fetch = (
        f"!git clone -q --depth 1 --branch {repository.branch} {repository.url} {{root}}"
        if repository
        else 'raise ModuleNotFoundError("gwnlib is missing; see the README to install it")'
    )
    installed = textwrap.wrap(" ".join(pins[name] for name in INSTALLED), 76)
    lines = [
        "# On Colab or a JupyterHub, where gwnlib is missing: fetch the book's repository and",
        "# install what the image lacks (tested pins). Where gwnlib imports, this does nothing.",
        "import importlib.util",
        "",
        'if importlib.util.find_spec("gwnlib") is None:',
        "    import os",
        "    import sys",
        "",
        '    root = os.path.abspath("..")  # a clone (a JupyterHub git-pull) has gwnlib',
        '    if not os.path.isdir(os.path.join(root, "gwnlib")):',
        '        root = os.path.abspath("gwn-book")',
        "        if not os.path.isdir(root):",
        f"            {fetch}",
        "    # CompressAI without dependencies (.ci/gpu wheels): its cap would replace numpy 2",
        f"    %pip install -q --no-deps {' '.join(pins[name] for name in NO_DEPS)}",
        *(f"    %pip install -q {line}" for line in installed),
        "    sys.path.insert(0, root)",
    ]
    return "\n".join(lines)


def write_install_cell(path: Path, source: str) -> bool:
    """Make the code cell ``source`` (id :data:`INSTALL_CELL_ID`) the first code cell of the
    notebook at ``path``: replaced where it exists, else inserted after the title cell. Every
    other cell stays byte-identical. Returns whether the file changed."""
    text = path.read_text(encoding="utf-8")
    notebook = json.loads(text)
    if _dumps(notebook) != text:
        raise ValueError(f"{path} is not in nbformat's layout (indent 1): save it in Jupyter first")
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": INSTALL_CELL_ID,
        "metadata": {"tags": list(INSTALL_CELL_TAGS)},
        "outputs": [],
        "source": source.splitlines(keepends=True),
    }
    cells = [c for c in notebook["cells"] if c.get("id") != INSTALL_CELL_ID]
    at = 1 if cells and cells[0]["cell_type"] == "markdown" else 0
    notebook["cells"] = [*cells[:at], cell, *cells[at:]]
    new = _dumps(notebook)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def _dumps(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def write_notebooks_zip(source: Path, notebooks: list[Path]) -> Path:
    """Zip ``notebooks`` (the executed chapters of the staged book ``source``) into
    :data:`NOTEBOOKS_ZIP`, under their paths relative to ``source``."""
    target = source / NOTEBOOKS_ZIP
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for notebook in notebooks:
            archive.write(notebook, notebook.relative_to(source).as_posix())
    return target

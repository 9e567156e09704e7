"""The ipywidgets manager of the built HTML, served from the book itself instead of CDNs.

A page with saved widget state needs require.js and the widget manager of
``@jupyter-widgets/html-manager`` (``dist/embed-amd.js``, which bundles the base, controls and
output widgets and loads the Font Awesome fonts of its CSS from its own folder); myst-nb loads
both from CDNs by default. :func:`fetch` downloads the npm tarball of each of :data:`PACKAGES`
(exact versions, checked against npm's ``dist.integrity``) once into :func:`cache` and keeps only
those files; :func:`stage` copies them into a staged book, whose HTML then has them in
``_static/widgets/``, and gives the Sphinx settings that make myst-nb load them from there.

Without the registry and without a cached copy, :func:`stage` prints a warning and returns None:
the build keeps myst-nb's CDN defaults, and the widget pages need internet.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gwnlib.runtime import cache_dir

#: The staged book's folder that ``html_static_path`` adds; its ``widgets/`` becomes the HTML's
#: ``_static/widgets/``. Not ``_static``: Jupyter Book would load every script there on every page.
STATIC = "_widgets_static"
#: Seconds to wait on the registry before a download counts as unreachable.
TIMEOUT = 60.0
#: A file that webpack's bundle loads from its own folder (``__webpack_require__.p + "NAME"``).
_ASSET = re.compile(rb'\.p\+"([\w.-]+\.(?:eot|svg|ttf|woff2?))"')


@dataclass(frozen=True)
class Package:
    """One npm package pinned to an exact tarball, and the script the HTML loads from it."""

    name: str
    version: str
    tarball: str  # npm's dist.tarball
    integrity: str  # npm's dist.integrity: "sha512-" and the tarball's base64 SHA-512
    script: str  # path inside the tarball's package/ folder; copied with its bundled assets

    @property
    def folder(self) -> str:
        """The name of its folder in the cache, e.g. ``jupyter-widgets-html-manager-1.0.15``."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


#: In loading order. html-manager 1.0.15 is the one of ipywidgets 8.1.9 (its controls ^5.0.13,
#: base ^6.0.12 and output ^6.0.12 are those of jupyterlab_widgets 3.0.17).
PACKAGES = (
    Package(
        "requirejs",
        "2.3.8",
        "https://registry.npmjs.org/requirejs/-/requirejs-2.3.8.tgz",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        "require.js",
    ),
    Package(
        "@jupyter-widgets/html-manager",
        "1.0.15",
        "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        "dist/embed-amd.js",
    ),
)


class Unreachable(OSError):
    """The registry did not answer (no network, a refused connection, a timeout)."""


def cache() -> Path:
    """Where the extracted packages are kept: ``widgets-js`` in gwnlib's cache folder."""
    return cache_dir() / "widgets-js"


def cached(packages: tuple[Package, ...] | None = None, folder: Path | None = None) -> bool:
    """Whether every one of ``packages`` (default :data:`PACKAGES`) is extracted in ``folder``
    (default :func:`cache`)."""
    folder = folder or cache()
    return all((folder / package.folder).is_dir() for package in packages or PACKAGES)


def fetch(package: Package, folder: Path | None = None) -> Path:
    """The folder in ``folder`` (default :func:`cache`) that holds ``package``'s script and the
    assets it bundles, downloaded and extracted on first use.

    The tarball goes to a temporary folder beside it and is checked against the pinned integrity
    before anything is extracted; the extracted files are renamed into place in one step, so the
    cache holds either all of them or nothing. Raises :class:`Unreachable` when the registry does
    not answer, ``ValueError`` naming the package and both digests when the tarball is not the
    pinned one, and ``RuntimeError`` when the registry answers with an HTTP error.
    """
    folder = folder or cache()
    target = folder / package.folder
    if target.is_dir():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{package.folder}-", dir=folder) as tmp:
        tarball = Path(tmp) / "package.tgz"
        actual = _download(package, tarball)
        if actual != package.integrity:
            raise ValueError(
                f"npm package {package.name}@{package.version} from {package.tarball} is not "
                f"the pinned one: expected integrity {package.integrity}, got {actual}; "
                "nothing was cached"
            )
        extracted = Path(tmp) / package.folder
        _extract(package, tarball, extracted)
        try:
            extracted.rename(target)
        except OSError:
            if not target.is_dir():  # else another build extracted it first
                raise
    return target


def _download(package: Package, path: Path) -> str:
    """Write ``package``'s tarball to ``path``; return its integrity string (``sha512-...``)."""
    digest = hashlib.sha512()
    try:
        with urllib.request.urlopen(package.tarball, timeout=TIMEOUT) as response:
            with path.open("wb") as file:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    file.write(chunk)
    except urllib.error.HTTPError as e:  # the registry answered: a wrong pin, not no network
        raise RuntimeError(
            f"npm package {package.name}@{package.version}: {package.tarball} answered "
            f"HTTP {e.code} {e.reason}"
        ) from e
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise Unreachable(f"cannot download {package.name} from {package.tarball}: {e}") from e
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def _extract(package: Package, tarball: Path, folder: Path) -> None:
    """Extract ``package.script`` and the assets it loads from its folder, flat into ``folder``."""
    folder.mkdir()
    script = f"package/{package.script}"
    with tarfile.open(tarball, "r:gz") as archive:
        names = set(archive.getnames())
        if script not in names:
            raise ValueError(f"npm package {package.name}@{package.version} has no {script}")
        code = archive.extractfile(script).read()
        base = script.rpartition("/")[0]
        assets = sorted({name.decode() for name in _ASSET.findall(code)})
        missing = [name for name in assets if f"{base}/{name}" not in names]
        if missing:
            raise ValueError(
                f"npm package {package.name}@{package.version}: {script} loads "
                f"{', '.join(missing)}, which the tarball lacks"
            )
        (folder / Path(script).name).write_bytes(code)
        for name in assets:
            (folder / name).write_bytes(archive.extractfile(f"{base}/{name}").read())


def stage(source: Path, folder: Path | None = None) -> dict | None:
    """Copy the widget manager into the staged book ``source`` (``STATIC/widgets/``) and return
    the Sphinx settings that serve it: ``html_static_path`` and myst-nb's ``nb_ipywidgets_js``.

    Packages come from :func:`fetch` (cache ``folder``). When the registry is unreachable and a
    package is not cached, prints a warning and returns None (myst-nb's CDN defaults stay).
    """
    try:
        fetched = [fetch(package, folder) for package in PACKAGES]
    except Unreachable as error:
        print(
            f"warning: {error}, and it is not cached in {folder or cache()}: the HTML's pages "
            "with widgets load require.js and the widget manager from CDNs (myst-nb's "
            "defaults) and need internet to show their widgets",
            file=sys.stderr,
        )
        return None
    target = source / STATIC / "widgets"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for extracted in fetched:
        for file in extracted.iterdir():
            shutil.copy2(file, target / file.name)
    scripts = {f"widgets/{Path(package.script).name}": {} for package in PACKAGES}
    return {"html_static_path": [STATIC], "nb_ipywidgets_js": scripts}

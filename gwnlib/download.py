"""Resumable, checksummed downloads of the public datasets (COCO's zips, chapter on vision tasks).

The vision experiments of the paper (Sec. 4.3, appendix D.5) read COCO 2017, whose archives are
large (train2017.zip is 18 GiB). :func:`download_url` fetches one file with the standard library
alone (``urllib``, no extra dependency) and is safe to interrupt:

* bytes go to ``<path>.part``; a later call resumes from its end with an HTTP ``Range`` request,
  and starts over when the server ignores the range (answers 200 rather than 206);
* a connection that drops mid-file is resumed automatically (``retries`` times), then reported
  with the ``.part`` kept for the next call;
* the finished file is checked against the expected MD5 and/or SHA-256 before it is renamed to
  ``path`` (a rename, so ``path`` is never a partial file); a mismatch deletes the ``.part`` and
  raises. The SHA-256 is always computed and logged, so a file downloaded without a known
  checksum can be pinned afterwards;
* a ``path`` that already exists with the expected checksum is not downloaded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from gwnlib.runtime import check_int, show_progress

__all__ = ["download_url", "file_hash"]

_LOG = logging.getLogger(__name__)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)-?(\d*)/(\d+|\*)")


def file_hash(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """The hex digest of the file at ``path`` under ``algorithm`` (any name ``hashlib`` knows,
    e.g. ``"md5"`` or ``"sha256"``), read ``chunk_size`` bytes at a time."""
    return _hashes(Path(path), (algorithm,), chunk_size)[algorithm]


def download_url(
    url: str,
    path: str | Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool | None = None,
    chunk_size: int = 1 << 20,
    retries: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``path`` (resumably, checked against ``md5`` / ``sha256``); return
    ``path``.

    ``path`` already there: kept without a download when it matches the given checksums (or when
    no checksum is given); a file that does not match is downloaded again. Otherwise the bytes go
    to ``<path>.part``, resumed from its current size with a ``Range`` request when it exists;
    a server answering 200 instead of 206 sends the whole file, which replaces the ``.part``. A
    connection that ends before the announced length is resumed up to ``retries`` times, after
    which ``ConnectionError`` is raised with the ``.part`` kept, so that calling again resumes.
    The finished ``.part`` is hashed (SHA-256 always, logged at INFO level; MD5 when ``md5`` is
    given); a mismatch deletes it and raises ``ValueError`` naming the expected and computed
    digests. Only a verified file is renamed to ``path``. ``progress``: draw a byte progress bar
    (default: :func:`gwnlib.runtime.show_progress`). ``timeout``: seconds a socket may wait.
    """
    path = Path(path)
    expected = _expected_digests(md5, sha256)
    check_int("chunk_size", chunk_size)
    check_int("retries", retries, low=0)
    if path.exists() and _existing_file_is_good(path, expected, chunk_size):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    attempts = 0
    while not _fetch(url, part, progress, chunk_size, timeout):
        attempts += 1
        if attempts > retries:
            raise ConnectionError(
                f"the download of {url} stopped at {part.stat().st_size} bytes after "
                f"{attempts} attempt(s); the partial file {part} is kept, call again to resume"
            )
        _LOG.warning("connection to %s dropped; resuming (attempt %d)", url, attempts + 1)
    _verify(part, url, expected, chunk_size)
    os.replace(part, path)
    return path


def _expected_digests(md5: str | None, sha256: str | None) -> dict[str, str]:
    expected = {}
    for name, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is None:
            continue
        if not isinstance(value, str) or not re.fullmatch(f"[0-9a-fA-F]{{{length}}}", value):
            raise ValueError(f"{name} must be a {length}-digit hex string or None; got {value!r}")
        expected[name] = value.lower()
    return expected


def _existing_file_is_good(path: Path, expected: dict[str, str], chunk_size: int) -> bool:
    """Whether ``path`` (which exists) can be kept: it matches ``expected``, or nothing is
    expected."""
    if not expected:
        _LOG.info("%s exists and no checksum was given; keeping it", path)
        return True
    got = _hashes(path, tuple(expected), chunk_size)
    if got == expected:
        _LOG.info("%s exists with the expected checksum; not downloading it again", path)
        return True
    _LOG.warning("%s exists but its checksum differs (%s); downloading it again", path, got)
    return False


def _fetch(url: str, part: Path, progress: bool | None, chunk_size: int, timeout: float) -> bool:
    """One request that appends to (or restarts) ``part``; True when ``part`` is then complete,
    False when the connection ended early (``part`` keeps what arrived)."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "gwnlib-download"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        return _handle_unsatisfiable_range(part, offset, error)
    with response:
        if response.status == 206 and _range_start(response) == offset:
            mode, done = "ab", offset
        elif response.status == 206:  # a range we did not ask for: start over
            response.close()
            part.unlink()
            return _fetch(url, part, progress, chunk_size, timeout)
        else:  # 200: the server sends the whole file
            if offset:
                _LOG.info("%s does not resume downloads; restarting %s", url, part.name)
            mode, done = "wb", 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=done,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name[: -len(".part")],
                disable=not show_progress(progress),
            ) as bar,
        ):
            try:
                while chunk := response.read(chunk_size):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:  # reset or timed out mid-file
                _LOG.warning("reading %s failed: %s", url, error)
                return False
    return total is None or part.stat().st_size == total


def _range_start(response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match is None or match.group(1) == "*":
        return None
    return int(match.group(1))


def _handle_unsatisfiable_range(part: Path, offset: int, error: urllib.error.HTTPError) -> bool:
    """A 416 answer to ``bytes=offset-``: the ``.part`` is complete when the server's size is
    ``offset``; otherwise it is longer than the file and is deleted so that the next try starts
    over."""
    match = _CONTENT_RANGE.match(error.headers.get("Content-Range", "") if error.headers else "")
    if match is not None and match.group(3) != "*" and int(match.group(3)) == offset:
        return True
    part.unlink()
    return False


def _verify(part: Path, url: str, expected: dict[str, str], chunk_size: int) -> None:
    got = _hashes(part, tuple(dict.fromkeys(("sha256", *expected))), chunk_size)
    _LOG.info("downloaded %s (%d bytes), sha256 %s", url, part.stat().st_size, got["sha256"])
    wrong = {name: value for name, value in expected.items() if got[name] != value}
    if wrong:
        with contextlib.suppress(OSError):
            part.unlink()
        details = "; ".join(
            f"{name}: expected {value}, got {got[name]}" for name, value in wrong.items()
        )
        raise ValueError(f"checksum mismatch for {url} ({details}); the download was deleted")


def _hashes(path: Path, algorithms: tuple[str, ...], chunk_size: int) -> dict[str, str]:
    """Digests of ``path`` under each of ``algorithms``, in one pass over the file."""
    try:
        hashers = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}
    except ValueError:
        known = ", ".join(sorted(hashlib.algorithms_available))
        raise ValueError(f"algorithm must be one of {known}; got {algorithms!r}") from None
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}

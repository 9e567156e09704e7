"""gwnlib.download against a local HTTP server: full, resumed, restarted and rejected downloads.

No network: a ThreadingHTTPServer on 127.0.0.1 serves bytes from memory. Its handler answers
``Range: bytes=N-`` with 206 (or ignores it, like servers without range support), and can drop the
connection after a given number of body bytes to imitate a broken download.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import re
import threading
import urllib.error

import numpy as np
import pytest

from gwnlib.download import download_url, file_hash

DATA = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
MD5 = hashlib.md5(DATA).hexdigest()
SHA256 = hashlib.sha256(DATA).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (the name http.server calls)
        server = self.server
        server.requests.append(self.headers.get("Range"))
        data = server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        ranged = self.headers.get("Range")
        if server.ranges and ranged:
            start = int(re.fullmatch(r"bytes=(\d+)-", ranged).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drops:  # announce the whole body, send only its start, hang up
            self.wfile.write(body[: server.drops.pop(0)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"data.bin": DATA}
    httpd.ranges = True  # honour Range requests
    httpd.drops = []  # body bytes sent before hanging up, one entry per request to cut
    httpd.requests = []  # the Range header of each request (None when absent)
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/data.bin"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _get(server, path, **kwargs):
    kwargs = {"progress": False, "chunk_size": 8192, **kwargs}
    return download_url(server.url, path, **kwargs)


def test_full_download_is_verified_and_renamed(server, tmp_path, caplog):
    target = tmp_path / "sub" / "data.bin"
    with caplog.at_level(logging.INFO, logger="gwnlib.download"):
        assert _get(server, target, md5=MD5, sha256=SHA256) == target
    assert target.read_bytes() == DATA
    assert not target.with_name("data.bin.part").exists()
    assert server.requests == [None]
    assert SHA256 in caplog.text  # logged, so a download without a checksum can be pinned


def test_dropped_connection_leaves_a_part_that_the_next_call_resumes(server, tmp_path):
    target = tmp_path / "data.bin"
    part = tmp_path / "data.bin.part"
    server.drops = [100_000]
    with pytest.raises(ConnectionError, match="call again to resume"):
        _get(server, target, md5=MD5, retries=0)
    assert part.stat().st_size == 100_000 and not target.exists()
    assert part.read_bytes() == DATA[:100_000]
    _get(server, target, md5=MD5)
    assert target.read_bytes() == DATA
    assert server.requests == [None, "bytes=100000-"]
    assert not part.exists()


def test_dropped_connections_are_resumed_within_one_call(server, tmp_path):
    server.drops = [50_000, 150_000]
    target = _get(server, tmp_path / "data.bin", sha256=SHA256)
    assert target.read_bytes() == DATA
    assert server.requests == [None, "bytes=50000-", "bytes=200000-"]


def test_checksum_mismatch_raises_and_leaves_no_file(server, tmp_path):
    target = tmp_path / "data.bin"
    wrong = "0" * 32
    with pytest.raises(ValueError, match=f"expected {wrong}, got {MD5}"):
        _get(server, target, md5=wrong)
    assert not target.exists()
    assert not (tmp_path / "data.bin.part").exists()
    with pytest.raises(ValueError, match="sha256: expected"):
        _get(server, target, sha256="f" * 64)
    assert list(tmp_path.iterdir()) == []


def test_existing_good_file_is_not_downloaded_again(server, tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(DATA)
    _get(server, target, md5=MD5, sha256=SHA256)
    _get(server, target)  # no checksum to check: kept as it is
    assert server.requests == []
    target.write_bytes(b"stale")  # a file that does not match is replaced
    _get(server, target, md5=MD5)
    assert target.read_bytes() == DATA
    assert server.requests == [None]


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    server.ranges = False
    part = tmp_path / "data.bin.part"
    part.write_bytes(b"junk" * 1000)  # would corrupt the file if appended to
    target = _get(server, tmp_path / "data.bin", md5=MD5)
    assert target.read_bytes() == DATA
    assert server.requests == ["bytes=4000-"]  # asked for a range, got the whole file (200)
    assert not part.exists()


def test_complete_part_is_finished_on_416(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(DATA)
    target = _get(server, tmp_path / "data.bin", md5=MD5)
    assert target.read_bytes() == DATA
    assert server.requests == [f"bytes={len(DATA)}-"]


def test_part_longer_than_the_file_starts_over(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(DATA + b"extra")
    target = _get(server, tmp_path / "data.bin", md5=MD5)
    assert target.read_bytes() == DATA
    assert server.requests == [f"bytes={len(DATA) + 5}-", None]


def test_http_errors_propagate_without_leaving_files(server, tmp_path):
    server.url = server.url.replace("data.bin", "missing.bin")
    with pytest.raises(urllib.error.HTTPError):
        _get(server, tmp_path / "missing.bin")
    assert list(tmp_path.iterdir()) == []


def test_argument_errors(tmp_path):
    url = "http://127.0.0.1:9/never"
    with pytest.raises(ValueError, match="md5 must be a 32-digit hex string"):
        download_url(url, tmp_path / "x", md5="abc")
    with pytest.raises(ValueError, match="sha256 must be a 64-digit hex string"):
        download_url(url, tmp_path / "x", sha256=MD5)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        download_url(url, tmp_path / "x", chunk_size=0)
    with pytest.raises(ValueError, match="retries must be an integer >= 0"):
        download_url(url, tmp_path / "x", retries=-1)


def test_file_hash(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    assert file_hash(path) == SHA256
    assert file_hash(path, "md5", chunk_size=1000) == MD5
    with pytest.raises(ValueError, match="algorithm must be one of"):
        file_hash(path, "no-such-hash")

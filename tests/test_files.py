"""Atomic files: a failed or killed writer never leaves a broken file."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gwnlib import files


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(path, {"old": True})

    def broken(f):
        f.write(b'{"new": tr')  # half a file, then the writer dies
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(path, broken)
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_writer_killed_at_any_moment_leaves_a_whole_file(tmp_path):
    path = tmp_path / "state.json"
    script = textwrap.dedent(f"""
        from gwnlib.files import write_json
        i = 0
        while True:
            write_json({str(path)!r}, {{"i": i, "pad": "x" * 2_000_000}})
            i += 1
    """)
    for delay in (0.6, 0.9, 1.3):
        proc = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        while not path.exists():
            time.sleep(0.05)
        time.sleep(0.05 * delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        value = json.loads(path.read_text())  # never a torn file
        assert len(value["pad"]) == 2_000_000
    files.remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]

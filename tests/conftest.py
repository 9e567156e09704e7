"""Shared test setup: the offline data root, a private runs folder and the gpu marker."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests and CI read real data from the offline copy beside the checkout when it exists.
if not os.environ.get("GWN_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["GWN_DATA_DIR"] = str(SHARED_DATA)

# Training runs made by tests (and by the chapters they execute) go to a fresh folder, never into
# the user's run cache: a test must train, not find an old result.
# The folder is removed when the session ends: the runs weigh a few GB, and a machine that runs
# the tests again and again (CI, a laptop) must not fill its disk with them.
PRIVATE_RUNS = None
if not os.environ.get("GWN_RUNS_DIR"):
    PRIVATE_RUNS = tempfile.mkdtemp(prefix="gwn-test-runs-")
    os.environ["GWN_RUNS_DIR"] = PRIVATE_RUNS


def pytest_sessionfinish(session, exitstatus):
    if PRIVATE_RUNS is not None:
        shutil.rmtree(PRIVATE_RUNS, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

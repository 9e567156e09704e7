"""Shared test setup: the offline data root and the gpu marker."""

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests and CI read real data from the offline copy beside the checkout when it exists.
if not os.environ.get("GWN_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["GWN_DATA_DIR"] = str(SHARED_DATA)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

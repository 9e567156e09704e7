"""Readers of results tables that the chapters share (gwnlib.analysis.results)."""

import numpy as np
import pandas as pd

from gwnlib.analysis import results


def table():
    return pd.DataFrame(
        {
            "codec": ["joint", "joint", "shared", "shared", "shared"],
            "beta": [1.0, 1.0, 1.0, 1.0, 2.0],
            "rate_transmit": [1.0, 2.0, 1.5, 2.5, 1.2],
            "d1": [0.3, 0.2, 0.3, 0.2, 0.4],
            "d2": [0.1, 0.1, 0.2, 0.1, 0.4],
            "hardware": ["CPU: b", "CPU: a", "CPU: a", "CPU: a", "GPU: c"],
            "preset": ["short"] * 5,
            "source": ["committed"] * 5,
            "date": ["2026-12-02T10:00", "2026-12-04T09:00", *["2026-12-03T00:00"] * 3],
        }
    )


def test_curve_selects_codec_and_beta_and_sums_the_quality_columns():
    rates, quality = results.curve(table(), "shared", beta=1.0)
    assert rates.tolist() == [1.5, 2.5] and np.allclose(quality, [0.5, 0.3])
    rates, quality = results.curve(table(), "joint", quality=("d1",))
    assert rates.tolist() == [1.0, 2.0] and quality.tolist() == [0.3, 0.2]


def test_hardware_names_and_provenance():
    t = table()
    assert results.hardware_of(t) == "CPU: a; CPU: b; GPU: c"
    assert results.hardware_of({"x": t[t.codec == "joint"], "y": t.tail(1)}) == (
        "CPU: a; CPU: b; GPU: c"
    )
    assert results.source_name("smoke", "smoke") == "this build (smoke)"
    assert results.source_name("short", "smoke") == "committed (short)"
    assert results.provenance(t) == (
        "committed runs, preset short, 2026-12-02 to 2026-12-04\nCPU: a; CPU: b; GPU: c"
    )

"""Metrics for comparing codecs: the Bjontegaard delta rate (BD-rate).

The paper compares rate-distortion curves by BD-rate (Bjontegaard 2001; paper Fig. 3-5, appendix
D): fit ln(rate) as a cubic polynomial of the quality axis for each curve, integrate both fits
over the range of quality where the curves overlap, and report exp(mean difference) - 1 in
percent. Positive means the test codec needs more rate than the anchor for the same quality.
The quality axis here is whatever the experiment plots (for the synthetic study, RMSE1 + RMSE2,
where lower is better; the sign of the axis does not change the result).
"""

from __future__ import annotations

import numpy as np


def bd_rate(anchor_rates, anchor_quality, test_rates, test_quality) -> float:
    """BD-rate of the test curve against the anchor curve, in percent (Bjontegaard 2001).

    Each curve needs at least 4 points with positive rates (a cubic fit); the two quality ranges
    must overlap. Points need not be sorted.
    """
    curves = []
    for name, rates, quality in (
        ("anchor", anchor_rates, anchor_quality),
        ("test", test_rates, test_quality),
    ):
        rates = np.asarray(rates, dtype=np.float64)
        quality = np.asarray(quality, dtype=np.float64)
        if rates.shape != quality.shape or rates.ndim != 1:
            raise ValueError(f"{name} rates and quality must be 1-D and of equal length")
        if len(rates) < 4:
            raise ValueError(
                f"{name} curve needs at least 4 points for a cubic fit; got {len(rates)}"
            )
        if np.any(rates <= 0) or not np.all(np.isfinite(rates) & np.isfinite(quality)):
            raise ValueError(f"{name} rates must be finite and > 0 (BD-rate fits log rate)")
        curves.append((np.polyfit(quality, np.log(rates), 3), quality.min(), quality.max()))
    (fit_a, lo_a, hi_a), (fit_t, lo_t, hi_t) = curves
    lo, hi = max(lo_a, lo_t), min(hi_a, hi_t)
    if not hi > lo:
        raise ValueError(
            f"the quality ranges do not overlap ([{lo_a}, {hi_a}] vs [{lo_t}, {hi_t}])"
        )

    def integral(fit):
        primitive = np.polyint(fit)
        return np.polyval(primitive, hi) - np.polyval(primitive, lo)

    mean_log_ratio = (integral(fit_t) - integral(fit_a)) / (hi - lo)
    return float((np.exp(mean_log_ratio) - 1) * 100)

"""Figure functions and the beta explorer: they draw what they claim, headless."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gwnlib.analysis import (
    paper,  # noqa: E402
    plots,
)
from gwnlib.analysis.metrics import empirical_mutual_information  # noqa: E402
from gwnlib.theory.gray_wyner import GrayWynerBounds  # noqa: E402

BOUNDS = GrayWynerBounds(joint=2.47, marginal1=2.0, marginal2=2.0, wyner=1.87, gacs_korner=1.0)
# A convex boundary from K = 1 (receive-optimal) to C = 1.87 (transmit-optimal), with segment
# slopes -1.78, -1.66, -1.34, -1.2: beta picks the vertex where the slope crosses -beta.
CURVE = [
    SimpleNamespace(r0=r0, r1=r12 / 2, r2=r12 / 2)
    for r0, r12 in [(1.0, 2.0), (1.23, 1.59), (1.67, 0.86), (1.81, 0.672), (1.87, 0.60)]
]


@pytest.mark.parametrize(
    ("beta", "r0"), [(1.001, 1.87), (1.3, 1.81), (1.6, 1.67), (1.7, 1.23), (1.8, 1.0), (1.999, 1.0)]
)
def test_beta_selects_the_touching_point(beta, r0):
    assert plots.beta_selection(CURVE, beta).r0 == r0


def test_region_figure_marks_c_k_and_the_planes():
    ax = plots.gray_wyner_region(BOUNDS, tradeoff=CURVE, title="t")
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(label.startswith("A:") for label in labels)
    assert any(label.startswith("B, C:") for label in labels)
    assert "K = 1.000" in labels and "C = 1.870" in labels and "computed boundary" in labels
    assert ax.get_xlabel().startswith("common rate") and ax.get_title() == "t"
    plt.close("all")


def test_beta_choices_draws_one_marker_per_beta():
    ax = plots.beta_choices(BOUNDS, CURVE, [1.001, 1.5, 1.999])
    labels = [line.get_label() for line in ax.get_lines() if "beta" in line.get_label()]
    assert len(labels) == 3 and "R_0$ = 1.87" in labels[0] and "R_0$ = 1.00" in labels[2]
    plt.close("all")


def test_beta_explorer_redraws_on_the_slider(monkeypatch):
    pytest.importorskip("ipywidgets", reason="the book's packages are not installed (GPU image)")
    from gwnlib.analysis.widgets import beta_explorer

    monkeypatch.setattr(plt, "show", lambda: None)
    box = beta_explorer(BOUNDS, CURVE)
    slider, out = box.children
    assert (slider.min, slider.max, slider.value) == (1.0, 2.0, 1.5)
    slider.value = 1.95  # triggers a redraw through the observer
    assert slider.value == 1.95 and out is box.children[1]
    plt.close("all")


# Our "own" runs for the rate-distortion figures: the paper's synthetic table with rates 5% higher
# and the rows shuffled, so that the figures must sort each line by quality.
PAPER = paper.results("synthetic")
RUNS = PAPER.assign(rate_transmit=PAPER.rate_transmit * 1.05, r0=PAPER.r0 * 1.05).sample(
    frac=1, random_state=0
)


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_rate_distortion_draws_one_sorted_line_per_group_and_the_papers_points_hollow():
    ax = plots.rate_distortion(RUNS, paper=PAPER)
    lines = _lines(ax)
    codecs = ["combined", "independent", "joint", "separated", "shared"]
    assert sorted(lines) == sorted(codecs + [f"{codec} (paper)" for codec in codecs])
    for codec in codecs:
        ours, theirs = lines[codec], lines[f"{codec} (paper)"]
        x = ours.get_xdata()
        assert list(x) == sorted(x) and len(x) == len(PAPER[PAPER.codec == codec])
        assert ours.get_linestyle() == "-" and theirs.get_linestyle() == "None"
        assert theirs.get_markerfacecolor() == "none" and theirs.get_color() == ours.get_color()
    joint = PAPER[PAPER.codec == "joint"].sort_values("d1")
    assert list(lines["joint (paper)"].get_ydata()) == list(joint.rate_transmit)
    assert ax.get_xlabel() == "$D_1$ + $D_2$ (RMSE)"
    assert ax.get_ylabel() == "transmit rate $R_t$ (bits per pixel)"
    plt.close("all")


def test_rate_distortion_groups_by_several_columns_and_matches_the_papers_nan_beta():
    ax = plots.rate_distortion(RUNS, rate="rate_receive", by=["codec", "beta"], paper=PAPER)
    labels = set(_lines(ax))
    assert {"shared, beta = 1", "shared, beta = 1.5", "separated, beta = 2"} <= labels
    assert {"joint, beta = nan", "joint, beta = nan (paper)", "shared, beta = 2 (paper)"} <= labels
    assert len(labels) == 2 * 11 and ax.get_ylabel().startswith("receive rate")
    ax = plots.rate_distortion(RUNS, quality="d1", by=["codec", "beta"], quality_unit="MSE",
                               label_format="{codec} at {beta}")  # fmt: skip
    assert "shared at 1.5" in _lines(ax) and ax.get_xlabel() == "$D_1$ (MSE)"
    plt.close("all")


def test_rate_distortion_names_a_missing_column():
    with pytest.raises(KeyError, match="results has no column 'd2'"):
        plots.rate_distortion(RUNS.drop(columns="d2"))
    with pytest.raises(KeyError, match="results has no column 'pmf'"):
        plots.rate_distortion(RUNS, by="pmf")
    with pytest.raises(KeyError, match="paper has no column 'd1'"):
        plots.rate_distortion(RUNS, paper=paper.results("colored_mnist"))
    plt.close("all")


def test_common_rate_draws_one_line_per_beta_with_the_mutual_information():
    joint, independent = PAPER[PAPER.codec == "joint"], PAPER[PAPER.codec == "independent"]
    empirical = empirical_mutual_information(
        joint.rate_transmit, joint.d1 + joint.d2, independent.rate_transmit,
        independent.d1 + independent.d2,
    )  # fmt: skip
    theory = ([0.9, 0.1, 0.5], [0.05, 0.3, 0.15])
    ax = plots.common_rate(RUNS, theory=theory, empirical=empirical, paper=PAPER)
    lines = _lines(ax)
    for beta in ("1", "1.5", "2"):
        ours = lines[rf"shared, $\beta$ = {beta}"]
        theirs = lines[rf"shared, $\beta$ = {beta} (paper)"]
        assert list(ours.get_xdata()) == sorted(ours.get_xdata())
        assert theirs.get_markerfacecolor() == "none" and theirs.get_color() == ours.get_color()
    assert list(lines[r"$I(\hat Z_1; \hat Z_2)$, theory"].get_xdata()) == [0.1, 0.5, 0.9]
    empirical_line = lines[r"$\hat I(\hat Z_1; \hat Z_2)$, empirical"]
    assert list(empirical_line.get_ydata()) == list(empirical.mutual_information)
    assert len(lines) == 8 and ax.get_ylabel() == "common rate $R_0$ (bits per pixel)"
    plt.close("all")


def test_common_rate_rejects_an_absent_codec_and_a_bad_theory():
    with pytest.raises(ValueError, match="codec 'proposed' has no runs.*'shared'"):
        plots.common_rate(RUNS, codec="proposed")
    with pytest.raises(ValueError, match="theory must be a pair"):
        plots.common_rate(RUNS, theory=([0.1, 0.2], [1.0]))
    plt.close("all")


def _bench_row(codec, variant, samples_per_s, points=1):
    return {"codec": codec, "variant": variant, "samples_per_s": samples_per_s, "points": points}


def test_throughput_draws_speedups_over_the_authors_per_codec_and_the_goal():
    rows = [
        _bench_row("shared", "authors", 10.0),
        _bench_row("shared", "eager", 35.0),
        {"codec": "shared", "variant": "cudagraphs", "skipped": "needs a CUDA device"},
        _bench_row("shared", "fused", 50.0, points=5),
        _bench_row("joint", "authors", 20.0),
        _bench_row("joint", "eager", 30.0),
        _bench_row("combined", "eager", 99.0),  # no authors row: left out, and said so
    ]
    ax = plots.throughput(rows, title="t")
    heights = sorted(b.get_height() for c in ax.containers for b in c)
    assert heights == pytest.approx([1.0, 1.0, 1.5, 3.5, 5.0])
    assert {c.get_label() for c in ax.containers} == {"shared", "joint"}
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["authors", "eager", "fused\nx5"]  # VARIANTS order, no bar for cudagraphs
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "goal: 3x authors" in legend and "no 'authors' row: combined" in legend
    assert ax.get_title() == "t" and "over 'authors'" in ax.get_ylabel()
    plt.close("all")


def test_throughput_without_an_authors_row_draws_samples_per_second():
    ax = plots.throughput(
        [_bench_row("joint", "eager", 30.0), _bench_row("joint", "fused", 90.0, 5)]
    )
    assert sorted(b.get_height() for c in ax.containers for b in c) == [30.0, 90.0]
    assert ax.get_ylabel() == "training samples/s"
    with pytest.raises(ValueError, match="no measured case"):
        plots.throughput([{"codec": "joint", "variant": "compile", "error": "RuntimeError: x"}])
    plt.close("all")


def test_seed_band_draws_the_mean_curve_a_rate_band_and_quality_bars_per_codec():
    import pandas as pd

    runs = pd.DataFrame(
        {
            "codec": ["shared"] * 4 + ["joint"] * 4,
            "eta": [0.1, 0.1, 1.0, 1.0] * 2,
            "seed": [0, 1] * 4,
            "rate_transmit": [2.0, 3.0, 1.0, 1.2, 1.5, 1.7, 0.8, 0.9],
            "d1": [0.1, 0.2, 0.4, 0.5, 0.1, 0.1, 0.4, 0.4],
            "d2": [0.1, 0.1, 0.4, 0.4, 0.1, 0.2, 0.4, 0.5],
        }
    )
    ax, spread = plots.seed_band(runs)
    assert len(spread) == 4 and set(spread.seeds) == {2}
    means = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    shared = next(v for k, v in means.items() if k.startswith("shared"))
    assert list(shared) == pytest.approx([2.5, 1.1])  # sorted by mean quality: eta 0.1 first
    from matplotlib.collections import PolyCollection

    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    extents = sorted(
        (round(p.vertices[:, 1].min(), 6), round(p.vertices[:, 1].max(), 6))
        for band in bands
        for p in band.get_paths()
    )
    assert extents == [(0.8, 1.7), (1.0, 3.0)]  # each codec's lowest to highest rate
    assert "2 seeds per point" in ax.get_legend().get_texts()[0].get_text()
    plt.close("all")

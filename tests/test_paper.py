"""gwnlib.analysis.paper: the paper's Tables 1-8 as data, checked against themselves and the paper's
text."""

import pytest

from gwnlib.analysis import paper

SCHEMA = ["codec", "beta", "eta", "r0", "r1", "r2", "rate_transmit", "rate_receive"]


@pytest.mark.parametrize(
    ("dataset", "rows_per_table"),
    [
        ("synthetic", {2: 10, 3: 15, 4: 15, 5: 15}),
        ("colored_mnist", {6: 19}),
        ("cityscapes", {7: 16}),
        ("coco", {8: 13}),
    ],
)
def test_every_row_of_every_table_is_there(dataset, rows_per_table):
    table = paper.results(dataset)
    assert table.table.value_counts().to_dict() == rows_per_table
    quality = list(paper.QUALITY_COLUMNS[dataset])
    pmf = ["pmf"] if dataset == "colored_mnist" else []
    assert list(table.columns) == SCHEMA[:1] + pmf + SCHEMA[1:] + quality + ["table"]
    assert set(quality) <= set(paper.QUALITY_UNITS) and dataset in paper.RATE_UNITS


def test_codec_names_and_betas_follow_the_documented_conventions():
    synthetic = paper.results("synthetic")
    per_codec = synthetic.groupby("codec").size().to_dict()
    assert per_codec == {
        "joint": 5,
        "independent": 5,
        "shared": 15,
        "separated": 15,
        "combined": 15,
    }
    baselines = synthetic.codec.isin(["joint", "independent"])
    assert synthetic[baselines].beta.isna().all()
    betas = synthetic[~baselines].groupby("table").beta.unique().map(list).to_dict()
    assert betas == {3: [1.0], 4: [1.5], 5: [2.0]}
    mnist = paper.results("colored_mnist")
    assert mnist.groupby(["codec", "pmf"]).size().to_dict() == {
        ("independent", "mixture"): 5,
        ("shared", "dependent"): 6,
        ("shared", "independent"): 4,
        ("shared", "mixture"): 4,
    }
    assert (mnist[mnist.codec == "independent"].r0 == 0).all()
    assert (mnist[mnist.codec == "shared"].beta == 0.1).all()
    for dataset in ("cityscapes", "coco"):  # Tables 7-8's "Proposed" is Shared, trained at beta 1
        table = paper.results(dataset)
        assert set(table.codec) == {"joint", "independent", "shared"}
        assert (table[table.codec == "shared"].beta == 1.0).all()


def test_spot_values_against_the_paper():
    coco = paper.results("coco").set_index(["codec", "eta"])
    assert coco.loc[("shared", 2.5), ["r0", "r1", "r2"]].tolist() == [0.659, 0.822, 0.845]
    assert coco.loc[("shared", 2.5), ["box_map", "keypoint_map"]].tolist() == [0.449, 0.637]
    city = paper.results("cityscapes").set_index(["codec", "eta"])
    assert city.loc[("independent", 1.0), ["miou", "rmse"]].tolist() == [0.660, 5.513]
    synthetic = paper.results("synthetic").set_index(["codec", "beta", "eta"])
    assert synthetic.loc[("combined", 1.5, 0.01), "rate_receive"] == 10.809


# Rows whose printed rates break R_t = R0 + R1 + R2 or R_r = R_t + R0 beyond the rounding of
# their printed digits, as (table, codec, eta): the paper has none (the worst are 0.001 off).
INCONSISTENT_ROWS = []


@pytest.mark.parametrize("dataset", paper.DATASETS)
def test_every_row_adds_up_within_the_printed_rounding(dataset):
    # Every rate is printed to 3 decimals (trailing zeros dropped), so each is within 0.0005 of the
    # true value: R_t - (R0 + R1 + R2) can be off by 4 * 0.0005 and R_r - (R_t + R0) by 3 * 0.0005.
    table = paper.results(dataset)
    transmit_gap = (table.rate_transmit - table.r0 - table.r1 - table.r2).abs()
    receive_gap = (table.rate_receive - table.rate_transmit - table.r0).abs()
    bad = table[(transmit_gap > 4 * 0.0005 + 1e-9) | (receive_gap > 3 * 0.0005 + 1e-9)]
    flagged = [row for row in INCONSISTENT_ROWS if row[0] in set(table.table)]
    assert list(zip(bad.table, bad.codec, bad.eta, strict=True)) == flagged
    assert transmit_gap.max() <= 0.001 + 1e-9 and receive_gap.max() <= 0.001 + 1e-9


def test_the_dependent_pmfs_private_share_matches_the_text_to_a_few_hundredths():
    # Appendix D.4: the private channels carry "on average 29.22% of the transmit rate". Table 6's
    # Dependent rows give a mean (R1 + R2) / R_t of 29.26% (70.74% on Y0): every value moved within
    # its rounding keeps the mean in [29.25, 29.27], so the text is 0.04 points below its table.
    mnist = paper.results("colored_mnist")
    dependent = mnist[mnist.pmf == "dependent"]
    share = ((dependent.r1 + dependent.r2) / dependent.rate_transmit).mean() * 100
    low = ((dependent.r1 + dependent.r2 - 0.001) / (dependent.rate_transmit + 0.0005)).mean() * 100
    high = ((dependent.r1 + dependent.r2 + 0.001) / (dependent.rate_transmit - 0.0005)).mean() * 100
    assert share == pytest.approx(29.26, abs=0.005)
    assert 100 - share == pytest.approx(70.74, abs=0.005)
    assert not low <= paper.DEPENDENT_PRIVATE_SHARE <= high
    assert share == pytest.approx(paper.DEPENDENT_PRIVATE_SHARE, abs=0.05)


def test_reported_bd_rates_and_settings():
    bd = paper.bd_rates().set_index(["dataset", "rate", "codec"]).bd_rate
    assert bd[("synthetic", "rate_transmit", "shared")] == 10.42
    assert bd[("cityscapes", "rate_transmit", "independent")] == 143.69
    assert bd[("coco", "rate_receive", "shared")] == 42.70
    assert len(bd) == 9 and paper.VISION_AVERAGE_BD_RATE == -81.58
    assert set(paper.SETTINGS) == set(paper.DATASETS)
    assert paper.SETTINGS["coco"]["E_shared"] == 288 and paper.SETTINGS["coco"]["E"] == 192
    assert [paper.SETTINGS[d]["patience"] for d in paper.DATASETS] == [10, 25, 50, 5]
    assert [paper.SETTINGS[d]["max_epochs"] for d in paper.DATASETS] == [100, 200, 1000, 100]
    assert paper.SETTINGS["cityscapes"]["accumulated_batches"] == 3


def test_an_unknown_dataset_names_the_accepted_ones():
    with pytest.raises(ValueError, match="dataset must be one of .*'synthetic'.*'coco'.*'mnist'"):
        paper.results("mnist")

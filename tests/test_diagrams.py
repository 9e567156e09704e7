"""Block diagrams (gwnlib.analysis.diagrams): the Gray-Wyner network and each codec's wiring, read
back
from the drawn labels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gwnlib.analysis import diagrams  # noqa: E402


def test_the_network_has_its_encoder_streams_receivers_and_rates():
    fig = diagrams.gray_wyner_network()
    text = " ".join(diagrams.labels(fig))
    for part in ("Encoder", "Decoder 1", "Decoder 2", "$Y_0$", "$Y_1$", "$Y_2$", "common"):
        assert part in text
    assert "R_t = R_0 + R_1 + R_2" in text and "R_r = 2R_0 + R_1 + R_2" in text
    plt.close(fig)


@pytest.mark.parametrize(
    "codec, reads, merge",
    [
        ("shared", ("$Y_0$, $Y_1$", "$Y_0$, $Y_2$"), True),
        ("separated", ("$Y_0$, $Y_1$", "$Y_0$, $Y_2$"), False),
        ("combined", ("$Y_0$, $Y_1$", "$Y_0$, $Y_2$"), False),
        ("joint", ("$Y_0$", "$Y_0$"), False),
        ("independent", ("$Y_1$", "$Y_2$"), False),
    ],
)
def test_each_codec_is_wired_as_its_decoders_read(codec, reads, merge):
    fig = diagrams.codec_wiring(codec)
    labels = diagrams.labels(fig)
    assert [label for label in labels if label.startswith("decoder")] == [
        f"decoder {i}\nreads {r}" for i, r in ((1, reads[0]), (2, reads[1]))
    ]
    assert any("merge (Eq. 14)" in label for label in labels) is merge
    conditional = [label for label in labels if "given $Y_0$" in label]
    assert len(conditional) == (2 if codec in ("shared", "separated", "combined") else 0)
    plt.close(fig)


def test_an_unknown_codec_is_refused():
    with pytest.raises(ValueError, match="codec must be one of shared, separated"):
        diagrams.codec_wiring("shard")

"""Channel decoders (paper Fig. 10): one per latent, trained on a frozen codec."""

import itertools

import pytest
import torch

from gwnlib.analysis.probes import channel_widths, reconstruct, train_channel_decoders
from gwnlib.model.codecs import build
from gwnlib.model.heads import classifier_head


def make(name="shared"):
    torch.manual_seed(0)
    heads = (classifier_head(), classifier_head())
    return build(name, in_channels=3, latent_channels=6, transform="conv", features=3,
                 heads=heads)  # fmt: skip


def test_widths_follow_the_codec():
    assert channel_widths(make("shared")) == {"y0": 3, "y1": 3, "y2": 3}
    assert channel_widths(make("joint")) == {"y0": 6}
    assert channel_widths(make("independent")) == {"y1": 6, "y2": 6}


def test_decoders_learn_to_rebuild_the_input_and_leave_the_codec_alone():
    codec = make()
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    x = torch.rand(8, 3, 32, 32)
    decoders, history = train_channel_decoders(
        codec, itertools.repeat((x,)), steps=60, lr=3e-3, progress=False
    )
    assert set(decoders) == {"y0", "y1", "y2"} and len(history) == 60
    for channel in decoders:
        assert history[-1][channel] < 0.8 * history[0][channel], channel
    images = reconstruct(codec, decoders, x)
    assert all(
        img.shape == x.shape and 0 <= img.min() and img.max() <= 1 for img in images.values()
    )
    assert all(torch.equal(before[k], v) for k, v in codec.state_dict().items())  # frozen


def test_bad_channels_and_steps_are_refused():
    batches = itertools.repeat((torch.rand(2, 3, 32, 32),))
    with pytest.raises(ValueError, match="channels must be among y1, y2 for a independent codec"):
        train_channel_decoders(make("independent"), batches, steps=1, channels=("y0",))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        train_channel_decoders(make(), batches, steps=0)


def test_fig_10_of_a_finished_run_round_trips_through_its_file(tmp_path, monkeypatch):
    import numpy as np

    from gwnlib.analysis.probes import (
        channel_reconstructions,
        load_reconstructions,
        save_reconstructions,
    )
    from gwnlib.experiments import resolve
    from gwnlib.training import train

    monkeypatch.setenv("GWN_RUNS_DIR", str(tmp_path / "runs"))
    config = resolve("colored_mnist", "smoke", codec="shared", eta=10.0)
    train.fit(config, device="cpu", progress=False)
    images, history = channel_reconstructions(config, steps=2, device="cpu", count=8)
    assert list(images) == ["input", "y0", "y1", "y2"] and len(history) == 2
    for array in images.values():
        assert array.shape == (8, 3, 32, 32) and 0 <= array.min() and array.max() <= 1
    about = {"preset": "smoke", "eta": {"dependent": 10.0}, "decoder_steps": 2}
    path = save_reconstructions(tmp_path / "fig10.npz", {"dependent": images}, about)
    figure, loaded = load_reconstructions(path)
    assert loaded == about and list(figure) == ["dependent"]
    assert list(figure["dependent"]) == list(images)
    for name, array in images.items():
        np.testing.assert_allclose(figure["dependent"][name], array, rtol=0, atol=0.5 / 255)

"""The vision experiments (gwnlib.experiments.images, gwnlib.vision.codec): codecs feeding frozen
task models, masked rates,
splits, and smoke runs of both task pairs (Cityscapes on a synthetic stand-in tree, COCO on the
offline subset)."""

import pytest
import torch

from gwnlib.experiments import Experiment, resolve
from gwnlib.experiments.images import VisionExperiment, _resize_coco, _unscale, split_items
from gwnlib.model.entropy import bits
from gwnlib.runtime import data_dir
from gwnlib.training import train
from gwnlib.vision.codec import VisionCodec, valid_sizes


@pytest.fixture
def vision_env(tmp_path, monkeypatch):
    """The offline COCO subset (the conftest's data root) and a fresh cache, where the smoke
    preset writes its synthetic Cityscapes tree."""
    if not (data_dir() / "coco_small").is_dir():
        pytest.skip(f"the offline COCO subset is not in {data_dir()} (set GWN_DATA_DIR)")
    monkeypatch.setenv("GWN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_vision_configs_and_their_errors():
    config = resolve("coco", "paper", codec="shared", latent_channels=288)
    assert (config.reconstruction, config.task_weights, config.batch_size) == (1.0, "default", 4)
    assert isinstance(Experiment(config), VisionExperiment)
    assert resolve("cityscapes", "paper").accumulate == 3  # Table 1
    with pytest.raises(ValueError, match="task_weights must be one of default, none"):
        resolve("coco", "smoke", task_weights="imagenet")
    with pytest.raises(ValueError, match="reconstruction must be a finite number >= 0"):
        resolve("coco", "smoke", reconstruction=-1)
    with pytest.raises(ValueError, match="only apply to the vision datasets"):
        resolve("synthetic", "smoke", image_size=64)


def test_rates_count_valid_pixels_only():
    torch.manual_seed(0)
    codec = VisionCodec("shared", in_channels=3, latent_channels=8, features=3).eval()
    image = torch.rand(1, 3, 64, 64)
    padded = torch.zeros(1, 3, 128, 192)
    padded[..., :64, :64] = image
    mask = torch.zeros(1, 1, 128, 192, dtype=torch.bool)
    mask[..., :64, :64] = True
    with torch.no_grad():
        output = codec(padded, mask)
        unmasked = codec(padded)
    for key, likelihoods in output["likelihoods"].items():
        total = bits(likelihoods).sum()
        assert output["rates"][f"r{key[1]}"] == pytest.approx(float(total / (64 * 64)))
        assert unmasked["rates"][f"r{key[1]}"] == pytest.approx(float(total / (128 * 192)))
    assert valid_sizes(mask, padded) == [(64, 64)]
    assert output["x1_hat"].shape == padded.shape and output["reconstruction"] > 0
    with pytest.raises(ValueError, match="mask must be"):
        codec(padded, mask[..., :64])


def test_resizing_scales_targets_and_predictions_back():
    image = torch.rand(3, 100, 200)
    target = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 80.0]]), "area": torch.tensor([2400.0]),
              "keypoints": torch.tensor([[[30.0, 40.0, 2.0]] * 17])}  # fmt: skip
    resized, (scaled,), scale = _resize_coco(image, [target], 50)
    assert resized.shape == (3, 50, 100) and scale == 0.5
    assert scaled["boxes"].tolist() == [[5.0, 10.0, 25.0, 40.0]]
    assert scaled["area"].item() == 600.0 and scaled["keypoints"][0, 0].tolist() == [15, 20, 2]
    back = _unscale({"boxes": scaled["boxes"], "keypoints": scaled["keypoints"]}, scale)
    assert torch.equal(back["boxes"], target["boxes"])
    assert torch.equal(back["keypoints"], target["keypoints"])


def test_splits_are_disjoint_and_test_is_the_official_validation_split(vision_env):
    config = resolve("coco", "smoke")
    train_data, train_items = split_items(config, "train")
    _, val_items = split_items(config, "val")
    test_data, test_items = split_items(config, "test")
    assert train_data.split == "train2017" and test_data.split == "val2017"
    assert not set(train_items) & set(val_items)
    assert len(train_items) == config.train_size and len(test_items) == config.test_size
    assert split_items(config, "train", epoch=1)[1] != train_items  # reshuffled per epoch
    with pytest.raises(ValueError, match="needs 1000 images"):
        split_items(resolve("coco", "smoke", test_size=1000), "test")


def test_a_changed_cache_folder_is_never_answered_from_the_old_one(vision_env, monkeypatch):
    """The smoke Cityscapes tree lives in the cache; a dataset built under one cache folder must
    not be reused once GWN_CACHE_DIR points elsewhere (the old folder may be gone)."""
    import shutil

    config = resolve("cityscapes", "smoke")
    first, _ = split_items(config, "train")
    assert first.root.is_relative_to(vision_env / "cache")
    shutil.rmtree(vision_env / "cache")
    monkeypatch.setenv("GWN_CACHE_DIR", str(vision_env / "other-cache"))
    second, items = split_items(config, "train")
    assert second.root.is_relative_to(vision_env / "other-cache")
    assert second[items[0]] is not None  # readable: its files exist


@pytest.mark.parametrize("dataset", ["cityscapes", "coco"])
def test_a_shared_codec_trains_through_both_frozen_task_models(vision_env, dataset):
    experiment = Experiment(resolve(dataset, "smoke", codec="shared"))
    codec, loss_fn = experiment.codec(), experiment.loss()
    x, t1, t2 = next(experiment.batches("train"))
    output = train._forward(codec, x)
    terms = loss_fn(output, t1, t2)
    assert torch.isfinite(terms["loss"]) and terms["d1"] > 0 and terms["d2"] > 0
    terms["loss"].backward()
    encoder = next(codec.encoders[0].parameters())
    assert encoder.grad is not None and encoder.grad.abs().sum() > 0
    for model in loss_fn.distortions:  # the frozen task models never get gradients
        assert all(p.grad is None and not p.requires_grad for p in model.model.parameters())
    if dataset == "cityscapes":  # the learned 2x samplers train with the codec
        sampler = codec.heads[0].down.conv.weight
        assert sampler.requires_grad and sampler.grad is not None


@pytest.mark.parametrize(
    ("dataset", "quality"),
    [("cityscapes", ("miou", "rmse")), ("coco", ("box_map", "keypoint_map"))],
)
def test_a_smoke_run_reports_the_papers_task_metrics(vision_env, dataset, quality):
    metrics = train.fit(dataset=dataset, preset="smoke", codec="joint", eta=0.1,
                        root=vision_env / "runs", device="cpu", progress=False)  # fmt: skip
    for key in quality + ("rate_transmit", "real_rate_transmit", "d1", "d2"):
        assert key in metrics and metrics[key] == metrics[key]  # present and not NaN
    assert metrics["r1"] == 0 and metrics["r0"] > 0

"""Tests of the frozen task models of the vision experiments (paper Sec. 4.3, D.5): their registry
(gwnlib.vision.tasks), classes (task_model, dense, detection), network (deeplab), weight files
(weights), samplers and pretraining.

Every model is built with ``weights=None`` (no download); the one test that fetches the real
weights runs only with ``GWN_NETWORK=1``.
"""

import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gwnlib.data.cityscapes import DISPARITY_SCALE, IGNORE_INDEX, NUM_CLASSES
from gwnlib.vision import detection, tasks, weights
from gwnlib.vision.deeplab import DeepLabV3PlusMobileNetV2
from gwnlib.vision.dense import SegmentationModel, load_deeplab_weights
from gwnlib.vision.pretrain import PRETRAIN_PRESETS, pretrain
from gwnlib.vision.samplers import ResampledTask, Resampler
from gwnlib.vision.task_model import TaskModel
from gwnlib.vision.tasks import build_task_model

# Small R-CNN settings so that a CPU forward/backward takes about a second.
SMALL_RCNN = {
    "min_size": 128,
    "max_size": 128,
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 100,
    "rpn_pre_nms_top_n_test": 200,
    "rpn_post_nms_top_n_test": 100,
    "box_batch_size_per_image": 64,
}

# Keys and shapes of VainF/DeepLabV3Plus-Pytorch's deeplabv3plus_mobilenet(num_classes=19,
# output_stride=16), read from its network/modeling.py (features[0:4] / features[4:-1], slices
# that keep the original indices), network/backbone/mobilenetv2.py (ConvBNReLU = conv, bn, relu6;
# InvertedResidual.conv) and network/_deeplab.py (DeepLabHeadV3Plus, ASPP).
VAINF_KEYS = {
    "backbone.low_level_features.0.0.weight": (32, 3, 3, 3),
    "backbone.low_level_features.0.1.running_var": (32,),
    "backbone.low_level_features.1.conv.0.0.weight": (32, 1, 3, 3),
    "backbone.low_level_features.1.conv.1.weight": (16, 32, 1, 1),
    "backbone.low_level_features.2.conv.0.0.weight": (96, 16, 1, 1),
    "backbone.low_level_features.3.conv.3.weight": (24,),
    "backbone.high_level_features.4.conv.0.0.weight": (144, 24, 1, 1),
    "backbone.high_level_features.14.conv.1.0.weight": (576, 1, 3, 3),
    "backbone.high_level_features.17.conv.2.weight": (320, 960, 1, 1),
    "backbone.high_level_features.17.conv.3.num_batches_tracked": (),
    "classifier.project.0.weight": (48, 24, 1, 1),
    "classifier.project.1.running_mean": (48,),
    "classifier.aspp.convs.0.0.weight": (256, 320, 1, 1),
    "classifier.aspp.convs.1.0.weight": (256, 320, 3, 3),
    "classifier.aspp.convs.3.1.bias": (256,),
    "classifier.aspp.convs.4.1.weight": (256, 320, 1, 1),
    "classifier.aspp.convs.4.2.running_var": (256,),
    "classifier.aspp.project.0.weight": (256, 1280, 1, 1),
    "classifier.classifier.0.weight": (256, 304, 3, 3),
    "classifier.classifier.1.weight": (256,),
    "classifier.classifier.3.weight": (19, 256, 1, 1),
    "classifier.classifier.3.bias": (19,),
}
VAINF_KEY_COUNT = 356  # counted on a replica of VainF's code: 59 BatchNorms x 5, 60 convs + 1 bias
VAINF_PREFIXES = (
    "backbone.low_level_features.",
    "backbone.high_level_features.",
    "classifier.project.",
    "classifier.aspp.",
    "classifier.classifier.",
)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {
        name: build_task_model(
            name, weights=None, **(SMALL_RCNN if name in tasks.PAIRS["coco"] else {})
        )
        for name in tasks.TASKS
    }


def cityscapes_batch(batch=2, height=64, width=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    segmentation = torch.randint(0, NUM_CLASSES, (batch, height, width), generator=g)
    segmentation[:, :8] = IGNORE_INDEX
    return {
        "image": torch.rand(batch, 3, height, width, generator=g),
        "segmentation": segmentation,
        "disparity": torch.rand(batch, height, width, generator=g) * 80,
        "valid": torch.rand(batch, height, width, generator=g) > 0.3,
    }


def coco_targets():
    keypoints = torch.cat([torch.rand(2, 17, 2) * 60 + 20, torch.full((2, 17, 1), 2.0)], dim=-1)
    return [
        {
            "boxes": torch.tensor([[10.0, 20.0, 70.0, 110.0], [50.0, 5.0, 120.0, 60.0]]),
            "labels": torch.tensor([1, 1]),
            "keypoints": keypoints,
        },
        {  # an image without annotations
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.int64),
            "keypoints": torch.zeros(0, 17, 3),
        },
    ]


def inputs_for(name):
    if name in tasks.PAIRS["coco"]:
        return torch.rand(
            2, 3, 128, 128, generator=torch.Generator().manual_seed(1)
        ), coco_targets()
    batch = cityscapes_batch()
    return batch["image"], batch


def frozen_layers_in_train_mode(model):
    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, detection._FROZEN_LAYERS) and m.training
    ]


# --------------------------------------------------------------------------------------------
# Registry and arguments
# --------------------------------------------------------------------------------------------


def test_registry():
    assert tasks.TASKS == ("segmentation", "depth", "detection", "keypoints")
    assert tasks.PAIRS == {
        "cityscapes": ("segmentation", "depth"),
        "coco": ("detection", "keypoints"),
    }
    assert DISPARITY_SCALE == 128.0 and IGNORE_INDEX == 255
    assert weights.SEGMENTATION_WEIGHTS_URL.endswith(
        "best_deeplabv3plus_mobilenet_cityscapes_os16.pth?dl=1"
    )
    assert weights.SEGMENTATION_WEIGHTS_SHA256 is None
    assert set(PRETRAIN_PRESETS) == {"smoke", "short", "paper"}
    # One class per kind, registered once; the names, the dense ones and the loss factors follow.
    assert {name: cls.__name__ for name, cls in tasks.TASK_MODELS.items()} == {
        "segmentation": "SegmentationModel",
        "depth": "DepthModel",
        "detection": "DetectionModel",
        "keypoints": "KeypointModel",
    }
    assert all(issubclass(cls, TaskModel) for cls in tasks.TASK_MODELS.values())
    assert tasks.DENSE == weights.PRETRAINED_TASKS == ("segmentation", "depth")
    assert tasks.LOSS_SCALES == {
        "segmentation": 19.0,
        "depth": 1.0,
        "detection": 1.0,
        "keypoints": 1.0,
    }


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: build_task_model("optical_flow", weights=None), "name must be one of"),
        (lambda: build_task_model("depth", weights="/no/such/file.pt"), "weights must be"),
        (lambda: build_task_model("depth", weights=3), "weights must be"),
        (lambda: build_task_model("depth", weights=None, min_size=64), "unknown option"),
        (lambda: build_task_model("detection", weights=None, colour=1), "accepted: loss_scale"),
        (lambda: build_task_model("detection", weights=None, min_size=0), "min_size"),
        (lambda: build_task_model("detection", weights=None, box_nms_thresh=2), "box_nms"),
        (lambda: build_task_model("segmentation", weights=None, loss_scale=-1), "loss_scale"),
        (lambda: DeepLabV3PlusMobileNetV2(output_stride=32), "output_stride must be one of"),
        (lambda: DeepLabV3PlusMobileNetV2(num_classes=0), "num_classes"),
        (lambda: Resampler(3, direction="sideways"), "direction must be one of down, up"),
        (lambda: Resampler(3, factor=0), "factor"),
        (lambda: pretrain("detection", []), "task must be one of segmentation, depth"),
        (lambda: pretrain("depth", [], preset="huge"), "preset must be one of"),
        (lambda: weights.pretrained_path("keypoints"), "task must be one of"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_inputs_raise_value_error(models):
    with pytest.raises(ValueError, match="images must be"):
        models["depth"].loss(torch.rand(3, 64, 64), cityscapes_batch())
    with pytest.raises(ValueError, match="targets must be"):
        models["depth"].loss(torch.rand(2, 3, 64, 128), torch.zeros(2, 64, 128))
    with pytest.raises(ValueError, match="sizes is for detection"):
        models["segmentation"].loss(*inputs_for("segmentation"), sizes=[(64, 64)] * 2)
    with pytest.raises(ValueError, match="list of 2 dicts"):
        models["detection"].loss(torch.rand(2, 3, 128, 128), coco_targets()[:1])
    with pytest.raises(ValueError, match="missing"):
        targets = [{k: v for k, v in t.items() if k != "keypoints"} for t in coco_targets()]
        models["keypoints"].loss(torch.rand(2, 3, 128, 128), targets)
    with pytest.raises(ValueError, match="dense task"):
        ResampledTask(models["detection"])


# --------------------------------------------------------------------------------------------
# Frozen models, losses and predictions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", tasks.TASKS)
def test_task_models_are_frozen(models, name):
    model = models[name]
    assert isinstance(model, TaskModel) and model.name == name
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert model.training and not model.model.training
    assert frozen_layers_in_train_mode(model) == []
    assert any(isinstance(m, detection._FROZEN_LAYERS) for m in model.modules())
    model.eval()


@pytest.mark.parametrize("name", tasks.TASKS)
def test_loss_is_a_differentiable_scalar(models, name):
    model = models[name].train()
    images, targets = inputs_for(name)
    images = images.clone().requires_grad_(True)
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    loss = model.loss(images, targets)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert images.grad[0].abs().sum() > 0 and images.grad[1].abs().sum() > 0
    # The loss left the model as it found it: norms in eval mode, statistics unchanged.
    assert not model.model.training and frozen_layers_in_train_mode(model) == []
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    assert all(p.grad is None for p in model.parameters())


def test_detection_loss_with_sizes_and_only_empty_images(models):
    images = torch.rand(2, 3, 128, 128, requires_grad=True)
    empty = [coco_targets()[1]] * 2
    for name in ("detection", "keypoints"):
        loss = models[name].loss(images, empty, sizes=[(128, 128), (96, 112)])
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, images)
        assert grad[1, :, 96:].abs().sum() == 0 and grad[1, :, :, 112:].abs().sum() == 0


def test_predictions(models):
    batch = cityscapes_batch()
    with torch.no_grad():
        labels = models["segmentation"].predict(batch["image"])
        logits = models["segmentation"](batch["image"])
        disparity = models["depth"].predict(batch["image"])
        raw = models["depth"](batch["image"])
    assert logits.shape == (2, 19, 64, 128) and labels.shape == (2, 64, 128)
    assert labels.dtype == torch.int64 and torch.equal(labels, logits.argmax(1))
    assert raw.shape == (2, 1, 64, 128)
    assert torch.equal(disparity, raw[:, 0] * 128)  # raw x 128, not clamped
    with torch.no_grad():
        detections = models["detection"].predict(torch.rand(1, 3, 128, 128))
        people = models["keypoints"].predict(torch.rand(1, 3, 128, 128))
    assert isinstance(detections, list) and set(detections[0]) == {"boxes", "labels", "scores"}
    assert people[0]["keypoints"].shape[1:] == (17, 3)


def test_segmentation_loss_is_19_times_cross_entropy(models):
    model = models["segmentation"]
    batch = cityscapes_batch()
    with torch.no_grad():
        logits = model(batch["image"])
        expected = F.cross_entropy(logits, batch["segmentation"], ignore_index=255) * 19
        assert torch.allclose(model.loss(batch["image"], batch), expected)
        # Targets at another resolution: logits are resized to them.
        small = batch["segmentation"][:, ::2, ::2]
        assert torch.isfinite(model.loss_from_outputs(logits, small))
    ignored = torch.full((2, 64, 128), 255)
    image = batch["image"].clone().requires_grad_(True)
    assert model.loss(image, ignored).item() == 0.0
    rescaled = SegmentationModel(model.model, loss_scale=1.0)
    assert torch.allclose(rescaled.loss(batch["image"], batch) * 19, expected)


def test_depth_loss_is_masked_rmse_in_pixels(models):
    model = models["depth"]
    outputs = torch.zeros(2, 1, 4, 4)
    disparity = torch.full((2, 4, 4), 3.0)
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    disparity[1] = 5.0
    disparity[1, 0, 0], valid[1, 0, 0] = 1000.0, False  # invalid pixels do not count
    # sqrt(mean over images of each image's MSE) in pixels: sqrt((9 + 25) / 2).
    loss = model.loss_from_outputs(outputs, (disparity, valid))
    assert math.isclose(loss.item(), math.sqrt(17.0), rel_tol=1e-6)
    valid[1] = False  # an image with no valid pixel is left out
    assert math.isclose(model.loss_from_outputs(outputs, (disparity, valid)).item(), 3.0)


# --------------------------------------------------------------------------------------------
# DeepLabV3+ and VainF's checkpoints
# --------------------------------------------------------------------------------------------


def test_deeplab_state_dict_matches_vainf():
    model = DeepLabV3PlusMobileNetV2(num_classes=19, output_stride=16)
    state = model.state_dict()
    assert len(state) == VAINF_KEY_COUNT
    assert {key: tuple(state[key].shape) for key in VAINF_KEYS} == VAINF_KEYS
    assert all(key.startswith(VAINF_PREFIXES) for key in state)
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 128)).shape == (2, 19, 64, 128)
        assert model(torch.rand(1, 3, 50, 70)).shape == (1, 19, 50, 70)


def test_vainf_checkpoint_needs_and_gets_numpy_safe_globals(tmp_path):
    torch.manual_seed(3)
    source = DeepLabV3PlusMobileNetV2().eval()
    path = tmp_path / "best_deeplabv3plus_mobilenet_cityscapes_os16.pth"
    torch.save(
        {"model_state": source.state_dict(), "best_score": np.float64(0.72), "cur_itrs": 1}, path
    )
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        torch.load(path, weights_only=True)  # why load_deeplab_weights allows NumPy's scalars
    torch.manual_seed(4)
    target = DeepLabV3PlusMobileNetV2()
    assert load_deeplab_weights(target, path) is target
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items())
    model = build_task_model("segmentation", weights=path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        normalised = (x - model.mean) / model.std
        assert torch.equal(model(x), source(normalised))
    with pytest.raises(ValueError, match="source must be"):
        load_deeplab_weights(target, tmp_path / "missing.pth")


# --------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------


def test_resampler_starts_as_a_plain_resize():
    x = torch.rand(2, 19, 16, 32)
    up = Resampler(19, 2, "up")
    assert torch.allclose(up(x), F.interpolate(x, scale_factor=2, mode="nearest"), atol=1e-6)
    assert up(x, size=(33, 65)).shape == (2, 19, 33, 65)
    image = torch.rand(2, 3, 64, 128)
    down = Resampler(3, 2, "down")
    expected = F.interpolate(image, scale_factor=0.5, mode="bilinear", align_corners=False)
    assert torch.allclose(down(image), expected, atol=1e-6)
    assert down.conv.kernel_size == (5, 5) and up.conv.in_channels == up.conv.out_channels == 19


@pytest.mark.parametrize("name", ["segmentation", "depth"])
def test_resampled_task(models, name):
    resampled = ResampledTask(models[name], factor=2).train()
    batch = cityscapes_batch(height=64, width=96)
    outputs = resampled(batch["image"])
    assert outputs.shape == (2, models[name].channels, 64, 96)  # full resolution
    assert resampled.predict(batch["image"]).shape == (2, 64, 96)
    loss = resampled.loss(batch["image"], batch)  # against the full-resolution targets
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = {n for n, p in resampled.named_parameters() if p.requires_grad}
    assert trainable == {"down.conv.weight", "down.conv.bias", "up.conv.weight", "up.conv.bias"}
    assert all(resampled.get_parameter(n).grad.abs().sum() > 0 for n in trainable)
    assert frozen_layers_in_train_mode(resampled) == []
    odd = resampled(torch.rand(1, 3, 65, 97))
    assert odd.shape[-2:] == (65, 97)


# --------------------------------------------------------------------------------------------
# Pretraining without rate
# --------------------------------------------------------------------------------------------


class TinyCityscapes(torch.utils.data.Dataset):
    """Four random items in the format of gwnlib.data.cityscapes.CityscapesTasks."""

    def __init__(self, count=4, height=64, width=128):
        self.batch = cityscapes_batch(count, height, width, seed=7)

    def __len__(self):
        return len(self.batch["image"])

    def __getitem__(self, index):
        return {key: value[index] for key, value in self.batch.items()}


def test_pretrain_smoke_writes_skips_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("GWN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="pretrain"):
        build_task_model("depth", weights="default")  # no checkpoint yet: say how to make one
    data = TinyCityscapes()
    path = pretrain(
        "depth", data, preset="smoke", device="cpu", seed=0, root=tmp_path, progress=False
    )
    assert path == tmp_path / "depth-smoke-seed0.pt" and path.is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind
    metrics = json.loads(path.with_suffix(".json").read_text())
    assert (
        metrics["task"] == "depth" and metrics["steps"] == 2 and metrics["final_split"] == "train"
    )
    assert math.isfinite(metrics["final"]["loss"]) and math.isfinite(metrics["final"]["rmse_px"])

    stamp = path.stat().st_mtime_ns
    assert pretrain("depth", data, preset="smoke", device="cpu", root=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # the second call skipped training

    checkpoint = weights.load_checkpoint(path)
    first = build_task_model("depth", weights=path)
    second = build_task_model("depth", weights=str(path))
    assert all(torch.equal(v, first.model.state_dict()[k]) for k, v in checkpoint["model"].items())
    images = data.batch["image"]
    with torch.no_grad():
        assert torch.equal(first(images), second(images))
        torch.manual_seed(0)  # the same seed builds the same initial network: training moved it
        untrained = build_task_model("depth", weights=None)
        assert not torch.equal(first(images), untrained(images))
        resampled = ResampledTask(first, weights=path).eval()
        loss = resampled.loss(images, data.batch).item()  # one batch of 4 = the final evaluation
    assert math.isclose(loss, metrics["final"]["loss"], rel_tol=1e-5)
    with pytest.raises(ValueError, match="not a 'segmentation' model"):
        build_task_model("segmentation", weights=path)

    monkeypatch.setenv("GWN_CACHE_DIR", str(tmp_path / "other"))
    (tmp_path / "other" / "weights").mkdir(parents=True)
    (tmp_path / "other" / "weights" / "depth-short-seed0.pt").write_bytes(path.read_bytes())
    assert (
        weights.pretrained_path("depth") == tmp_path / "other" / "weights" / "depth-short-seed0.pt"
    )
    with torch.no_grad():
        assert torch.equal(build_task_model("depth")(images), first(images))


def test_pretrain_segmentation_fallback_runs(tmp_path):
    validation = TinyCityscapes(count=2)
    path = pretrain(
        "segmentation", TinyCityscapes(), validation=validation, device="cpu", root=tmp_path
    )
    metrics = json.loads(path.with_suffix(".json").read_text())
    assert metrics["monitored"] == "val_loss" and 0 <= metrics["final"]["miou"] <= 1
    assert "val_miou" in metrics["history"][0]
    assert build_task_model("segmentation", weights=path).name == "segmentation"


# --------------------------------------------------------------------------------------------
# Real weights (downloads; GWN_NETWORK=1 only)
# --------------------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.skipif(
    os.environ.get("GWN_NETWORK") != "1", reason="needs internet to download weights"
)
@pytest.mark.parametrize("name", ["segmentation", "detection", "keypoints"])
def test_real_weights_load(name):
    model = build_task_model(name, **(SMALL_RCNN if name in tasks.PAIRS["coco"] else {}))
    images, targets = inputs_for(name)
    assert torch.isfinite(model.loss(images, targets))

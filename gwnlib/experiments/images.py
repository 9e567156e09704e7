"""Vision tasks: a Gray-Wyner codec feeding two frozen task models (paper Sec. 4.3, appendix D.5).

The decoders g1, g2 of a codec no longer end in a small learned head: each synthesises an RGB
image of the input's size, and a pretrained task model, frozen, turns it into its prediction
(:mod:`gwnlib.vision.tasks`). Only the transforms, entropy models and (Cityscapes) the learned 2x
samplers train. The distortion of task i is its task model's own training loss:

- Cityscapes: semantic segmentation (cross-entropy over 19 classes) and disparity
  (:class:`gwnlib.vision.dense.DepthModel`'s loss on disparity / 128). The task models run at half
  resolution between a learned down-sampler and up-sampler (D.5); their losses are computed against
  the full-resolution targets. Because the maps are differentiable functions of the decoded image,
  the sampler-wrapped task models are the codec's heads, and ``z1_hat`` / ``z2_hat`` are the
  segmentation logits and the disparity / 128.
- COCO 2017: Faster R-CNN (boxes) and Keypoint R-CNN (people's keypoints). Their losses need
  the targets, so the heads are identities (``z1_hat`` / ``z2_hat`` are the decoded images) and
  :class:`VisionLoss` runs the frozen models. Images of a batch are padded to a multiple of 64
  with a mask (:func:`gwnlib.data.coco.pad_to_multiple`); rates count the real pixels only.

Every run adds the input-reconstruction loss of Table 1 (weight 1, RMSE in 8-bit units between
the input and each synthesis output, before the task models): with frozen task models it
improves rate-distortion performance (D.5). Set ``reconstruction=0`` to see what it does.

Splits. Cityscapes' and COCO's test labels are not public; the paper reports validation sets.
We early-stop on a held-out part of the *training* split (the first ``val_size`` images) and
report the official validation split as "test", so that no number is selected on the images it
is reported on.

Data roots: ``<data root>/cityscapes`` and ``<data root>/coco`` (:func:`gwnlib.data_dir`). The
``smoke`` preset runs on stand-ins that need no download: a tiny synthetic Cityscapes tree
written to the cache (:func:`gwnlib.data.synthetic_cityscapes.write_synthetic_cityscapes`) and the
small real COCO subset ``<data root>/coco_small``. Smoke uses random task weights
(``task_weights="none"``) and is never a reproduction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gwnlib.experiments.base import Experiment
from gwnlib.experiments.config import RunConfig, check_split, derive_seed
from gwnlib.runtime import cache_dir, data_dir
from gwnlib.vision.codec import (
    DenseDistortion,
    DetectionDistortion,
    VisionCodec,
    VisionLoss,
    valid_sizes,
)

#: The padding multiple of COCO batches (the paper's; the codec itself downsamples by 16).
PAD_MULTIPLE = 64


def _weights(config: RunConfig):
    return "default" if config.task_weights == "default" else None


#: The smoke preset's random-weight detectors on a CPU: fewer region proposals and at most 8
#: detections an image (the keypoint head runs on every detection: 100 random boxes cost it
#: 30x more than 8).
_SMOKE_PROPOSALS = {"rpn_pre_nms_top_n_train": 64, "rpn_post_nms_top_n_train": 16,
                    "rpn_pre_nms_top_n_test": 64, "rpn_post_nms_top_n_test": 16,
                    "box_batch_size_per_image": 16, "box_detections_per_img": 8}  # fmt: skip


def _detector_options(config: RunConfig) -> dict:
    """Resized inputs stay at their size (torchvision's detectors otherwise resize to 800 px);
    the smoke preset also uses fewer proposals. Elsewhere the published models' settings."""
    options = {}
    if config.image_size is not None:
        options.update(min_size=config.image_size, max_size=4 * config.image_size)
    if config.preset == "smoke":
        options.update(_SMOKE_PROPOSALS)
    return options


@functools.lru_cache(maxsize=4)
def task_model(name: str, weights: str | None, device: str, options: tuple = ()):
    """The frozen task model ``name`` (:func:`gwnlib.vision.tasks.build_task_model`) on
    ``device``."""
    from gwnlib.vision import tasks

    return tasks.build_task_model(name, weights=weights, **dict(options)).to(device)


def _task_models(config: RunConfig, device: torch.device) -> tuple:
    from gwnlib.vision.tasks import PAIRS

    names = PAIRS[config.dataset]
    options = tuple(sorted(_detector_options(config).items())) if config.dataset == "coco" else ()
    return tuple(task_model(n, _weights(config), str(device), options) for n in names)


def cityscapes_root(preset: str) -> Path:
    """``<data root>/cityscapes``; the smoke preset uses a synthetic stand-in in the cache."""
    if preset != "smoke":
        return data_dir() / "cityscapes"
    from gwnlib.data.synthetic_cityscapes import write_synthetic_cityscapes

    root = cache_dir() / "cityscapes-synthetic"
    if not root.is_dir():  # written aside, then renamed: never a half-written tree
        import shutil
        import tempfile

        root.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".cityscapes-", dir=root.parent))
        write_synthetic_cityscapes(scratch, splits=("train", "val"), images_per_city=6, seed=0)
        try:
            scratch.rename(root)
        except OSError:  # another process got there first
            shutil.rmtree(scratch, ignore_errors=True)
    return root


def coco_root(preset: str) -> Path:
    """``<data root>/coco``; the smoke preset uses the offline subset ``<data root>/coco_small``."""
    return data_dir() / ("coco_small" if preset == "smoke" else "coco")


def _dataset(dataset: str, preset: str, official_split: str, augment: bool, seed: int):
    # The root is resolved on every call and is part of the cache key: a changed data or cache
    # folder (GWN_DATA_DIR, GWN_CACHE_DIR) must never be answered with a dataset from the old one.
    root = cityscapes_root(preset) if dataset == "cityscapes" else coco_root(preset)
    return _dataset_at(dataset, root, official_split, augment, seed)


@functools.lru_cache(maxsize=8)
def _dataset_at(dataset: str, root: Path, official_split: str, augment: bool, seed: int):
    if dataset == "cityscapes":
        from gwnlib.data.cityscapes import CityscapesTasks

        return CityscapesTasks(root, official_split, augment=augment, seed=seed)
    from gwnlib.data.coco import CocoTasks

    return CocoTasks(root, official_split, augment=augment, seed=seed)


def split_items(config: RunConfig, split: str, epoch: int = 0):
    """(dataset, indices) of ``split``: train and val are disjoint parts of the official
    training split (val: its first ``val_size`` images), test is the official validation split."""
    check_split(split)
    train_name, val_name = ("train", "val") if config.dataset == "cityscapes" else (
        "train2017", "val2017")  # fmt: skip
    official = val_name if split == "test" else train_name
    data = _dataset(config.dataset, config.preset, official, split == "train", config.seed)
    n = len(data)
    if split == "test":
        size = n if config.test_size is None else config.test_size
        indices = list(range(size))
    elif split == "val":
        indices = list(range(config.val_size))
    else:
        available = n - config.val_size
        size = available if config.train_size is None else config.train_size
        indices = list(range(config.val_size, config.val_size + size))
        generator = torch.Generator().manual_seed(derive_seed(config.seed, "shuffle", epoch))
        indices = [indices[i] for i in torch.randperm(len(indices), generator=generator)]
    last = max(indices, default=-1)
    if last >= n:
        raise ValueError(
            f"{split} needs {last + 1} images of the official {official!r} split (val_size, "
            f"train_size, test_size), but {n} are there"
        )
    return data, indices


def _resize_cityscapes(item: dict, size: int | None) -> dict:
    if size is None:
        return item
    height, width = item["image"].shape[-2:]
    scale = size / min(height, width)
    shape = (round(height * scale), round(width * scale))
    image = F.interpolate(item["image"][None], shape, mode="bilinear", antialias=True)[0]
    nearest = {key: F.interpolate(item[key][None, None].float(), shape, mode="nearest")[0, 0]
               for key in ("segmentation", "disparity", "valid")}  # fmt: skip
    return {
        "image": image.clamp(0, 1),
        "segmentation": nearest["segmentation"].long(),
        "disparity": nearest["disparity"] * (shape[1] / width),  # pixels scale with the width
        "valid": nearest["valid"].bool(),
    }


def _resize_coco(image: torch.Tensor, targets: list[dict], size: int | None):
    """``image`` with its shorter side ``size`` and the targets' coordinates scaled alike;
    returns (image, targets, scale)."""
    if size is None:
        return image, targets, 1.0
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    shape = (round(height * scale), round(width * scale))
    image = F.interpolate(image[None], shape, mode="bilinear", antialias=True)[0].clamp(0, 1)
    scaled = []
    for target in targets:
        target = dict(target)
        target["boxes"] = target["boxes"] * scale
        if "area" in target:
            target["area"] = target["area"] * scale**2
        if "keypoints" in target:
            keypoints = target["keypoints"].clone()
            keypoints[..., :2] *= scale
            target["keypoints"] = keypoints
        scaled.append(target)
    return image, scaled, scale


def coco_item(config: RunConfig, data, index: int):
    """(image, detection target, keypoint target, scale) of COCO item ``index``, resized."""
    image, detection, keypoints = data[index]
    image, (detection, keypoints), scale = _resize_coco(image, [detection, keypoints],
                                                        config.image_size)  # fmt: skip
    return image, detection, keypoints, scale


class VisionExperiment(Experiment, datasets=("cityscapes", "coco")):
    """:class:`~gwnlib.experiments.Experiment` for ``cityscapes`` and ``coco`` (built by
    ``Experiment(config)`` itself). Batches are ``(x, t1, t2)``:

    - Cityscapes: ``x`` (B, 3, H, W) in [0, 1]; ``t1`` train ids (B, H, W); ``t2`` the pair
      (disparity in pixels, valid) (B, H, W);
    - COCO: ``x`` the pair (images padded to a multiple of 64, mask); ``t1``, ``t2`` lists of
      detection and keypoint targets without crowd regions (:func:`gwnlib.data.coco.
      training_targets`; evaluation uses the full annotations).
    """

    def codec(self) -> VisionCodec:
        c = self.config
        torch.manual_seed(derive_seed(c.seed, "init"))
        if c.dataset == "cityscapes":
            from gwnlib.vision.samplers import ResampledTask
            from gwnlib.vision.weights import pretrained_path

            segmentation, depth = _task_models(c, self.device)
            # The depth model's samplers start where its pretraining left them; the public
            # segmentation weights come without samplers, which start as the identity.
            samplers = pretrained_path("depth") if c.task_weights == "default" else None
            heads = (ResampledTask(segmentation, factor=2),
                     ResampledTask(depth, factor=2, weights=samplers))  # fmt: skip
        else:
            heads = (nn.Identity(), nn.Identity())
        return VisionCodec(c.codec, in_channels=3, latent_channels=c.latent_channels,
                           transform=c.transform, features=3, heads=heads)  # fmt: skip

    def loss(self) -> VisionLoss:
        c = self.config
        models = _task_models(c, self.device)
        kind = DenseDistortion if c.dataset == "cityscapes" else DetectionDistortion
        distortions = tuple(kind(model) for model in models)
        return VisionLoss(c.beta, c.eta, c.gamma, c.reconstruction, distortions)

    def task_metrics(self, output, t1, t2) -> dict:
        return {}

    def steps(self, split: str) -> int:
        _, indices = split_items(self.config, split)
        return -(-len(indices) // self.config.batch_size)

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple]:
        c = self.config
        data, indices = split_items(c, split, epoch if split == "train" else 0)
        if split == "train":
            data.set_epoch(epoch)  # the augmentations of this epoch
        for start in range(0, len(indices), c.batch_size):
            chunk = indices[start : start + c.batch_size]
            if c.dataset == "cityscapes":
                yield self._cityscapes_batch(data, chunk)
            else:
                yield self._coco_batch(data, chunk)

    def _cityscapes_batch(self, data, chunk):
        items = [_resize_cityscapes(data[i], self.config.image_size) for i in chunk]
        stack = {key: torch.stack([item[key] for item in items]).to(self.device)
                 for key in items[0]}  # fmt: skip
        return stack["image"], stack["segmentation"], (stack["disparity"], stack["valid"])

    def _padded_coco(self, data, chunk):
        """The resized COCO items of ``chunk`` and their padded (images, mask) on the device."""
        from gwnlib.data.coco import pad_to_multiple

        items = [coco_item(self.config, data, i) for i in chunk]
        images, mask = pad_to_multiple([item[0] for item in items], multiple=PAD_MULTIPLE)
        return items, images.to(self.device), mask.to(self.device)

    def _coco_batch(self, data, chunk):
        from gwnlib.data.coco import training_targets

        items, images, mask = self._padded_coco(data, chunk)
        move = lambda t: {k: v.to(self.device) if torch.is_tensor(v) else v  # noqa: E731
                          for k, v in training_targets(t).items()}  # fmt: skip
        return (images, mask), [move(item[1]) for item in items], [move(item[2]) for item in items]

    # -- whole-split task quality (Tables 7 and 8) ------------------------------------------
    @torch.no_grad()
    def quality(self, codec, split: str = "test") -> dict:
        """Cityscapes: ``miou`` and disparity ``rmse`` (pixels); COCO: ``box_map`` and
        ``keypoint_map`` (COCOeval AP@[.5:.95]) of the codec's decoded images over ``split``."""
        was_training = codec.training
        codec.eval()
        try:
            if self.config.dataset == "cityscapes":
                return self._cityscapes_quality(split, lambda x: codec(x))
            return self._coco_quality(split, codec)
        finally:
            codec.train(was_training)

    @torch.no_grad()
    def uncompressed_quality(self, split: str = "test") -> dict:
        """The same metrics of the task models on the original images: Fig. 5's *Uncompressed*
        line (Cityscapes: at full resolution, without the samplers)."""
        if self.config.dataset == "cityscapes":
            models = _task_models(self.config, self.device)
            return self._cityscapes_quality(
                split, lambda x: {"z1_hat": models[0](x), "z2_hat": models[1](x)}
            )
        return self._coco_quality(split, None)

    def _cityscapes_quality(self, split, run) -> dict:
        from gwnlib.data.cityscapes import DISPARITY_SCALE
        from gwnlib.vision.metrics import DisparityRMSE, SegmentationIoU

        iou, rmse = SegmentationIoU(), DisparityRMSE()
        for x, segmentation, (disparity, valid) in self.batches(split):
            output = run(x)
            iou.update(output["z1_hat"].argmax(1).cpu(), segmentation.cpu())
            prediction = output["z2_hat"][:, 0].float() * DISPARITY_SCALE
            rmse.update(prediction.cpu(), disparity.cpu(), valid.cpu())
        return {"miou": iou.compute(), "rmse": rmse.compute()}

    def _coco_quality(self, split, codec) -> dict:
        from gwnlib.vision.metrics import CocoEvaluator

        c = self.config
        data, indices = split_items(c, split)
        models = _task_models(c, self.device)
        evaluators = (CocoEvaluator(data.coco_instances, "bbox"),
                      CocoEvaluator(data.coco_keypoints, "keypoints"))  # fmt: skip
        known = torch.tensor(sorted(data.coco_instances.getCatIds()))
        for start in range(0, len(indices), c.batch_size):
            items, images, mask = self._padded_coco(data, indices[start : start + c.batch_size])
            if codec is None:
                decoded = (images, images)
            else:
                output = codec(images, mask)
                decoded = (output["z1_hat"], output["z2_hat"])
            ids = [int(item[1]["image_id"]) for item in items]
            scales = [item[3] for item in items]
            sizes = valid_sizes(mask, images)
            for model, evaluator, batch in zip(models, evaluators, decoded, strict=True):
                predictions = model.predict(batch.clamp(0, 1), sizes=sizes)
                predictions = [_known_categories(_unscale(p, scale), known)
                               for p, scale in zip(predictions, scales, strict=True)]  # fmt: skip
                evaluator.update(predictions, ids)
        box, keypoints = (evaluator.compute() for evaluator in evaluators)
        return {"box_map": box["AP"], "keypoint_map": keypoints["AP"]}


def _known_categories(prediction: dict, known: torch.Tensor) -> dict:
    """``prediction`` without labels outside COCO's 80 categories: torchvision's 91-way heads
    keep 11 unused slots ("N/A"), which only an untrained detector predicts."""
    keep = torch.isin(prediction["labels"].cpu(), known)
    if bool(keep.all()):
        return prediction
    keep = keep.to(prediction["labels"].device)
    return {key: value[keep] if torch.is_tensor(value) else value
            for key, value in prediction.items()}  # fmt: skip


def _unscale(prediction: dict, scale: float) -> dict:
    """Predictions on a resized image in the original image's coordinates (for COCOeval)."""
    if scale == 1.0:
        return prediction
    prediction = dict(prediction)
    prediction["boxes"] = prediction["boxes"] / scale
    if "keypoints" in prediction:
        keypoints = prediction["keypoints"].clone()
        keypoints[..., :2] /= scale
        prediction["keypoints"] = keypoints
    return prediction

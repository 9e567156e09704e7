"""Task-quality metrics of the vision experiments (paper Sec. 4.3, appendix D.5, Tables 7 and 8).

The vision chapter reports, on the validation sets:

- Cityscapes: semantic-segmentation mIoU over the 19 evaluation classes (Table 7, 1/D1) and
  disparity RMSE in pixels (Table 7, D2): :class:`SegmentationIoU` and :class:`DisparityRMSE`;
- COCO 2017: box mAP of Faster R-CNN (Table 8, 1/D1) and person-keypoint mAP of Keypoint R-CNN
  (Table 8, 1/D2), both the COCO mAP@[.5:.95]: :class:`CocoEvaluator`.

All three accumulate over batches and compute one number for the whole set, as the official
evaluation scripts do: the segmentation IoU from one confusion matrix summed over every image,
the RMSE from the squared errors of every valid pixel, the mAP from one COCOeval run over every
evaluated image. Averaging per-image scores gives different (and non-standard) numbers.
:func:`ground_truth_predictions` turns COCO annotations into model-style predictions; fed back,
they score AP 1.0, which the tests and the chapter use to show that the metric plumbing is right.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from gwnlib.data.cityscapes import IGNORE_INDEX, NUM_CLASSES

# Cityscapes evaluation classes (train ids 0..18) and the train id of the pixels left out of
# evaluation (the authors' code relabels them 19; any value outside 0..18 works the same here).
CITYSCAPES_NUM_CLASSES = NUM_CLASSES
CITYSCAPES_IGNORE_INDEX = IGNORE_INDEX

IOU_TYPES = ("bbox", "keypoints")


def _as_tensor(name: str, value) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array; got {type(value).__name__}")
    return value


def _check_images(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    """Every tensor is (B, H, W) and all have the same shape."""
    for name, tensor in zip(names, tensors, strict=True):
        if tensor.ndim != 3:
            raise ValueError(f"{name} must have shape (B, H, W); got {tuple(tensor.shape)}")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        described = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, tensors, strict=True))
        raise ValueError(f"shape mismatch: {described}; they must be equal")


# --------------------------------------------------------------------------------------------
# Cityscapes
# --------------------------------------------------------------------------------------------


class SegmentationIoU:
    """Cityscapes mIoU: the mean over classes of TP / (TP + FP + FN), counted in one confusion
    matrix accumulated over every pixel of every image (the official ``cityscapesscripts``
    definition, Table 7's 1/D1).

    The confusion matrix is accumulated by torchmetrics' ``MulticlassJaccardIndex(num_classes=19,
    ignore_index=255, average="macro")`` (its state is exactly that summed matrix);
    :meth:`compute` gives that metric's value, reduced in float64.
    Conventions (checked in ``tests/test_vision_metrics.py``):

    - Pixels whose target is ``ignore_index`` are dropped before counting, so a prediction on
      them is neither a true nor a false positive (as in ``cityscapesscripts``).
    - A class that appears in the targets or the predictions of the set but is never predicted
      correctly has IoU 0 and counts in the mean.
    - A class absent from both the targets and the predictions of the whole set is left out of
      the mean (torchmetrics gives it weight 0; ``cityscapesscripts`` gives it NaN and averages
      the non-NaN classes: the same number). torchmetrics' ``zero_division`` never enters macro
      mIoU, because TP + FP + FN = 0 only for such an absent class. :meth:`per_class` returns
      NaN for it. On the full Cityscapes validation set all 19 classes occur, so the mean is over
      19 classes; on a few images it may be over fewer.

    ``update(pred, target)`` takes integer train ids of shape (B, H, W): ``pred`` in
    0..num_classes-1 (the argmax of the model's logits, at the target's resolution), ``target``
    in 0..num_classes-1 or ``ignore_index``.
    """

    def __init__(
        self,
        num_classes: int = CITYSCAPES_NUM_CLASSES,
        ignore_index: int = CITYSCAPES_IGNORE_INDEX,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2; got {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"ignore_index must lie outside the classes 0..{num_classes - 1}; "
                f"got {ignore_index}"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # Inputs are checked here with two reductions; torchmetrics' own checks (torch.unique over
        # every pixel) would cost more than the metric on full-resolution Cityscapes images.
        self._metric = MulticlassJaccardIndex(
            num_classes=num_classes, ignore_index=ignore_index, average="macro", validate_args=False
        )

    def reset(self) -> None:
        self._metric.reset()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred, target = _as_tensor("pred", pred), _as_tensor("target", target)
        _check_images(("pred", "target"), (pred, target))
        for name, tensor in (("pred", pred), ("target", target)):
            if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
                raise ValueError(
                    f"{name} must hold integer class ids (train ids), not {tensor.dtype}; "
                    "take the argmax of the logits"
                )
        if pred.numel() == 0:
            return
        if pred.min() < 0 or pred.max() >= self.num_classes:
            raise ValueError(
                f"pred must hold class ids in 0..{self.num_classes - 1}; got values in "
                f"{int(pred.min())}..{int(pred.max())}"
            )
        outside = (target < 0) | (target >= self.num_classes)
        if (outside & (target != self.ignore_index)).any():
            bad = torch.unique(target[outside & (target != self.ignore_index)])[:5].tolist()
            raise ValueError(
                f"target must hold class ids in 0..{self.num_classes - 1} or ignore_index="
                f"{self.ignore_index}; found {bad}"
            )
        self._metric.to(pred.device)
        self._metric.update(pred.long(), target.to(pred.device).long())

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """(num_classes, num_classes) pixel counts so far: rows target, columns prediction."""
        return self._metric.confmat.detach().cpu().clone()

    def per_class(self) -> torch.Tensor:
        """IoU of each class (float64), NaN for a class absent from targets and predictions."""
        confmat = self.confusion_matrix.double()
        tp = confmat.diag()
        denominator = confmat.sum(0) + confmat.sum(1) - tp
        iou = tp / denominator
        iou[denominator == 0] = math.nan
        return iou

    def pixels(self) -> int:
        """How many pixels have been scored (targets other than ``ignore_index``)."""
        return int(self._metric.confmat.sum())

    def compute(self) -> float:
        """mIoU over the classes that occur (see the class docstring), in [0, 1]."""
        if self.pixels() == 0:
            raise ValueError(
                "SegmentationIoU has no pixels to score: update() was not called, or every target "
                f"pixel was ignore_index={self.ignore_index}"
            )
        # The mean of per_class() over the classes that occur: torchmetrics' macro mIoU, reduced
        # in float64 (torchmetrics reduces in float32: 1.0000001 for a perfect prediction).
        return float(self.per_class().nanmean())


class DisparityRMSE:
    """Cityscapes disparity RMSE in pixels (Table 7's D2): sqrt(sum of squared errors / number of
    valid pixels), both summed over every valid pixel of the whole set.

    This is the RMSE of the pooled pixels, not the mean of per-image RMSEs: images with more valid
    pixels weigh more, and the square root is taken once at the end. ``update(pred, target,
    valid)`` takes disparities in pixels (the 16-bit PNG value p decodes to (p - 1) / 256; the
    authors train on disparity / 128, so scale their outputs back) and a boolean mask of the
    pixels with a measurement (p > 0), all of shape (B, H, W). Target values outside the mask are
    never read, so their encoding does not matter. Sums are kept in float64.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sum_squared_error = 0.0
        self.count = 0

    def pixels(self) -> int:
        """How many valid pixels have been scored."""
        return self.count

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        pred, target = _as_tensor("pred", pred), _as_tensor("target", target)
        valid = _as_tensor("valid", valid)
        _check_images(("pred", "target", "valid"), (pred, target, valid))
        if valid.dtype != torch.bool:
            raise ValueError(f"valid must be a bool mask; got {valid.dtype}")
        valid = valid.to(pred.device)
        error = pred.double()[valid] - target.to(pred.device).double()[valid]
        if not torch.isfinite(error).all():
            raise ValueError("pred and target must be finite at valid pixels")
        self.sum_squared_error += float(error.square().sum())
        self.count += int(valid.sum())

    def compute(self) -> float:
        if self.count == 0:
            raise ValueError(
                "DisparityRMSE has no valid pixels: update() was not called, or every valid mask "
                "was all False"
            )
        return math.sqrt(self.sum_squared_error / self.count)


# --------------------------------------------------------------------------------------------
# COCO 2017
# --------------------------------------------------------------------------------------------


def _check_iou_type(iou_type: str) -> str:
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}; got {iou_type!r}")
    return iou_type


def _keypoint_category(coco_gt) -> dict:
    """The one category with keypoints (COCO's person, id 1) of a person_keypoints file."""
    categories = [c for c in coco_gt.dataset.get("categories", []) if c.get("keypoints")]
    if len(categories) != 1:
        raise ValueError(
            "iou_type='keypoints' needs the person_keypoints annotations (one category with "
            f"'keypoints'); coco_gt has {len(categories)} such categories"
        )
    return categories[0]


def _numpy(prediction: dict, key: str, index: int) -> np.ndarray:
    if key not in prediction:
        raise ValueError(f"predictions[{index}] has no {key!r}; keys: {sorted(prediction)}")
    value = prediction[key]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class CocoEvaluator:
    """COCO mAP of box or person-keypoint predictions with pycocotools' COCOeval (Table 8).

    ``update(predictions, image_ids)`` takes the output list of a torchvision detection model
    (Faster R-CNN, Keypoint R-CNN) in eval mode, one dict per image with ``boxes`` (N, 4) xyxy in
    the original image's pixels, ``scores`` (N,), ``labels`` (N,) COCO category ids and, for
    keypoint models, ``keypoints`` (N, K, 3), together with the COCO ids of the images. They are
    converted to COCO result json as torchvision's reference evaluation does: boxes become
    [x, y, w, h]; keypoints are flattened to [x1, y1, v1, ..., xK, yK, vK] (pycocotools reads
    only x and y: the third value is free, torchvision's is 1) with ``category_id`` the person
    category (1) and ``score`` the detection score. ``compute()`` runs COCOeval once over every
    image seen (``params.imgIds`` = those images, so images never passed are not counted as
    missed) and returns ``AP`` (mAP@[.5:.95], COCOeval's ``stats[0]``), ``AP50``, ``AP75`` and
    ``stats``, the full 12- (bbox) or 10-entry (keypoints) list. In ``stats``, -1 is pycocotools'
    mark for "undefined" (no ground truth, e.g. in an area range); ``AP``, ``AP50`` and ``AP75``
    are NaN instead, so that an undefined value cannot pass for a score. pycocotools' printout is
    captured, not shown, and kept as :attr:`summary`.

    Crowd annotations stay in the ground truth: COCOeval treats them as ignore regions, so a
    detection on a crowd neither counts as a hit nor as a false positive (and keypoint mode also
    ignores persons with no labelled keypoint). The authors' code deletes crowd annotations
    before evaluating, so that detections on crowds count as false positives, which lowers AP.
    The paper prints no uncompressed box mAP; even its best compressed point (Table 8: 0.455,
    Shared at eta = 0.5) is 1.2 points below the 0.467 that torchvision reports for Faster R-CNN
    ResNet50-FPN v2 (the authors' plotting code draws Fig. 5's "Uncompressed" line at that same
    0.455, source unstated), and the deleted crowds may account for part of that gap. This class
    gives torchvision's (official COCO) convention.

    No predictions at all give AP 0.0 where ground truth exists (pycocotools' ``loadRes`` would
    fail on an empty list; an empty result set is built instead).
    """

    def __init__(self, coco_gt, iou_type: str = "bbox") -> None:
        self.iou_type = _check_iou_type(iou_type)
        self.coco_gt = coco_gt
        if iou_type == "keypoints":
            category = _keypoint_category(coco_gt)
            self.category_ids = [category["id"]]
            self.num_keypoints = len(category["keypoints"])
        else:
            self.category_ids = sorted(coco_gt.getCatIds())
            self.num_keypoints = None
        self._known_images = set(coco_gt.getImgIds())
        self.summary = ""
        self.reset()

    def reset(self) -> None:
        self.results: list[dict] = []
        self.image_ids: list[int] = []

    def update(self, predictions: Sequence[dict], image_ids: Iterable[int]) -> None:
        image_ids = [int(i) for i in image_ids]
        if len(predictions) != len(image_ids):
            raise ValueError(
                f"predictions and image_ids must have equal length; got {len(predictions)} and "
                f"{len(image_ids)}"
            )
        unknown = sorted(set(image_ids) - self._known_images)
        if unknown:
            raise ValueError(f"image_ids not in coco_gt: {unknown[:5]}")
        seen = set(self.image_ids)
        repeated = sorted({i for i in image_ids if i in seen} | _duplicates(image_ids))
        if repeated:
            raise ValueError(f"image_ids already evaluated (each image once): {repeated[:5]}")
        results = []
        for index, (prediction, image_id) in enumerate(zip(predictions, image_ids, strict=True)):
            results += self._convert(prediction, image_id, index)
        self.results += results
        self.image_ids += image_ids

    def _convert(self, prediction: dict, image_id: int, index: int) -> list[dict]:
        scores = _numpy(prediction, "scores", index).astype(np.float64)
        if scores.ndim != 1:
            raise ValueError(f"predictions[{index}]['scores'] must have shape (N,)")
        n = len(scores)
        if self.iou_type == "keypoints":
            keypoints = _numpy(prediction, "keypoints", index).astype(np.float64)
            if keypoints.shape != (n, self.num_keypoints, 3):
                raise ValueError(
                    f"predictions[{index}]['keypoints'] must have shape (N, {self.num_keypoints}, "
                    f"3) with N = {n} scores; got {keypoints.shape}"
                )
            (category_id,) = self.category_ids
            return [
                {
                    "image_id": image_id,
                    "category_id": category_id,
                    "keypoints": keypoints[i].reshape(-1).tolist(),
                    "score": float(scores[i]),
                }
                for i in range(n)
            ]
        boxes = _numpy(prediction, "boxes", index).astype(np.float64)
        labels = _numpy(prediction, "labels", index)
        if boxes.shape != (n, 4) or labels.shape != (n,):
            raise ValueError(
                f"predictions[{index}] must have boxes (N, 4), scores (N,) and labels (N,); got "
                f"{boxes.shape}, {scores.shape} and {labels.shape}"
            )
        unknown = sorted(set(labels.tolist()) - set(self.category_ids))
        if unknown:
            raise ValueError(
                f"predictions[{index}]['labels'] must be COCO category ids of coco_gt; unknown: "
                f"{unknown[:5]}"
            )
        xywh = boxes.copy()
        xywh[:, 2:] -= xywh[:, :2]
        return [
            {
                "image_id": image_id,
                "category_id": int(labels[i]),
                "bbox": xywh[i].tolist(),
                "score": float(scores[i]),
            }
            for i in range(n)
        ]

    def compute(self) -> dict:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self.image_ids:
            raise ValueError("CocoEvaluator has no images: call update() first")
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            if self.results:
                # loadRes writes ids and areas into the dicts it gets: give it copies.
                coco_dt = self.coco_gt.loadRes([dict(r) for r in self.results])
            else:
                coco_dt = COCO()
                coco_dt.dataset = {
                    "images": list(self.coco_gt.dataset["images"]),
                    "categories": list(self.coco_gt.dataset.get("categories", [])),
                    "annotations": [],
                }
                coco_dt.createIndex()
            evaluation = COCOeval(self.coco_gt, coco_dt, iouType=self.iou_type)
            evaluation.params.imgIds = sorted(self.image_ids)
            evaluation.params.catIds = list(self.category_ids)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        self.summary = captured.getvalue()
        stats = [float(s) for s in evaluation.stats]

        def defined(value: float) -> float:
            return math.nan if value == -1 else value

        return {
            "AP": defined(stats[0]),
            "AP50": defined(stats[1]),
            "AP75": defined(stats[2]),
            "stats": stats,
        }


def _duplicates(values: Sequence[int]) -> set[int]:
    seen, repeated = set(), set()
    for value in values:
        (repeated if value in seen else seen).add(value)
    return repeated


def ground_truth_predictions(coco_gt, image_ids: Iterable[int], iou_type: str = "bbox") -> list:
    """The annotations of ``image_ids`` as torchvision-style predictions with score 1.

    One dict per image, in the order of ``image_ids``, with ``boxes`` (N, 4) xyxy float32,
    ``scores`` (N,) ones, ``labels`` (N,) int64 category ids and, for ``iou_type="keypoints"``,
    ``keypoints`` (N, K, 3) float32 (the annotated x, y, visibility). Only the annotations that
    COCOeval scores are kept:

    - crowd annotations are left out. They are ignore regions, not objects; as predictions they
      would be harmless to box AP (a box on a crowd region matches it, and is ignored) but they
      predict nothing;
    - for keypoints, persons without any labelled keypoint (``num_keypoints == 0``, crowds
      included) are left out too. COCOeval's keypoint mode ignores them as ground truth, and as
      predictions their keypoints, all at (0, 0) with visibility 0, match nothing and are false
      positives (AP 0.64 instead of 1.0 on the COCO subset of the tests).

    Fed back to :class:`CocoEvaluator`, the rest give AP = AP50 = AP75 = 1.0 (every detection has
    IoU or OKS exactly 1 with its own object, so precision is 1 at every recall), provided no
    image has more scored objects than COCOeval's detection cap (100 boxes; 20 persons for
    keypoints).
    """
    iou_type = _check_iou_type(iou_type)
    if iou_type == "keypoints":
        category = _keypoint_category(coco_gt)
        category_ids, num_keypoints = [category["id"]], len(category["keypoints"])
    else:
        category_ids = coco_gt.getCatIds()
    predictions = []
    for image_id in image_ids:
        annotations = [
            a
            for a in coco_gt.loadAnns(
                coco_gt.getAnnIds(imgIds=[int(image_id)], catIds=category_ids)
            )
            if not a.get("iscrowd", 0) and (iou_type == "bbox" or a.get("num_keypoints", 0) > 0)
        ]
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        prediction = {
            "boxes": boxes.float(),
            "scores": torch.ones(len(annotations)),
            "labels": torch.tensor([a["category_id"] for a in annotations], dtype=torch.int64),
        }
        if iou_type == "keypoints":
            keypoints = [a["keypoints"] for a in annotations]
            prediction["keypoints"] = torch.tensor(keypoints, dtype=torch.float32).reshape(
                len(annotations), num_keypoints, 3
            )
        predictions.append(prediction)
    return predictions

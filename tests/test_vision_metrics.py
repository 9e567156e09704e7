"""Task metrics of the vision experiments (paper Sec. 4.3, Tables 7 and 8): Cityscapes mIoU and
disparity RMSE on small hand-made examples, COCO box and keypoint mAP on the real COCO subset.

The conftest points GWN_DATA_DIR at the offline data, whose coco_small holds 79 val2017 images
in the official layout; the COCO tests are skipped where it is missing.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import random

import numpy as np
import pytest
import torch

from gwnlib import data_dir
from gwnlib.vision.metrics import (
    CocoEvaluator,
    DisparityRMSE,
    SegmentationIoU,
    ground_truth_predictions,
)

# --------------------------------------------------------------------------------------------
# Cityscapes mIoU
# --------------------------------------------------------------------------------------------

I = 255  # noqa: E741 - the ignore train id, short so the label maps below line up


def _miou(pred, target) -> float:
    metric = SegmentationIoU()
    metric.update(torch.as_tensor(pred), torch.as_tensor(target))
    # The same number as torchmetrics' own macro reduction (float32 there, float64 here).
    assert metric.compute() == pytest.approx(float(metric._metric.compute()), abs=1e-6)
    return metric.compute()


def test_miou_of_a_hand_counted_confusion_matrix():
    # Classes 0, 1 and 7 of the 19 occur. Counting the six scored pixels by hand:
    #   class 0: TP 1 (0,0), FN 1 (0,1), FP 1 (1,1)  -> IoU 1/3
    #   class 1: TP 2,       FP 1 (0,1)              -> IoU 2/3
    #   class 7: TP 1,       FN 1 (1,1)              -> IoU 1/2
    # The two ignore pixels are not counted, so the predictions 3 and 7 on them are no false
    # positives, and class 3 (predicted only there) is absent: mIoU = (1/3 + 2/3 + 1/2) / 3.
    target = [[[0, 0, 1, 1], [7, 7, I, I]]]
    pred = [[[0, 1, 1, 1], [7, 0, 3, 7]]]
    metric = SegmentationIoU()
    metric.update(torch.tensor(pred), torch.tensor(target))
    assert metric.compute() == pytest.approx(0.5, abs=1e-6)
    per_class = metric.per_class()
    assert per_class[[0, 1, 7]].tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert torch.isnan(per_class[[c for c in range(19) if c not in (0, 1, 7)]]).all()
    assert int(metric.confusion_matrix.sum()) == 6


def test_miou_absent_class_convention():
    # torchmetrics' macro average (= cityscapesscripts' NaN-skipping mean): a class absent from
    # both targets and predictions is left out; a class only predicted, or only in the target,
    # has IoU 0 and counts.
    assert _miou([[[0, 0]]], [[[0, 0]]]) == 1.0  # 18 absent classes left out, not counted as 0
    assert _miou([[[0, 2]]], [[[0, 0]]]) == pytest.approx((1 / 2 + 0) / 2)  # 2 only predicted
    assert _miou([[[0, 0]]], [[[0, 2]]]) == pytest.approx((1 / 2 + 0) / 2)  # 2 only in target
    # Whatever torchmetrics' zero_division is, it never enters its macro mean.
    metric = SegmentationIoU()
    metric._metric.zero_division = 1.0
    metric.update(torch.tensor([[[0, 2]]]), torch.tensor([[[0, 0]]]))
    assert float(metric._metric.compute()) == pytest.approx(0.25)
    assert metric.compute() == pytest.approx(0.25)


def test_miou_is_the_confusion_matrix_of_the_whole_set_not_a_mean_over_images():
    generator = torch.Generator().manual_seed(0)
    metric = SegmentationIoU()
    confmat = np.zeros((19, 19), dtype=np.int64)
    per_image = []
    for _ in range(6):
        target = torch.randint(0, 6, (2, 16, 16), generator=generator)
        target[torch.rand(target.shape, generator=generator) < 0.1] = I
        pred = torch.where(torch.rand(target.shape, generator=generator) < 0.6, target, 0)
        pred[pred == I] = 5
        metric.update(pred, target)
        scored = target != I
        np.add.at(confmat, (target[scored].numpy(), pred[scored].numpy()), 1)
        per_image.append(_miou(pred, target))
    tp = np.diag(confmat)
    denominator = confmat.sum(0) + confmat.sum(1) - tp
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(tp / denominator)  # cityscapesscripts: NaN for absent classes
    assert metric.compute() == pytest.approx(expected, abs=1e-12)
    assert metric.compute() == pytest.approx(float(metric._metric.compute()), abs=1e-6)
    assert metric.compute() != pytest.approx(np.mean(per_image), abs=1e-6)


def test_miou_pools_pixels_over_images():
    # Image A: four pixels of class 0, all right (mIoU 1). Image B: target (0, 1), prediction
    # (1, 1): class 0 IoU 0, class 1 IoU 1/2 (mIoU 1/4). The mean over images would be 0.625;
    # the pooled matrix has class 0 TP 4, FN 1 (IoU 4/5) and class 1 TP 1, FP 1 (IoU 1/2): 0.65.
    metric = SegmentationIoU()
    metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    metric.update(torch.tensor([[[1, 1]]]), torch.tensor([[[0, 1]]]))
    assert metric.compute() == pytest.approx(0.65)
    assert _miou([[[1, 1]]], [[[0, 1]]]) == pytest.approx(0.25)


def test_miou_rejects_bad_inputs():
    metric = SegmentationIoU()
    with pytest.raises(ValueError, match="shape mismatch"):
        metric.update(
            torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long)
        )
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        metric.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="argmax"):
        metric.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="pred must hold class ids in 0..18"):
        metric.update(torch.full((1, 2, 2), 19), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="ignore_index=255"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 19))
    with pytest.raises(ValueError, match="ignore_index must lie outside"):
        SegmentationIoU(ignore_index=0)
    with pytest.raises(ValueError, match="no pixels"):
        metric.compute()  # nothing was accumulated by the failed updates
    metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), I))
    with pytest.raises(ValueError, match="no pixels"):
        metric.compute()


def test_miou_identity_and_the_authors_ignore_label():
    target = torch.randint(0, 19, (3, 8, 8), generator=torch.Generator().manual_seed(1))
    assert _miou(target, target) == 1.0
    metric = SegmentationIoU(ignore_index=19)  # the authors' relabelling (REFERENCE.md)
    metric.update(torch.tensor([[[0, 5]]]), torch.tensor([[[0, 19]]]))
    assert metric.compute() == 1.0


# --------------------------------------------------------------------------------------------
# Cityscapes disparity RMSE
# --------------------------------------------------------------------------------------------


def test_rmse_excludes_invalid_pixels():
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    target = torch.tensor([[[1.0, 0.0], [math.nan, 0.0]]])  # NaN where there is no measurement
    valid = torch.tensor([[[True, True], [False, True]]])
    metric = DisparityRMSE()
    metric.update(pred, target, valid)
    assert metric.compute() == pytest.approx(math.sqrt((0 + 4 + 16) / 3))


def test_rmse_pools_pixels_over_the_set():
    # Image A: one valid pixel, error 3. Image B: three valid pixels, error 1 each.
    # Pooled: sqrt((9 + 1 + 1 + 1) / 4) = sqrt(3); the mean of per-image RMSEs would be 2.
    metric = DisparityRMSE()
    valid_a = torch.tensor([[[True, False], [False, False]]])
    metric.update(torch.full((1, 2, 2), 3.0), torch.zeros(1, 2, 2), valid_a)
    metric.update(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), ~valid_a)
    assert metric.compute() == pytest.approx(math.sqrt(3))
    target = torch.rand(2, 5, 5)
    metric.reset()
    metric.update(target, target, torch.ones(2, 5, 5, dtype=torch.bool))
    assert metric.compute() == 0.0


def test_rmse_rejects_bad_inputs():
    metric = DisparityRMSE()
    with pytest.raises(ValueError, match="no valid pixels"):
        metric.compute()
    metric.update(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="no valid pixels"):
        metric.compute()
    with pytest.raises(ValueError, match="shape mismatch"):
        metric.update(torch.ones(1, 2, 2), torch.zeros(1, 2, 3), torch.ones(1, 2, 2).bool())
    with pytest.raises(ValueError, match="bool mask"):
        metric.update(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="finite"):
        metric.update(
            torch.full((1, 2, 2), math.nan), torch.zeros(1, 2, 2), torch.ones(1, 2, 2).bool()
        )


# --------------------------------------------------------------------------------------------
# COCO box and keypoint mAP on the real subset
# --------------------------------------------------------------------------------------------

COCO_SMALL = data_dir() / "coco_small"


def _load(name: str):
    path = COCO_SMALL / "annotations" / name
    if not path.is_file():
        pytest.skip(f"COCO subset not found at {path} (set GWN_DATA_DIR to the offline data)")
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.fixture(scope="module")
def coco_boxes():
    return _load("instances_val2017.json")


@pytest.fixture(scope="module")
def coco_keypoints():
    return _load("person_keypoints_val2017.json")


def _evaluate(coco_gt, iou_type, predictions, image_ids, batch=8):
    evaluator = CocoEvaluator(coco_gt, iou_type)
    for start in range(0, len(image_ids), batch):
        evaluator.update(predictions[start : start + batch], image_ids[start : start + batch])
    return evaluator.compute()


def test_ground_truth_as_predictions_scores_box_ap_one(coco_boxes, capsys):
    # Crowd annotations stay in the ground truth (COCOeval ignores them) and are left out of the
    # predictions; every other box has IoU 1 with its own object, no image has more than 100
    # objects (COCOeval's cap), so precision is 1 at every recall and every IoU threshold.
    image_ids = coco_boxes.getImgIds()
    assert any(a["iscrowd"] for a in coco_boxes.dataset["annotations"])
    result = _evaluate(
        coco_boxes, "bbox", ground_truth_predictions(coco_boxes, image_ids), image_ids
    )
    assert result["AP"] == result["AP50"] == result["AP75"] == 1.0
    assert len(result["stats"]) == 12
    assert set(result["stats"][:6]) <= {1.0, -1.0}  # per-area APs: 1, or -1 if undefined
    assert result["stats"][6] < 1  # AR@1 cannot be 1 with several objects in an image
    assert capsys.readouterr().out == ""  # pycocotools' prints are captured


def test_ground_truth_as_predictions_scores_keypoint_ap_one(coco_keypoints):
    # Persons with num_keypoints == 0 (crowds included) are ignored by COCOeval's keypoint mode
    # and left out of the predictions; the rest have OKS exactly 1 with their own person, and no
    # image has more than 20 of them (the keypoint cap).
    image_ids = coco_keypoints.getImgIds()
    predictions = ground_truth_predictions(coco_keypoints, image_ids, "keypoints")
    assert sum(len(p["scores"]) for p in predictions) == 68
    result = _evaluate(coco_keypoints, "keypoints", predictions, image_ids)
    assert result["AP"] == result["AP50"] == result["AP75"] == 1.0
    assert result["stats"] == [1.0] * 10


def test_unlabelled_persons_as_keypoint_predictions_are_false_positives(coco_keypoints):
    image_ids = coco_keypoints.getImgIds()
    predictions = []
    for image_id in image_ids:
        annotations = coco_keypoints.loadAnns(coco_keypoints.getAnnIds(imgIds=[image_id]))
        n = len(annotations)
        predictions.append(
            {
                "scores": torch.ones(n),
                "keypoints": torch.tensor([a["keypoints"] for a in annotations]).reshape(n, 17, 3),
            }
        )
    result = _evaluate(coco_keypoints, "keypoints", predictions, image_ids)
    assert 0.5 < result["AP"] < 0.7


def test_crowd_regions_are_ignored_not_deleted(coco_boxes):
    # Predictions: every object at score 0.9 plus a box on every crowd region at score 1. With the
    # crowds kept, COCOeval ignores the crowd boxes (AP 1). Deleting the crowd annotations, as the
    # authors did, turns them into top-ranked false positives and lowers AP.
    image_ids = coco_boxes.getImgIds()
    crowds = [a for a in coco_boxes.dataset["annotations"] if a["iscrowd"]]
    predictions = ground_truth_predictions(coco_boxes, image_ids)
    for prediction, image_id in zip(predictions, image_ids, strict=True):
        prediction["scores"][:] = 0.9
        here = [a for a in crowds if a["image_id"] == image_id]
        boxes = torch.tensor([a["bbox"] for a in here], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        prediction["boxes"] = torch.cat([prediction["boxes"], boxes])
        prediction["scores"] = torch.cat([prediction["scores"], torch.ones(len(here))])
        labels = torch.tensor([a["category_id"] for a in here], dtype=torch.int64)
        prediction["labels"] = torch.cat([prediction["labels"], labels])
    assert _evaluate(coco_boxes, "bbox", predictions, image_ids)["AP"] == 1.0

    from pycocotools.coco import COCO

    dataset = copy.deepcopy(coco_boxes.dataset)
    dataset["annotations"] = [a for a in dataset["annotations"] if not a["iscrowd"]]
    without_crowds = COCO()
    without_crowds.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        without_crowds.createIndex()
    assert _evaluate(without_crowds, "bbox", predictions, image_ids)["AP"] < 1.0


def test_shifted_boxes_score_the_hand_computed_ap(coco_boxes):
    # Shifting every box right by 20% of its width gives IoU 0.8 / 1.2 = 2/3 with its object: a
    # hit at the IoU thresholds 0.50, 0.55, 0.60, 0.65 and a miss at the six above, so
    # AP = 4/10, AP50 = 1, AP75 = 0.
    image_ids = coco_boxes.getImgIds()
    predictions = ground_truth_predictions(coco_boxes, image_ids)
    for prediction in predictions:
        boxes = prediction["boxes"]
        shift = 0.2 * (boxes[:, 2] - boxes[:, 0])
        boxes[:, 0] += shift
        boxes[:, 2] += shift
    result = _evaluate(coco_boxes, "bbox", predictions, image_ids)
    assert result["AP"] == pytest.approx(0.4)
    assert (result["AP50"], result["AP75"]) == (pytest.approx(1.0), 0.0)


def test_shifted_keypoints_lower_keypoint_ap(coco_keypoints):
    image_ids = coco_keypoints.getImgIds()
    predictions = ground_truth_predictions(coco_keypoints, image_ids, "keypoints")
    for prediction in predictions:
        prediction["keypoints"][..., 0] += 8.0
    result = _evaluate(coco_keypoints, "keypoints", predictions, image_ids)
    assert 0.0 < result["AP"] < 1.0


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
def test_no_predictions_score_zero(coco_boxes, coco_keypoints, iou_type):
    coco_gt = coco_boxes if iou_type == "bbox" else coco_keypoints
    image_ids = coco_gt.getImgIds()
    empty = {
        "boxes": torch.zeros(0, 4),
        "scores": torch.zeros(0),
        "labels": torch.zeros(0, dtype=torch.int64),
        "keypoints": torch.zeros(0, 17, 3),
    }
    result = _evaluate(coco_gt, iou_type, [empty] * len(image_ids), image_ids)
    assert result["AP"] == result["AP50"] == result["AP75"] == 0.0
    evaluator = CocoEvaluator(coco_gt, iou_type)
    evaluator.update([], [])
    with pytest.raises(ValueError, match="no images"):
        evaluator.compute()


def test_image_order_and_batching_do_not_change_the_result(coco_boxes):
    image_ids = coco_boxes.getImgIds()
    predictions = ground_truth_predictions(coco_boxes, image_ids)
    generator = torch.Generator().manual_seed(0)
    for prediction in predictions:  # a non-trivial AP: jittered boxes, random scores
        prediction["boxes"] += 6 * torch.randn(prediction["boxes"].shape, generator=generator)
        prediction["scores"] = torch.rand(len(prediction["scores"]), generator=generator)
    reference = _evaluate(coco_boxes, "bbox", predictions, image_ids, batch=4)
    assert 0.0 < reference["AP"] < 1.0
    order = list(range(len(image_ids)))
    random.Random(0).shuffle(order)
    shuffled = _evaluate(
        coco_boxes, "bbox", [predictions[i] for i in order], [image_ids[i] for i in order], batch=7
    )
    assert shuffled["stats"] == reference["stats"]


def test_only_the_evaluated_images_count(coco_boxes):
    # Half of the images, all found: AP 1. Were the other half evaluated too, their objects would
    # count as missed.
    image_ids = coco_boxes.getImgIds()[::2]
    result = _evaluate(
        coco_boxes, "bbox", ground_truth_predictions(coco_boxes, image_ids), image_ids
    )
    assert result["AP"] == 1.0


def test_undefined_ap_is_nan(coco_keypoints):
    # Images without a labelled person: COCOeval's AP is -1 (undefined), reported as NaN.
    image_ids = [
        i
        for i in coco_keypoints.getImgIds()
        if not any(
            a["num_keypoints"] > 0
            for a in coco_keypoints.loadAnns(coco_keypoints.getAnnIds(imgIds=[i]))
        )
    ]
    assert image_ids
    predictions = ground_truth_predictions(coco_keypoints, image_ids, "keypoints")
    assert all(len(p["scores"]) == 0 for p in predictions)
    result = _evaluate(coco_keypoints, "keypoints", predictions, image_ids)
    assert math.isnan(result["AP"]) and result["stats"][0] == -1.0


def test_predictions_are_converted_to_coco_results(coco_boxes, coco_keypoints):
    image_id = coco_boxes.getImgIds()[0]
    evaluator = CocoEvaluator(coco_boxes, "bbox")
    box = {
        "boxes": torch.tensor([[10.0, 20.0, 40.0, 60.0]]),
        "scores": torch.tensor([0.5]),
        "labels": torch.tensor([3]),
    }
    evaluator.update([box], [image_id])
    assert evaluator.results == [
        {"image_id": image_id, "category_id": 3, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.5}
    ]
    evaluator = CocoEvaluator(coco_keypoints, "keypoints")
    keypoints = torch.arange(51, dtype=torch.float32).reshape(1, 17, 3)
    evaluator.update([{**box, "keypoints": keypoints}], [image_id])
    (result,) = evaluator.results
    assert result["category_id"] == 1 and result["keypoints"] == list(range(51))
    assert result["score"] == 0.5 and "bbox" not in result


def test_coco_evaluator_rejects_bad_inputs(coco_boxes, coco_keypoints):
    with pytest.raises(ValueError, match=r"iou_type must be one of \('bbox', 'keypoints'\)"):
        CocoEvaluator(coco_boxes, "segm")
    with pytest.raises(ValueError, match="iou_type must be one of"):
        ground_truth_predictions(coco_boxes, [], "box")
    with pytest.raises(ValueError, match="person_keypoints"):
        CocoEvaluator(coco_boxes, "keypoints")
    image_ids = coco_boxes.getImgIds()[:2]
    predictions = ground_truth_predictions(coco_boxes, image_ids)
    evaluator = CocoEvaluator(coco_boxes)
    with pytest.raises(ValueError, match="equal length"):
        evaluator.update(predictions, image_ids[:1])
    with pytest.raises(ValueError, match="not in coco_gt"):
        evaluator.update(predictions[:1], [-1])
    with pytest.raises(ValueError, match="each image once"):
        evaluator.update(predictions[:1] * 2, [image_ids[0]] * 2)
    evaluator.update(predictions[:1], image_ids[:1])
    with pytest.raises(ValueError, match="each image once"):
        evaluator.update(predictions[:1], image_ids[:1])
    with pytest.raises(ValueError, match="unknown: \\[0\\]"):
        evaluator.update(
            [{**predictions[1], "labels": torch.zeros_like(predictions[1]["labels"])}],
            image_ids[1:],
        )
    with pytest.raises(ValueError, match="boxes \\(N, 4\\)"):
        evaluator.update(
            [{**predictions[1], "boxes": predictions[1]["boxes"][:, :3]}], image_ids[1:]
        )
    with pytest.raises(ValueError, match="no 'keypoints'"):
        CocoEvaluator(coco_keypoints, "keypoints").update(predictions[1:], image_ids[1:])
    bad = {"scores": torch.ones(2), "keypoints": torch.zeros(2, 17, 2)}
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        CocoEvaluator(coco_keypoints, "keypoints").update([bad], image_ids[:1])

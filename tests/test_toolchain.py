"""The installed stack works here: CompressAI's entropy coder and torchvision's detection ops."""

import pytest
import torch
import torchvision
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models.google import get_scale_table

import gwnlib  # noqa: F401  (quiets CompressAI's import-time deprecation notice)


def test_gaussian_conditional_round_trip_is_exact():
    coder = GaussianConditional(None)
    coder.update_scale_table(get_scale_table())
    coder.update()
    g = torch.Generator().manual_seed(0)
    scales = torch.rand(2, 3, 16, 16, generator=g) * 8 + 0.2
    means = torch.randn(2, 3, 16, 16, generator=g)
    y = means + scales * torch.randn(2, 3, 16, 16, generator=g)
    indexes = coder.build_indexes(scales)
    strings = coder.compress(y, indexes, means=means)
    assert len(strings) == 2 and all(isinstance(s, bytes) and s for s in strings)
    decoded = coder.decompress(strings, indexes, means=means)
    # What is coded is the integer residual round(y - mean); the decoder adds the mean back.
    assert torch.equal(decoded, torch.round(y - means) + means)


def test_entropy_bottleneck_round_trip_is_exact():
    bottleneck = EntropyBottleneck(4)
    bottleneck.update(force=True)
    x = torch.round(torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 3)
    strings = bottleneck.compress(x)
    assert torch.equal(bottleneck.decompress(strings, x.shape[-2:]), x)


def test_torchvision_nms():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert torchvision.ops.nms(boxes, scores, iou_threshold=0.5).tolist() == [0, 2]


@pytest.mark.slow
def test_keypoint_rcnn_forward_without_weights():
    model = torchvision.models.detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=128, max_size=128
    ).eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 120, 160)])
    assert set(out) >= {"boxes", "scores", "keypoints"}
    assert out["keypoints"].shape[1:] == (17, 3)

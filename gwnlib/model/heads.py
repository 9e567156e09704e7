"""Task heads: map a decoder's features to a task's prediction (paper D.1, D.4).

The synthetic source's linear regressions use :func:`regression_head`; coloured MNIST's
classifiers :func:`classifier_head`. Frozen torchvision task models plug in the same way.
"""

from __future__ import annotations

from torch import nn

from gwnlib.model.layers import ResidualBlock, SameConv2d


def regression_head(in_channels: int, out_channels: int = 1) -> nn.Module:
    """One residual block, then a 5x5 conv to ``out_channels`` (the authors' synthetic head)."""
    return nn.Sequential(ResidualBlock(in_channels), SameConv2d(in_channels, out_channels, 5))


def classifier_head(
    in_features: int = 3 * 32 * 32, classes: int = 10, hidden: int | None = None
) -> nn.Module:
    """Flatten, linear ``in_features`` -> ``hidden`` (default ``in_features``), sigmoid, linear ->
    ``classes`` logits (the authors' coloured-MNIST head, with their hidden width by default)."""
    hidden = in_features if hidden is None else hidden
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.Sigmoid(),
        nn.Linear(hidden, classes),
    )

"""The paper's model: the learnable Gray-Wyner network and its baselines (paper Sec. 3.3, 4.1).

One idea per module, bottom up:

- :mod:`~gwnlib.model.layers`: convolutions, residual blocks, the analysis and synthesis
  transforms (Fig. 6, D.1, D.3);
- :mod:`~gwnlib.model.ops`: quantisation (Eq. 13), the merge (Eq. 14), the alignment term
  (Eq. 15), the transmit and receive rates (Sec. 2.1);
- :mod:`~gwnlib.model.tables`: the integer CDF tables of the entropy coder;
- :mod:`~gwnlib.model.entropy`: the autoregressive (conditional) Gaussian entropy models, their
  likelihoods (Eq. 11) and their raster-scan coding to bytes;
- :mod:`~gwnlib.model.heads`: task heads;
- :mod:`~gwnlib.model.streams`: a codec's byte streams (header, checksums, partial decoding);
- :mod:`~gwnlib.model.codecs`: the five codecs (Fig. 2 and 8) and :func:`build`;
- :mod:`~gwnlib.model.lattice`: the K-task codecs (not in the paper; chapter "Beyond two tasks")
  and :func:`~gwnlib.model.lattice.build_lattice`;
- :mod:`~gwnlib.model.loss`: the Lagrangian of Eq. 12 with the term of Eq. 15.

Chapter "Anatomy of a learnable Gray-Wyner network" builds the Shared codec from these parts.
"""

from gwnlib.model.codecs import CODECS, THREE_CHANNEL, GrayWynerCodec, build
from gwnlib.model.entropy import LatentEntropyModel, bits
from gwnlib.model.heads import classifier_head, regression_head
from gwnlib.model.layers import analysis_transform, synthesis_transform
from gwnlib.model.loss import GrayWynerLoss, rmse
from gwnlib.model.ops import (
    alignment_loss,
    merge_common,
    quantize,
    receive_rate,
    transmit_rate,
)

__all__ = [
    "CODECS",
    "THREE_CHANNEL",
    "GrayWynerCodec",
    "GrayWynerLoss",
    "LatentEntropyModel",
    "alignment_loss",
    "analysis_transform",
    "bits",
    "build",
    "classifier_head",
    "merge_common",
    "quantize",
    "receive_rate",
    "regression_head",
    "rmse",
    "synthesis_transform",
    "transmit_rate",
]

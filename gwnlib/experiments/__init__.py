"""What one training run is and the objects it needs (paper Table 1, appendix D).

:mod:`~gwnlib.experiments.config`: the :class:`RunConfig` record, the presets of every dataset
and the run key; :mod:`~gwnlib.experiments.base`: the :class:`Experiment` contract and its
registry; one module per kind of data: :mod:`~gwnlib.experiments.synthetic`,
:mod:`~gwnlib.experiments.colored_mnist`, :mod:`~gwnlib.experiments.images` (Cityscapes and
COCO) and :mod:`~gwnlib.experiments.triple_mnist` (three tasks, chapter "Beyond two tasks") and
:mod:`~gwnlib.experiments.two_views` (two physical sources, chapter "Two sources").
Chapter "Training and sweeps" explains the presets.
"""

from gwnlib.experiments.base import EXPERIMENTS, Experiment  # noqa: I001 (config first)
from gwnlib.experiments.colored_mnist import ColoredMnistExperiment
from gwnlib.experiments.config import (
    DATASETS,
    MODEL_REVISION,
    TASK_WEIGHTS,
    TRAINING_PRESETS,
    VISION,
    RunConfig,
    check_split,
    derive_seed,
    from_dict,
    resolve,
    settings_hash,
)
from gwnlib.experiments.images import VisionExperiment
from gwnlib.experiments.synthetic import SyntheticExperiment
from gwnlib.experiments.triple_mnist import TripleMnistExperiment
from gwnlib.experiments.two_views import TwoViewsExperiment

__all__ = [
    "DATASETS",
    "EXPERIMENTS",
    "MODEL_REVISION",
    "TASK_WEIGHTS",
    "TRAINING_PRESETS",
    "VISION",
    "ColoredMnistExperiment",
    "Experiment",
    "RunConfig",
    "SyntheticExperiment",
    "TripleMnistExperiment",
    "TwoViewsExperiment",
    "VisionExperiment",
    "check_split",
    "derive_seed",
    "from_dict",
    "resolve",
    "settings_hash",
]

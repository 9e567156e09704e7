"""What one training run is: a dataset, a codec, a loss, and the preset table (paper Table 1).

A run is described by a :class:`RunConfig`, a flat, frozen record of everything that decides its
numbers: the dataset and its options, the codec and its width, beta and eta (Eq. 12), the seed,
and the schedule (batch size, learning rate, patience, epochs). :func:`resolve` builds one from a
dataset's preset in :data:`TRAINING_PRESETS` plus overrides, and :attr:`RunConfig.key`, a hash of
it, names the run's directory, so that the same run is never trained twice. How a run is
executed (device, mixed precision, ``torch.compile``) is not part of the config: it changes
speed, not what is trained.

:class:`Experiment` turns a config into the objects the training loop needs: the codec with its
task heads, the loss with its task distortions, and seeded batches for the train, validation and
test splits (:mod:`gwnlib.experiments.base`). Chapter "Training and sweeps" explains the
presets; the synthetic study and coloured MNIST use them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
from dataclasses import dataclass

import numpy as np

from gwnlib.model.codecs import DISTRIBUTED, WIRINGS
from gwnlib.model.lattice import LATTICES
from gwnlib.runtime import check_int, check_preset

#: Datasets that :func:`resolve` knows (the vision tasks of Sec. 4.3:
#: :mod:`gwnlib.experiments.images`).
DATASETS = ("synthetic", "colored_mnist", "cityscapes", "coco", "triple_mnist", "two_views")
#: Datasets with three tasks, trained with the K-task codecs of :mod:`gwnlib.model.lattice`
#: (chapter "Beyond two tasks"; not in the paper).
MULTITASK = ("triple_mnist",)
#: Datasets whose labels follow a ``law``: its module's ``LAWS`` name the accepted ones.
LAW_MODULES = {"triple_mnist": "gwnlib.data.triple_laws", "two_views": "gwnlib.data.view_laws"}


#: The task-quality columns each dataset's runs report (Tables 2-8), in task order.
QUALITY_COLUMNS = {
    "synthetic": ("d1", "d2"),
    "colored_mnist": ("acc1", "acc2"),
    "cityscapes": ("miou", "rmse"),
    "coco": ("box_map", "keypoint_map"),
    "triple_mnist": ("acc1", "acc2", "acc3"),
    "two_views": ("acc1", "acc2"),
}
#: The vision datasets: frozen task models on decoded images (Sec. 4.3, D.5).
VISION = ("cityscapes", "coco")


#: Table 1 and D.5 for both vision datasets: E = 192 (COCO Shared: 288, set by its sweep),
#: batch 4, a reconstruction loss of weight 1, frozen task models with their public weights.
_VISION_COMMON = {
    "transform": "conv",
    "latent_channels": 192,
    "beta": 1.0,
    "lr": 1e-4,
    "clip": 1.0,
    "gamma": 1.0,
    "reconstruction": 1.0,
    "task_weights": "default",
    "batch_size": 4,
}


#: Three-task coloured MNIST's settings (chapter "Beyond two tasks"; see _COMMON).
_THREE_TASKS = {
    "transform": "conv",
    "latent_channels": 12,
    "beta": 1.0,
    "law": "shared",
    "lr": 3e-4,
    "clip": 1.0,
    "gamma": 1.0,
    "accumulate": 1,
    "batch_size": 32,
}


#: Settings shared by every preset of a dataset: the paper's Table 1 and appendix D.
_COMMON = {
    "synthetic": {
        "transform": "shuffle",  # pixel-(un)shuffle transforms (D.3)
        "beta": 1.0,
        "lr": 1e-4,
        "clip": 1.0,
        "gamma": 1.0,
        "accumulate": 1,
    },
    "colored_mnist": {
        "transform": "conv",  # strided convolutions (D.1)
        "latent_channels": 6,
        "beta": 0.1,  # D.4: beta = 1/10 lets the common channel carry information
        "pmf": "dependent",
        "lr": 1e-4,
        "clip": 1.0,
        "gamma": 1.0,
        "accumulate": 1,
        "batch_size": 100,
    },
    # Not in the paper: three-task coloured MNIST (digit, stroke colour, background colour) for
    # chapter "Beyond two tasks". beta = 1 prices the transmit rate (the generalised beta lies in
    # [1, 3]); E = 12 divides among 1, 2, 3 or 4 streams per decoder.
    "triple_mnist": _THREE_TASKS,
    # Not in the paper: two-view coloured MNIST for chapter "Two sources" (each task reads the
    # colour of its own view), with the three-task chapter's narrow transforms, E and rates.
    "two_views": {**_THREE_TASKS, "law": "same"},
    # Table 1: Cityscapes accumulates 3 batches (the rest is _VISION_COMMON).
    "cityscapes": {**_VISION_COMMON, "accumulate": 3},
    "coco": {**_VISION_COMMON, "accumulate": 1},
}


#: The presets of the datasets whose labels follow a law (three tasks, two views).
_LAW_PRESETS = {
    "paper": dict(patience=25, max_epochs=200, train_size=None, val_size=10_000,
                  test_size=None, real_bits_samples=1000),
    "short": dict(patience=1, max_epochs=1, train_size=30_000, val_size=1000,
                  test_size=2000, real_bits_samples=100, eta_warmup=200, init_eta=1.0),
    "smoke": dict(patience=1, max_epochs=1, train_size=96, val_size=64,
                  test_size=64, real_bits_samples=4),
}  # fmt: skip


#: The preset table: one row per (dataset, preset). ``paper`` is the paper's Table 1 with the
#: authors' per-dataset patience and epochs; ``short`` is the laptop preset of the synthetic
#: source and coloured MNIST (a whole sweep in about 2 hours on a 2-core CPU) and shows the
#: vision datasets' trends in a few hours on one GPU; ``smoke`` checks that the code runs, in
#: seconds per point on a 2-core CPU, and is never a reproduction. Steps are optimiser steps;
#: ``None`` sizes mean "the whole split".
TRAINING_PRESETS: dict[str, dict[str, dict]] = {
    "synthetic": {
        "paper": dict(side=64, latent_channels=512, batch_size=100, patience=10,
                      max_epochs=100, train_steps=1000, val_steps=100, test_steps=100,
                      real_bits_samples=100),
        # ``short`` is the laptop preset: the 55-point grid in about 2 hours on a 2-core CPU
        # (``--executor pool --workers 2``). A 2 x 16 x 16 source (its own dependency map, the
        # same pair law and unit-determinant transforms) coded into E = 256 channels on a 1 x 1
        # latent (the paper: 512 on 4 x 4); 3 epochs of 200 steps of 64 at lr 3e-4; every
        # eta > 0.001 warm-started from the finished eta = 0.001 run of its codec and beta.
        "short": dict(side=16, latent_channels=256, batch_size=64, lr=3e-4, patience=2,
                      max_epochs=3, train_steps=200, val_steps=10, test_steps=20,
                      real_bits_samples=20, init_eta=0.001),
        "smoke": dict(side=32, latent_channels=32, batch_size=8, patience=1,
                      max_epochs=2, train_steps=6, val_steps=2, test_steps=2,
                      real_bits_samples=2),
    },
    "colored_mnist": {
        "paper": dict(patience=25, max_epochs=200, train_size=None, val_size=10_000,
                      test_size=None, real_bits_samples=1000),
        # ``short`` fits a 2-core CPU (23 points in about 2 hours, two single-thread workers):
        # one epoch of 20k images at batch 32 and lr 3e-4, the rate weight warmed up over 200
        # steps, and every eta > 1 warm-started from the finished eta = 1 run of its codec and
        # law (see RunConfig).
        "short": dict(patience=1, max_epochs=1, train_size=20_000, val_size=1000,
                      test_size=2000, real_bits_samples=100, batch_size=32, lr=3e-4,
                      eta_warmup=200, init_eta=1.0),
        "smoke": dict(patience=1, max_epochs=1, train_size=96, val_size=64,
                      test_size=64, real_bits_samples=4, batch_size=32),
    },
    # Three tasks and two views (not in the paper): ``paper`` is coloured MNIST's schedule;
    # ``short`` one epoch of 30k images (a sweep in one to two hours on a 2-core CPU), every
    # eta > 1 warm-started from the eta = 1 run of its codec, law and beta.
    "triple_mnist": _LAW_PRESETS,
    "two_views": _LAW_PRESETS,
    # Vision: ``paper`` is Table 1 on the full datasets; ``short`` a subset and a few epochs on
    # one GPU; ``smoke`` random-weight task models on a few small images (CI, CPU). Sizes are
    # images; ``image_size`` is the shorter side after resizing (None: native resolution).
    "cityscapes": {
        "paper": dict(patience=50, max_epochs=1000, train_size=None, val_size=100,
                      test_size=None, image_size=None, real_bits_samples=20),
        "short": dict(patience=5, max_epochs=20, train_size=None, val_size=100,
                      test_size=None, image_size=512, real_bits_samples=20),
        "smoke": dict(patience=1, max_epochs=1, train_size=4, val_size=2, test_size=2,
                      image_size=None, latent_channels=16, batch_size=2, accumulate=1,
                      task_weights="none", real_bits_samples=2),
    },
    "coco": {
        "paper": dict(patience=5, max_epochs=100, train_size=None, val_size=500,
                      test_size=None, image_size=None, real_bits_samples=20),
        "short": dict(patience=2, max_epochs=5, train_size=20_000, val_size=500,
                      test_size=None, image_size=None, real_bits_samples=20),
        "smoke": dict(patience=1, max_epochs=1, train_size=4, val_size=2, test_size=4,
                      image_size=64, latent_channels=16, batch_size=2,
                      task_weights="none", real_bits_samples=2),
    },
}  # fmt: skip


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's numbers. Build it with :func:`resolve`.

    Fields that do not apply to the dataset are ``None`` (``side`` and the ``*_steps`` for the
    synthetic stream; ``pmf`` and the ``*_size`` split sizes for coloured MNIST).
    ``eta_warmup``: optimiser steps over which the rate weight of the training objective ramps
    linearly from 0 to ``eta`` (None: the paper's constant eta). Not in the paper; the CPU
    ``short`` preset of coloured MNIST uses it, because its few epochs collapse the rate before the
    heads learn otherwise. Validation and early stopping always use the full eta.
    ``init_eta``: start from the best weights of the finished run that differs only in having
    ``eta = init_eta`` (a warm start along the rate-distortion curve, common practice for
    multi-rate learned codecs; None: from the seeded initialisation). Not in the paper; the CPU
    ``short`` presets use it, because their few epochs cannot teach a codec from scratch at every
    point (coloured MNIST: from eta = 1; synthetic: from eta = 0.001, the curve's highest-rate
    point). A config with ``init_eta == eta`` is stored with None.
    """

    dataset: str
    preset: str
    codec: str
    beta: float
    eta: float
    seed: int
    latent_channels: int
    transform: str
    batch_size: int
    accumulate: int
    lr: float
    clip: float
    gamma: float
    patience: int
    max_epochs: int
    real_bits_samples: int
    side: int | None = None
    train_steps: int | None = None
    val_steps: int | None = None
    test_steps: int | None = None
    pmf: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    reconstruction: float | None = None
    task_weights: str | None = None
    image_size: int | None = None
    eta_warmup: int | None = None
    init_eta: float | None = None
    law: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def key(self) -> str:
        """A 12-hex-digit hash of the config and of :data:`MODEL_REVISION` (:func:`settings_hash`):
        the name of its run directory. Fields added after the first runs (the vision fields,
        ``eta_warmup``) enter the hash only when set, so earlier runs keep their keys; a new model
        revision changes every key, so that no run of an older model is taken as finished."""
        values = {
            name: value
            for name, value in self.to_dict().items()
            if not (name in _LATER_FIELDS and value is None)
        }
        return settings_hash(values)

    def label(self) -> str:
        """A short human-readable name, e.g. ``shared beta=1 eta=0.01 seed=0``."""
        pmf = f" {self.pmf}" if self.pmf else f" {self.law}" if self.law else ""
        return f"{self.codec}{pmf} beta={self.beta:g} eta={self.eta:g} seed={self.seed}"


#: The revision of the models a config builds, part of every run's key. Bump it when a change
#: alters what a config trains (layers, entropy models, losses), so that runs of the older models
#: (in run folders and committed results) are not taken as this code's. Revision 2: the authors'
#: ELU in the conditional entropy models and 5x5 channel-mapping convolution of the synthetic
#: Separated and Combined encoders (revision 1: LeakyReLU, 1x1).
MODEL_REVISION = 2


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


_VISION_FIELDS = ("reconstruction", "task_weights", "image_size")


#: Fields added after the first runs were keyed: they enter :attr:`RunConfig.key` only when set.
_LATER_FIELDS = _VISION_FIELDS + ("eta_warmup", "init_eta", "law")


#: Accepted ``task_weights``: the public/pretrained task weights, or random ones (smoke only).
TASK_WEIGHTS = ("default", "none")


_POSITIVE_INT = ("latent_channels", "batch_size", "accumulate", "patience", "max_epochs")


_OPTIONAL_POSITIVE_INT = ("side", "train_steps", "val_steps", "test_steps", "train_size",
                          "val_size", "test_size", "image_size", "eta_warmup")  # fmt: skip


def settings_hash(values: dict) -> str:
    """12 hex digits of the SHA-256 of ``values`` as canonical JSON, with :data:`MODEL_REVISION`
    from revision 2 on: names run directories (:meth:`RunConfig.key`) and fused groups
    (:func:`gwnlib.training.fused.fit_fused`)."""
    if MODEL_REVISION > 1:
        values = {**values, "model_revision": MODEL_REVISION}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def resolve(dataset: str, preset: str = "smoke", **overrides) -> RunConfig:
    """The config of ``dataset`` under ``preset``, with ``overrides`` (e.g. codec, beta, eta).

    ``resolve("synthetic", "paper", codec="shared", beta=1.5, eta=0.01)``. Unknown datasets,
    presets and fields, and out-of-range values, raise ``ValueError`` naming what is accepted.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
    check_preset(preset)
    codec = "lattice" if dataset in MULTITASK else "shared"
    settings = {"codec": codec, "eta": 0.01, "seed": 0, **_COMMON[dataset]}
    settings.update(TRAINING_PRESETS[dataset][preset])
    unknown = sorted(set(overrides) - set(_FIELDS) | set(overrides) & {"dataset", "preset"})
    if unknown:
        accepted = ", ".join(sorted(set(_FIELDS) - {"dataset", "preset"}))
        raise ValueError(f"unknown run setting(s) {', '.join(unknown)}; accepted: {accepted}")
    settings.update(overrides)
    return _checked(RunConfig(dataset=dataset, preset=preset, **settings))


def from_dict(values: dict) -> RunConfig:
    """The :class:`RunConfig` of a ``config.json`` (as written by :meth:`RunConfig.to_dict`)."""
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"not a run config: unknown field(s) {', '.join(unknown)}")
    return _checked(RunConfig(**values))


def _finite(value) -> bool:
    """A real number, not a bool, not inf or NaN."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _checked(config: RunConfig) -> RunConfig:
    from gwnlib.data.colour_laws import PMFS

    if config.dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {config.dataset!r}")
    check_preset(config.preset)
    codecs = LATTICES if config.dataset in MULTITASK else tuple(WIRINGS)
    if config.codec not in codecs:
        raise ValueError(f"codec must be one of {', '.join(codecs)}; got {config.codec!r}")
    for name in ("beta", "eta", "lr", "clip"):
        value = getattr(config, name)
        if not _finite(value) or not value > 0:
            raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    init = config.init_eta
    if init is not None and (not _finite(init) or not init > 0):
        raise ValueError(f"init_eta must be None or a finite number > 0; got {init!r}")
    if not _finite(config.gamma) or not config.gamma >= 0:
        raise ValueError(f"gamma must be a finite number >= 0; got {config.gamma!r}")
    for name in _POSITIVE_INT + ("seed", "real_bits_samples") + _OPTIONAL_POSITIVE_INT:
        value = getattr(config, name)
        if value is None and name in _OPTIONAL_POSITIVE_INT:
            continue
        low = 0 if name in ("seed", "real_bits_samples") else 1
        check_int(name, value, low)
    if config.transform not in ("conv", "shuffle"):
        raise ValueError(f"transform must be 'conv' or 'shuffle'; got {config.transform!r}")
    if config.dataset == "synthetic":
        for name in ("side", "train_steps", "val_steps", "test_steps"):
            if getattr(config, name) is None:
                raise ValueError(f"{name} must be set for the synthetic source")
        if config.side % 16:
            raise ValueError(f"side must be a multiple of 16 (four 2x stages); got {config.side}")
    if config.dataset == "colored_mnist" and config.pmf not in PMFS:
        raise ValueError(f"pmf must be one of {', '.join(PMFS)}; got {config.pmf!r}")
    if config.codec in DISTRIBUTED and config.dataset != "two_views":
        raise ValueError(
            f"codec {config.codec!r} needs an input of two views, which only dataset two_views "
            f"has; got dataset {config.dataset!r}"
        )
    if config.dataset in LAW_MODULES:
        laws = importlib.import_module(LAW_MODULES[config.dataset]).LAWS
        if config.law not in laws:
            raise ValueError(f"law must be one of {', '.join(laws)}; got {config.law!r}")
    elif config.law is not None:
        raise ValueError(f"law only applies to {', '.join(LAW_MODULES)}; dataset "
                         f"{config.dataset!r} has no such setting")  # fmt: skip
    if config.dataset in MULTITASK:
        from gwnlib.theory.multiterminal import check_beta

        check_beta(config.beta, 3)
    if config.dataset not in VISION:
        given = [name for name in _VISION_FIELDS if getattr(config, name) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to the vision datasets ({', '.join(VISION)}); "
                f"dataset {config.dataset!r} has no such setting"
            )
    else:
        if config.task_weights not in TASK_WEIGHTS:
            accepted = ", ".join(TASK_WEIGHTS)
            raise ValueError(f"task_weights must be one of {accepted}; got {config.task_weights!r}")
        weight = config.reconstruction
        if not _finite(weight) or not weight >= 0:
            raise ValueError(f"reconstruction must be a finite number >= 0; got {weight!r}")
    # Normalise numeric types so that equal configs hash equally (1 and 1.0, numpy ints).
    floats = {name: float(getattr(config, name)) for name in ("beta", "eta", "lr", "clip", "gamma")}
    if config.reconstruction is not None:
        floats["reconstruction"] = float(config.reconstruction)
    if init is not None:  # a run that would start from itself starts from scratch
        floats["init_eta"] = None if float(init) == floats["eta"] else float(init)
    ints = {
        name: int(getattr(config, name))
        for name in _POSITIVE_INT + _OPTIONAL_POSITIVE_INT + ("seed", "real_bits_samples")
        if getattr(config, name) is not None
    }
    return dataclasses.replace(config, **floats, **ints)


def derive_seed(seed: int, *stream) -> int:
    """A seed for one named stream of a run (``derive_seed(0, "train", 3)``), independent of the
    others: the run's batches are a pure function of (seed, split, epoch), so a resumed run sees
    exactly the batches it would have seen."""
    words = [int(seed)] + [
        int.from_bytes(hashlib.sha256(str(part).encode()).digest()[:4], "big") for part in stream
    ]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def check_split(split: str) -> None:
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be one of train, val, test; got {split!r}")

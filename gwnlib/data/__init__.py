"""The book's datasets: the paper's synthetic Gray-Wyner source and coloured MNIST (chapter "Two
controlled sources: the synthetic Gray-Wyner source and coloured MNIST"; the laws that colour the
digits are :mod:`gwnlib.data.colour_laws`); three-task coloured MNIST, with a background colour as
the third task (chapter "Beyond two tasks": :mod:`gwnlib.data.triple_mnist`, its laws
:mod:`gwnlib.data.triple_laws`); Cityscapes and COCO 2017 for the vision tasks
(:mod:`gwnlib.data.cityscapes`, :mod:`gwnlib.data.coco`, their seeded augmentation
:mod:`gwnlib.data.augment`, and the fake Cityscapes tree of
:mod:`gwnlib.data.synthetic_cityscapes`, imported on demand: they need torchvision's dataset
classes).

Loaders read from :func:`gwnlib.data_dir`; computed artefacts go to :func:`gwnlib.cache_dir`.
"""

from gwnlib.data.colored_mnist import ColoredMNIST
from gwnlib.data.colour_laws import PMFS, pmf_table, pmf_theory
from gwnlib.data.synthetic import SyntheticGrayWyner, dependency_map, pair_pmf
from gwnlib.data.triple_laws import law_pmf, law_theory
from gwnlib.data.triple_mnist import TripleColoredMNIST

__all__ = [
    "PMFS",
    "ColoredMNIST",
    "SyntheticGrayWyner",
    "TripleColoredMNIST",
    "dependency_map",
    "law_pmf",
    "law_theory",
    "pair_pmf",
    "pmf_table",
    "pmf_theory",
]

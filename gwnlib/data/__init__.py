"""Datasets of the book: the paper's synthetic Gray-Wyner source (more datasets follow)."""

from gwnlib.data.synthetic import pair_pmf

__all__ = ["pair_pmf"]

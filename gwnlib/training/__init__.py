"""Training: one run (:mod:`~gwnlib.training.train`), many runs at once on one device
(:mod:`~gwnlib.training.fused`), grids of runs on a laptop or a cluster
(:mod:`~gwnlib.training.sweep`) and what a step costs (:mod:`~gwnlib.training.bench`).
Chapter "Training and sweeps" uses all four."""

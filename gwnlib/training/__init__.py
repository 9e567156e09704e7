"""Training: one run (:mod:`~gwnlib.training.train`), many runs at once on one device
(:mod:`~gwnlib.training.fused`), grids of runs on a laptop or a cluster
(:mod:`~gwnlib.training.sweep`) and what a step costs (:mod:`~gwnlib.training.bench`, read by
:mod:`~gwnlib.training.bench_report`). Both a run and a fused group train through the one epoch
loop of :mod:`~gwnlib.training.loop`. Chapter "Training and sweeps" uses them all."""

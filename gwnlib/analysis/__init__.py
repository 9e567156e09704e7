"""What the book does with trained codecs and committed results: the paper's own numbers
(:mod:`~gwnlib.analysis.paper`), BD-rates and estimators (:mod:`~gwnlib.analysis.metrics`), the
results helpers the chapters share (:mod:`~gwnlib.analysis.results`), channel probes
(:mod:`~gwnlib.analysis.probes`), figures, diagrams and widgets, and the book and its
assignments themselves (:mod:`~gwnlib.analysis.book`, :mod:`~gwnlib.analysis.assign`). Chapters
"The synthetic transmit-receive study", "Coloured MNIST: edge cases of common information" and
"Vision tasks: Cityscapes and COCO 2017" use most of it."""

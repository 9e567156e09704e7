"""Vision tasks (paper Sec. 4.3): the frozen task models and their weights
(:mod:`~gwnlib.vision.tasks`), their metrics (:mod:`~gwnlib.vision.metrics`: mIoU, disparity RMSE,
COCO mAP) and the codec and loss that feed them decoded images (:mod:`~gwnlib.vision.codec`).
The Cityscapes and COCO experiments built from them are :mod:`gwnlib.experiments.images`;
chapter "Vision tasks: Cityscapes and COCO 2017" runs them.
"""

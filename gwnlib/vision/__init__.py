"""Vision tasks (paper Sec. 4.3): the frozen task models, one class per kind
(:mod:`~gwnlib.vision.task_model`, :mod:`~gwnlib.vision.dense`, :mod:`~gwnlib.vision.detection`,
with the DeepLabV3+ network in :mod:`~gwnlib.vision.deeplab`), their registry
(:mod:`~gwnlib.vision.tasks`), weight files (:mod:`~gwnlib.vision.weights`), the learned samplers
of D.5 (:mod:`~gwnlib.vision.samplers`), rate-free pretraining (:mod:`~gwnlib.vision.pretrain`),
their metrics (:mod:`~gwnlib.vision.metrics`: mIoU, disparity RMSE, COCO mAP) and the codec and
loss that feed them decoded images (:mod:`~gwnlib.vision.codec`). The Cityscapes and COCO
experiments built from them are :mod:`gwnlib.experiments.images`; chapter "Vision tasks:
Cityscapes and COCO 2017" runs them.
"""

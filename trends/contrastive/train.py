"""`trends contrastive`: self-supervised pretraining — SimCLR or one of the methods after it — with a kNN monitor
every epoch, then the honest comparisons.

Reads top-down: the data and its views → the method (`method=simclr|moco|byol|simsiam|barlow_twins|vicreg|dino`,
trends.contrastive.methods: its model, its step on two augmented views of each image, what moves after it) → the
shared pretraining loop (trends.vision.pretraining: the epochs, the kNN monitor, the linear probe, the baselines,
the plots and the summary). The whole dataset sits on the training device as uint8; the views are made there
(trends.contrastive.augment).

Under torchrun `train.batch_size` stays the global batch: each rank takes its share, and each method gathers or
synchronises what its loss needs over the global batch (the table in trends.contrastive.methods).
"""
from __future__ import annotations

from omegaconf import DictConfig

from trends.contrastive.methods import build_method
from trends.records.run import Run
from trends.vision.pretraining import Pretraining


def main(cfg: DictConfig, run: Run) -> None:
    pre = Pretraining(cfg, run)  # the loop on its device, the seed, the image sets there
    method = build_method(cfg, pre)
    run.update(method=cfg.method.name, view_size=method.aug.size)
    pre.train(method)

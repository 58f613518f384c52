"""The three image sets self-supervised pretraining needs (SimCLR, the pretext tasks): images to pretrain on
(labels unused), a labelled bank for kNN and the linear probe, and labelled test queries.

CIFAR-10, ImageFolder and synthetic come from trends.vision.data (pretrain = bank = the train split). STL-10 is
the set made for this: 100k unlabelled 96×96 images to pretrain on, 5k labelled train images, 8k test images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from trends.core.data import data_root
from trends.vision.data import ImageSet, load_image_sets, torchvision_dataset


@dataclass
class PretrainData:
    pretrain: ImageSet  # labels not used for training
    bank: ImageSet
    test: ImageSet

    def to(self, device) -> "PretrainData":
        bank = self.bank.to(device)
        pretrain = bank if self.pretrain is self.bank else self.pretrain.to(device)
        return PretrainData(pretrain, bank, self.test.to(device))


def load_data(cfg: DictConfig) -> PretrainData:
    """`data.name` in cifar10 | imagefolder | synthetic | stl10; `data.subset` (optional): a fixed random n of each."""
    if cfg.name == "stl10":
        data = _stl10(data_root(cfg.root), cfg.unlabeled)
    else:
        train, test = load_image_sets(cfg)
        data = PretrainData(train, train, test)
    if cfg.get("subset"):
        bank = _sample(data.bank, cfg.subset)
        pretrain = bank if data.pretrain is data.bank else _sample(data.pretrain, cfg.subset)
        data = PretrainData(pretrain, bank, _sample(data.test, cfg.subset))
    return data


def _sample(images: ImageSet, n: int) -> ImageSet:
    """The same n images every run (ImageFolder lists class by class, so the first n would be one class)."""
    keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]
    return images.subset(keep.sort().values)


def _stl10(root: Path, unlabeled: bool) -> PretrainData:
    from torchvision.datasets import STL10

    def split(name: str) -> ImageSet:
        ds = torchvision_dataset(STL10, root, "stl10_binary", "stl10_binary.tar.gz",
                                 "data=cifar10 / data=imagefolder data.path=DIR", split=name)
        return ImageSet(torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long(), list(ds.classes))

    bank, test = split("train"), split("test")
    pretrain = split("train+unlabeled") if unlabeled else bank
    return PretrainData(pretrain, bank, test)

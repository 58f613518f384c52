"""What the encoder learned, measured without letting the measurement train it.

- kNN on frozen features (trends.vision.knn): every epoch, and on the random-initialised encoder as the baseline.
- Linear probe: features computed once with the encoder in eval mode and under no_grad, then a linear classifier
  trained on them. The encoder cannot change (no gradients reach it, BatchNorm statistics stay put); probing a
  network left in train mode updates its BN running statistics on the probe data and inflates the numbers.
- Supervised reference: the same encoder architecture trained with labels, the upper line self-supervision chases.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from trends.vision.augment import random_crop_flip
from trends.vision.data import ImageSet
from trends.vision.knn import extract_features


def linear_probe(encoder: nn.Module, prepare: Callable[[torch.Tensor], torch.Tensor], train: ImageSet,
                 test: ImageSet, cfg: DictConfig, batch_size: int, seed: int, autocast=None) -> float:
    """Test accuracy of a linear classifier on frozen features (cfg: epochs, lr, weight_decay, batch_size)."""
    kwargs = {} if autocast is None else {"autocast": autocast}
    train_x = extract_features(encoder, train.images, prepare, batch_size, **kwargs)
    test_x = extract_features(encoder, test.images, prepare, batch_size, **kwargs)
    return probe_features(train_x, train.labels, test_x, test.labels, len(train.classes), cfg, seed)


def probe_features(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   num_classes: int, cfg: DictConfig, seed: int) -> float:
    """Train a linear layer on standardised features (N, D) with AdamW + cosine; return test accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6  # standardising makes one lr fit every encoder
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    train_y, test_y = train_y.to(train_x.device), test_y.to(train_x.device)
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(train_x.shape[1], num_classes).to(train_x.device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_x) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps_per_epoch)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train_x), generator=generator).to(train_x.device)
        for idx in order.split(cfg.batch_size):
            loss = F.cross_entropy(head(train_x[idx]), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    with torch.no_grad():
        return (head(test_x).argmax(1) == test_y).float().mean().item()


def supervised_reference(encoder: nn.Module, prepare: Callable[[torch.Tensor], torch.Tensor], train: ImageSet,
                         test: ImageSet, cfg: DictConfig, seed: int, autocast) -> float:
    """Train `encoder` (fresh) + a linear head with labels: crop/flip, SGD + cosine; return test accuracy.

    cfg: epochs, batch_size, lr, weight_decay, padding. Images stay on their device; augmentation is batched.
    """
    device = train.images.device
    model = nn.Sequential(encoder, nn.Linear(encoder.dim, len(train.classes))).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                weight_decay=cfg.weight_decay)
    steps = cfg.epochs * (len(train) // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=max(1, steps), pct_start=0.15)
    generator = torch.Generator(device=device).manual_seed(seed)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train), generator=generator, device=device)
        for i in range(len(train) // cfg.batch_size):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = prepare(random_crop_flip(train.images[idx], cfg.padding, generator))
            with autocast():
                loss = F.cross_entropy(model(x).float(), train.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test), 1024):
            with autocast():
                logits = model(prepare(test.images[start:start + 1024]))
            correct += (logits.argmax(1) == test.labels[start:start + 1024]).sum().item()
    return correct / len(test)


"""What a self-supervised encoder learned (contrastive, pretext), measured without letting the measurement train it.

- kNN on frozen features (trends.vision.knn): every epoch, and on the random-initialised encoder as the baseline.
- Linear probe: features computed once with the encoder in eval mode and under no_grad, then a linear classifier
  trained on them. The encoder cannot change (no gradients reach it, BatchNorm statistics stay put); probing a
  network left in train mode updates its BN running statistics on the probe data and inflates the numbers.
- Supervised reference: the same encoder architecture trained with labels, the upper line self-supervision chases.

Both demos report them under the same names (`knn_acc`, `random_init_knn_acc`, `probe_acc`, `random_init_probe_acc`,
`supervised_acc`), so their numbers compare directly.
"""
from __future__ import annotations

import logging
import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from trends.core.distributed import broadcast_buffers, gather_rows
from trends.ranks import Dist
from trends.records import plots
from trends.vision.augment import random_crop_flip
from trends.vision.data import ImageSet
from trends.vision.encoders import build_encoder
from trends.vision.knn import extract_features, knn_accuracy
from trends.vision.pretrain_data import PretrainData

log = logging.getLogger("trends.vision")


def fresh_encoder(cfg: DictConfig, device) -> nn.Module:
    """The encoder as initialised by `seed`: the starting point of training, and the random-init baseline."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_encoder(cfg.model).to(device)


def knn_eval(encoder: nn.Module, data: PretrainData, prepare: Callable[[torch.Tensor], torch.Tensor],
             cfg: DictConfig, amp, dist: Dist) -> tuple[float, torch.Tensor]:
    """kNN accuracy of the encoder as it is now (bank: labelled train images, queries: test) and the test features
    (cfg: eval.knn_k, knn_temperature, batch_size). Every rank extracts its share of the features and all of them
    get the whole set."""
    broadcast_buffers(encoder)  # every rank extracts with rank 0's BatchNorm statistics

    def features(images: torch.Tensor) -> torch.Tensor:  # this rank's share, then all of them in order
        mine = images[dist.share(len(images))]
        return gather_rows(extract_features(encoder, mine, prepare, cfg.batch_size, amp))

    bank, queries = features(data.bank.images), features(data.test.images)
    acc = knn_accuracy(bank, data.bank.labels, queries, data.test.labels, len(data.bank.classes), cfg.knn_k,
                       cfg.knn_temperature)
    return acc, queries


def frozen_evaluation(cfg: DictConfig, encoder: nn.Module, data: PretrainData,
                      prepare: Callable[[torch.Tensor], torch.Tensor], amp, device, acc: float, random_init: float,
                      knn_history: list[dict]) -> tuple[dict, dict[str, float]]:
    """The end of a self-supervised run: the summary's evaluation metrics and the reference lines of the kNN plot.

    acc: the final encoder's kNN accuracy; random_init: the untrained encoder's; knn_history: the run's `knn` records
    (epoch 0 = random init). Runs the linear probe on the trained and on the random-init encoder, and the supervised
    reference, as `eval.probe.epochs` and `eval.supervised.epochs` ask."""
    e = cfg.eval
    trained = [r["knn_acc"] for r in knn_history[1:]]
    metrics = {"knn_acc": round(acc, 4), "random_init_knn_acc": round(random_init, 4),
               "knn_gain_points": round(100 * (acc - random_init), 2),
               "best_knn_acc": round(max(trained), 4) if trained else round(acc, 4)}
    references = {f"random init ({random_init:.3f})": random_init}
    if e.probe.epochs > 0:
        metrics["probe_acc"] = round(linear_probe(encoder, prepare, data.bank, data.test, e.probe, e.batch_size,
                                                  cfg.seed, amp), 4)
        metrics["random_init_probe_acc"] = round(linear_probe(fresh_encoder(cfg, device), prepare, data.bank,
                                                              data.test, e.probe, e.batch_size, cfg.seed, amp), 4)
        log.info("linear probe: %.4f (random-init encoder: %.4f)", metrics["probe_acc"],
                 metrics["random_init_probe_acc"])
        references[f"linear probe ({metrics['probe_acc']:.3f})"] = metrics["probe_acc"]
    if e.supervised.epochs > 0:
        reference = fresh_encoder(cfg, device)
        if cfg.train.channels_last:
            reference = reference.to(memory_format=torch.channels_last)
        metrics["supervised_acc"] = round(supervised_reference(reference, prepare, data.bank, data.test,
                                                               e.supervised, cfg.seed, amp), 4)
        log.info("supervised reference (same encoder, labels, %d epochs): %.4f", e.supervised.epochs,
                 metrics["supervised_acc"])
        references[f"supervised ({metrics['supervised_acc']:.3f})"] = metrics["supervised_acc"]
    return metrics, references


def knn_plot(path, knn_history: list[dict], references: dict[str, float], label: str, k: int):
    """kNN accuracy per epoch (epoch 0 = the random-init encoder) with the references' horizontal lines."""
    return plots.line_plot(path, {label: ([r["epoch"] for r in knn_history], [r["knn_acc"] for r in knn_history])},
                           xlabel="epoch", ylabel="kNN accuracy (test)", hlines=references,
                           title=f"kNN (k={k}) on frozen features; epoch 0 = random init")


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


def embedding_plot(path, test_features: torch.Tensor, test: ImageSet, points: int):
    """A fixed random `points` of the test features, L2-normalised (the PCA then shows the cosine geometry that
    NT-Xent and the kNN monitor work in) and projected to 2-D, coloured by class."""
    shown = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:points].to(test_features.device)
    return plots.scatter_pca(path, F.normalize(test_features[shown].float(), dim=1), test.labels[shown],
                             class_names=test.classes, title="test embeddings (PCA of the encoder's features)")

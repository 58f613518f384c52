"""Frozen-feature evaluation shared by the vision demos: features of a whole image set, and the weighted kNN
classifier of Wu et al. (2018) that self-supervised papers report (k = 200, temperature 0.1, cosine similarity)."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


@torch.no_grad()
def extract_features(encoder: nn.Module, images: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor],
                     batch_size: int = 1024, autocast=contextlib.nullcontext) -> torch.Tensor:
    """Encoder outputs for every image, in eval mode (BatchNorm uses its running statistics and is not updated).

    images: (N, 3, H, W) uint8; prepare: uint8 batch → model input (e.g. normalisation). Returns (N, D) float32
    on the images' device. The encoder's train/eval mode is restored afterwards.
    """
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = []
        for start in range(0, len(images), batch_size):
            with autocast():
                chunks.append(encoder(prepare(images[start:start + batch_size])).float())
        return torch.cat(chunks)
    finally:
        encoder.train(was_training)


@torch.no_grad()
def knn_predict(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, num_classes: int,
                k: int = 200, temperature: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """Weighted kNN: each of the k most cosine-similar bank items votes for its class with weight exp(sim / T).

    bank: (N, D), bank_labels: (N,) int64, queries: (M, D). Returns (M,) predicted labels.
    """
    bank = F.normalize(bank.float(), dim=1)
    k = min(k, len(bank))
    predictions = []
    for start in range(0, len(queries), chunk):
        q = F.normalize(queries[start:start + chunk].float(), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)  # (m, k)
        votes = torch.zeros(len(q), num_classes, device=q.device)
        votes.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_accuracy(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, query_labels: torch.Tensor,
                 num_classes: int, k: int = 200, temperature: float = 0.1) -> float:
    """Fraction of queries whose weighted-kNN prediction is their label."""
    predicted = knn_predict(bank, bank_labels, queries, num_classes, k, temperature)
    return (predicted == query_labels.to(predicted.device)).float().mean().item()

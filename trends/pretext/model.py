"""The network a pretext task trains: the shared encoder applied to every input of a question (a whole image, a
patch, a tile), then a small head that reads the question's features side by side and picks an answer."""
from __future__ import annotations

import torch
import torch.nn as nn


class PretextModel(nn.Module):
    """forward: (q·m, C, s, s) inputs, m per question → (q, classes) logits."""

    def __init__(self, encoder: nn.Module, inputs_per_question: int, classes: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.inputs_per_question = inputs_per_question
        width = encoder.dim * inputs_per_question
        self.head = (nn.Sequential(nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                   nn.Linear(hidden, classes)) if hidden else nn.Linear(width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        return self.head(features.reshape(-1, self.inputs_per_question * features.shape[1]))

"""SimCLR's projection head on an encoder of trends.vision.encoders."""
from __future__ import annotations

import torch
import torch.nn as nn


class ProjectionHead(nn.Module):
    """SimCLR's MLP g(·): Linear → BN → ReLU → Linear. The loss sees its output; evaluation uses the features
    before it, which transfer better (SimCLR, section 4.2)."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, dim_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class SimCLR(nn.Module):
    """encoder f + projection head g. forward: images (N, 3, H, W) → projections (N, out_dim)."""

    def __init__(self, encoder: nn.Module, hidden: int, out_dim: int):
        super().__init__()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.dim, hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


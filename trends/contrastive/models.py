"""The heads the self-supervised methods put on an encoder of trends.vision.encoders.

Every method's loss sees a head's output; evaluation (kNN, linear probe) uses the encoder's features before it,
which transfer better (SimCLR, section 4.2). Sizes per method: trends/conf/contrastive/method/.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(dims: list[int], last_bn: bool = False) -> nn.Sequential:
    """Linear → BN → ReLU between each pair of `dims`, a plain Linear at the end (with a BatchNorm without
    affine parameters after it when `last_bn`: SimSiam's projector). Linears followed by a BatchNorm have no bias."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        last = i == len(dims) - 2
        layers.append(nn.Linear(d_in, d_out, bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*layers)


class ProjectionHead(nn.Module):
    """SimCLR's MLP g(·): Linear → BN → ReLU → Linear."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int):
        super().__init__()
        self.net = mlp([dim_in, hidden, dim_out])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class SimCLRModel(nn.Module):
    """encoder f + projection head g. forward: images (N, 3, H, W) → projections (N, out_dim)."""

    def __init__(self, encoder: nn.Module, hidden: int, out_dim: int):
        super().__init__()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.dim, hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class DINOHead(nn.Module):
    """DINO's head: an MLP to a bottleneck, L2-normalised, then a weight-normalised linear layer onto K prototypes
    (its direction learned, its norm fixed at 1), whose outputs are the logits of a distribution over them."""

    def __init__(self, dim_in: int, hidden: int, bottleneck: int, prototypes: int):
        super().__init__()
        self.mlp = mlp([dim_in, hidden, hidden, bottleneck])
        self.prototypes = nn.Linear(bottleneck, prototypes, bias=False)
        nn.init.trunc_normal_(self.prototypes.weight, std=0.02)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(h), dim=1)
        return z @ F.normalize(self.prototypes.weight, dim=1).T

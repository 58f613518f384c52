"""Encoders (image → feature vector) shared by the self-supervised demos (contrastive, pretext).

- `SmallCNN`: a few conv-BN-ReLU stages with max-pooling, stride-2 stem; trains in minutes on a CPU.
- `resnet18_cifar`: torchvision's ResNet-18 with the CIFAR stem (3×3 conv, stride 1, no max-pool). The ImageNet stem
  shrinks a 32×32 image to 8×8 before the first block, and kNN accuracy on CIFAR collapses with it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from omegaconf import DictConfig


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """stem (3×3, stride `stem_stride`) → one conv + 2×2 max-pool per width → global average pool.

    (N, 3, H, W) → (N, widths[-1]).
    """

    def __init__(self, stem: int, widths: list[int], stem_stride: int):
        super().__init__()
        layers = conv_bn(3, stem, stem_stride)
        for c_in, c_out in zip([stem, *widths], widths):
            layers += [*conv_bn(c_in, c_out), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def resnet18_cifar() -> nn.Module:
    """ResNet-18 with the CIFAR stem: (N, 3, 32, 32) → (N, 512)."""
    from torchvision.models import resnet18

    net = resnet18()
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    net.dim = 512
    return net


def build_encoder(cfg: DictConfig) -> nn.Module:
    """The encoder named by `model.encoder` (small_cnn | resnet18); `.dim` is its feature size."""
    if cfg.encoder == "small_cnn":
        return SmallCNN(cfg.stem, list(cfg.widths), cfg.stem_stride)
    if cfg.encoder == "resnet18":
        return resnet18_cifar()
    from trends.errors import UserError

    raise UserError(f"model.encoder={cfg.encoder} is not known; use small_cnn or resnet18")

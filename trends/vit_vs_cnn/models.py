"""The contenders: a ResNet with a CIFAR stem, a Vision Transformer, a Compact Convolutional Transformer (CCT) and a
hybrid (convolutional stem + transformer).

All three map uint8-derived float images (B, 3, H, W) to logits (B, classes). Sizes come from
trends/conf/vit_vs_cnn/model/.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from trends.core.attention import attention


# -- ResNet ------------------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut (He et al. 2016); a 1×1 projection where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR stem (one 3×3 conv, stride 1, no max-pool: 32×32 images are already small), then one stage per width,
    each halving the resolution after the first, then global average pooling and a linear classifier."""

    def __init__(self, widths: list[int], blocks: list[int], num_classes: int):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {widths} and blocks {blocks} must have one entry per stage")
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, c_in = [], widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(c_in, width, stride=2 if i > 0 and j == 0 else 1))
                c_in = width
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


# -- Transformer encoder (shared by ViT and the hybrid) -----------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm encoder block (as in ViT): x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Encoder(nn.Module):
    """Tokens (B, T, dim) from a stem → optional class token, learned position embeddings, blocks, pooled logits.

    `pool`: `cls` reads a class token (ViT), `mean` averages the tokens, `seq` is CCT's sequence pooling: a learned
    softmax weight per token (one linear score each), so the model chooses which tokens to listen to."""

    def __init__(self, tokens: int, dim: int, depth: int, heads: int, mlp_ratio: float, dropout: float,
                 pool: str, num_classes: int):
        super().__init__()
        if pool not in ("cls", "mean", "seq"):
            raise ValueError(f"pool={pool} must be cls, mean or seq")
        self.pool = pool
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.score = nn.Linear(dim, 1) if pool == "seq" else None
        self.pos = nn.Parameter(torch.zeros(1, tokens + (pool == "cls"), dim))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos, std=0.02)
        if self.cls is not None:
            nn.init.trunc_normal_(self.cls, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.ln(self.blocks(self.drop(x + self.pos)))
        if self.pool == "seq":
            return self.head((self.score(x).softmax(dim=1) * x).sum(dim=1))
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(dim=1))


class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al. 2021): non-overlapping p×p patches, each linearly embedded (a strided
    convolution is exactly that), then a plain transformer encoder. No convolutional prior beyond the patch grid."""

    def __init__(self, image_size: int, patch: int, dim: int, depth: int, heads: int, mlp_ratio: float,
                 dropout: float, pool: str, num_classes: int):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of patch={patch}")
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.encoder = Encoder((image_size // patch) ** 2, dim, depth, heads, mlp_ratio, dropout, pool, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.patch(x).flatten(2).transpose(1, 2))


class CCT(nn.Module):
    """Compact Convolutional Transformer (Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact
    Transformers"): a convolutional tokenizer — per layer a 3×3 convolution, ReLU and a 3×3 max-pool of stride 2 —
    whose last feature map's pixels are the tokens, then the ViT's encoder with sequence pooling instead of a class
    token. The tokenizer brings the CNN's inductive biases (locality, translation equivariance, pooling) into an
    otherwise unchanged transformer; the paper's CCT-7/3×1 reaches 96.5 % on CIFAR-10 from scratch."""

    def __init__(self, image_size: int, conv_widths: list[int], kernel: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float, dropout: float, pool: str, num_classes: int):
        super().__init__()
        layers, c_in, side = [], 3, image_size
        for width in [*conv_widths, dim]:
            layers += [nn.Conv2d(c_in, width, kernel, 1, kernel // 2, bias=False), nn.ReLU(),
                       nn.MaxPool2d(3, 2, 1)]
            c_in, side = width, (side + 1) // 2  # each pool halves the side, rounding up
        self.tokenizer = nn.Sequential(*layers)
        for m in self.tokenizer:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
        self.encoder = Encoder(side * side, dim, depth, heads, mlp_ratio, dropout, pool, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.tokenizer(x).flatten(2).transpose(1, 2))


class Hybrid(nn.Module):
    """Convolutional stem + transformer ("Early convolutions help transformers see better", Xiao et al. 2021):
    3×3 conv-BN-ReLU layers, each after the first halving the resolution, then a 1×1 projection to `dim`, whose
    pixels become the tokens. The stem gives the transformer locality and translation equivariance for free."""

    def __init__(self, image_size: int, stem_widths: list[int], dim: int, depth: int, heads: int, mlp_ratio: float,
                 dropout: float, pool: str, num_classes: int):
        super().__init__()
        layers, c_in = [], 3
        for i, width in enumerate(stem_widths):
            layers += [nn.Conv2d(c_in, width, 3, 1 if i == 0 else 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            c_in = width
        self.stem = nn.Sequential(*layers, nn.Conv2d(c_in, dim, 1))
        side = image_size // 2 ** (len(stem_widths) - 1)
        self.encoder = Encoder(side * side, dim, depth, heads, mlp_ratio, dropout, pool, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.stem(x).flatten(2).transpose(1, 2))


# -- construction and cost ----------------------------------------------------------------------------------------
def build_model(name: str, cfg: DictConfig, image_size: int, num_classes: int) -> nn.Module:
    """`name` in resnet | vit | cct | hybrid, sized by `cfg` (its entry in trends/conf/vit_vs_cnn/model/<size>.yaml)."""
    kwargs = OmegaConf.to_container(cfg, resolve=True)
    if name == "resnet":
        return ResNet(num_classes=num_classes, **kwargs)
    if name == "vit":
        return ViT(image_size=image_size, num_classes=num_classes, **kwargs)
    if name == "cct":
        return CCT(image_size=image_size, num_classes=num_classes, **kwargs)
    if name == "hybrid":
        return Hybrid(image_size=image_size, num_classes=num_classes, **kwargs)
    raise ValueError(f"unknown model {name}")


def flops_per_image(model: nn.Module, image_size: int) -> int:
    """Forward FLOPs for one image, counting 2 per multiply-add of every convolution and matrix product (norms,
    activations and softmax are left out, as is usual). Training costs about 3× this (forward + backward).

    Convolutions and linear layers are counted by torch's FlopCounterMode on a CPU forward pass. Attention's two
    T×T products (QKᵀ and AV: 2·2·T²·d) are added by hand: the counter does not see inside every backend of
    scaled_dot_product_attention, so whatever it reports for that op is replaced.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    model.train(was_training)
    counts = counter.get_flop_counts()["Global"]
    total = sum(n for op, n in counts.items() if "scaled_dot_product" not in str(op))
    for module in model.modules():
        if isinstance(module, Encoder):
            tokens, dim = module.pos.shape[1], module.pos.shape[2]
            total += len(module.blocks) * 4 * tokens * tokens * dim
    return int(total)

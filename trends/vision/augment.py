"""Batched augmentation on whatever device the images are on, with random parameters per image."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The CIFAR standard: pad by `padding` (reflect), crop back at a random offset, flip half the images.

    images: (N, C, H, W), any dtype. Each image draws its own offset and flip.
    """
    n, _, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images.float(), (padding,) * 4, mode="reflect").to(images.dtype)
    dx, dy = (uniform_ints(2 * padding + 1, n, generator, device) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    flip = uniform_ints(2, n, generator, device).bool()
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def uniform_ints(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """n integers in [0, high), drawn on the generator's device and moved to `device`."""
    where = generator.device if generator is not None else device
    return torch.randint(0, high, (n,), generator=generator, device=where).to(device)


def resized_crop_flip(x: torch.Tensor, size: int, scale: tuple[float, float], ratio: tuple[float, float],
                      flip_p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """RandomResizedCrop + RandomHorizontalFlip as one bilinear resampling per image.

    Each image draws an area fraction in `scale` and a log-uniform aspect ratio in `ratio`; where the box would
    not fit, its sides are clipped to the image (torchvision redraws instead; the difference is small at
    CIFAR's scales). A flip is a negative x-scale of the same grid.
    """
    n = x.shape[0]
    area = uniform(n, *scale, x, generator)
    aspect = uniform(n, math.log(ratio[0]), math.log(ratio[1]), x, generator).exp()
    w = (area * aspect).sqrt().clamp(max=1.0)  # box sides as fractions of the image side
    h = (area / aspect).sqrt().clamp(max=1.0)
    cx = uniform(n, -1.0, 1.0, x, generator) * (1 - w)  # box centre in grid coordinates ([-1, 1])
    cy = uniform(n, -1.0, 1.0, x, generator) * (1 - h)
    flip = torch.where(uniform(n, 0.0, 1.0, x, generator) < flip_p, -1.0, 1.0)
    zero = torch.zeros_like(w)
    theta = torch.stack([w * flip, zero, cx, zero, h, cy], dim=1).view(n, 2, 3)
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def uniform(n: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator | None
             ) -> torch.Tensor:
    """n floats in [low, high), drawn on the generator's device and moved to the images' device."""
    where = generator.device if generator is not None else like.device
    u = torch.rand(n, generator=generator, device=where).to(like.device, like.dtype)
    return low + (high - low) * u

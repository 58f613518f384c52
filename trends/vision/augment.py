"""Batched augmentation on whatever device the images are on, with random parameters per image."""
from __future__ import annotations

import torch


def random_crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The CIFAR standard: pad by `padding` (reflect), crop back at a random offset, flip half the images.

    images: (N, C, H, W), any dtype. Each image draws its own offset and flip.
    """
    n, _, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images.float(), (padding,) * 4, mode="reflect").to(images.dtype)
    dx, dy = (_uniform_ints(2 * padding + 1, n, generator, device) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    flip = _uniform_ints(2, n, generator, device).bool()
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def _uniform_ints(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """n integers in [0, high), drawn on the generator's device and moved to `device`."""
    where = generator.device if generator is not None else device
    return torch.randint(0, high, (n,), generator=generator, device=where).to(device)

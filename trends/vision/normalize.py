"""Per-channel standardisation of uint8 images, with the training images' own mean and std (so any ImageFolder
works without published constants), into the memory format the model wants."""
from __future__ import annotations

import torch


class Normalize:
    def __init__(self, mean: torch.Tensor, std: torch.Tensor, channels_last: bool = False):
        self.mean, self.std = mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @classmethod
    def fit(cls, images: torch.Tensor, channels_last: bool = False, chunk: int = 4096) -> "Normalize":
        """Mean and std (3,) of uint8 `images` (N, 3, H, W) scaled to [0, 1]. Each chunk is summed in float32 where
        the images are, the chunks in float64 on the CPU (MPS has no float64), so a big set is never copied to float
        at once. channels_last: the output's memory format (what cuDNN's and oneDNN's fast convolutions want)."""
        total = torch.zeros(3, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        for start in range(0, len(images), chunk):
            x = images[start:start + chunk].float() / 255
            total += x.sum(dim=(0, 2, 3)).cpu().double()
            total_sq += (x * x).sum(dim=(0, 2, 3)).cpu().double()
        count = images.numel() / 3
        mean = total / count
        std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
        return cls(mean.float().to(images.device), std.float().to(images.device), channels_last)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Floats in [0, 1] (N, 3, H, W) → standardised, in the model's memory format."""
        return ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)

    def uint8(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) → standardised floats."""
        return self(images.float() / 255)

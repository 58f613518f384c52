"""SimCLR's two views, made in batches on the training device with random parameters per image.

The torchvision recipe (RandomResizedCrop → HorizontalFlip → ColorJitter p=0.8 → RandomGrayscale p=0.2) as tensor
operations on a whole batch: the crop and the flip are one affine sampling grid per image (F.grid_sample), the colour
changes are per-image factors broadcast over the batch. No DataLoader workers, no per-image Python: on a GPU the
pipeline never starves the model, and on a CPU it costs a few percent of a training step.

Three simplifications against torchvision, all cheap to state: the jitter runs in a fixed order (brightness,
contrast, saturation, hue) rather than a random one per image; hue is a rotation of the chroma plane in YIQ space
instead of a round trip through HSV; and the colour steps are composed into one matrix per image and clamped
once at the end.
"""
from __future__ import annotations

import math

import torch
from omegaconf import DictConfig

from trends.vision.augment import resized_crop_flip, uniform

# ITU-R 601 luma weights (what torchvision's rgb_to_grayscale uses) and the RGB ↔ YIQ pair for the hue rotation.
LUMA = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def two_views(images: torch.Tensor, aug: DictConfig, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently augmented views of each image.

    images: (N, 3, H, W) uint8 on any device. Returns two float tensors (N, 3, S, S) in [0, 1], S = aug.size.
    """
    x = images.float().div_(255)
    return view(x, aug, generator), view(x, aug, generator)


def view(x: torch.Tensor, aug: DictConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """One augmented view of float images in [0, 1]: (N, 3, H, W) → (N, 3, S, S)."""
    x = resized_crop_flip(x, aug.size, tuple(aug.scale), tuple(aug.ratio), aug.flip, generator)
    x = color_distort(x, aug.brightness, aug.contrast, aug.saturation, aug.hue, aug.jitter_p, aug.grayscale_p,
                      generator)
    return quarter_turns(x, aug.rotation, generator)


def quarter_turns(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn a random fraction `p` of the (square) views by 90, 180 or 270° (equally likely): the lecture's house
    that should still be recognised upside down. p = 0 draws no random numbers, so default runs are unchanged."""
    if p <= 0:
        return x
    n = x.shape[0]
    turned = uniform(n, 0.0, 1.0, x, generator) < p
    quarters = torch.where(turned, (uniform(n, 0.0, 3.0, x, generator).long() + 1).clamp(max=3), 0).view(n, 1, 1, 1)
    out = x
    for k in (1, 2, 3):
        out = torch.where(quarters == k, torch.rot90(x, k, dims=(2, 3)), out)
    return out


def color_distort(x: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float,
                  jitter_p: float, grayscale_p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """ColorJitter on a random fraction `jitter_p` of the images, then RandomGrayscale on `grayscale_p` of them.

    Every step is affine in RGB, so each image gets one 3×3 matrix M and one grey offset t, and the batch is a
    single batched matmul: x' = clamp(M x + t, 0, 1). (torchvision clamps after every step; clamping once only
    differs where a brightened pixel saturates before the contrast step.) Images a step skips get its identity.
    x: (N, 3, H, W) in [0, 1] → same shape.
    """
    n = x.shape[0]
    luma = torch.tensor(LUMA, device=x.device, dtype=x.dtype)
    eye = torch.eye(3, device=x.device, dtype=x.dtype).expand(n, 3, 3)
    to_grey = torch.ones(3, 1, device=x.device, dtype=x.dtype) * luma  # (3, 3): every channel := luma
    jitter = uniform(n, 0.0, 1.0, x, generator) < jitter_p

    def factor(strength: float, centre: float) -> torch.Tensor:
        f = uniform(n, centre - strength, centre + strength, x, generator)
        return torch.where(jitter, f, torch.full_like(f, centre)).view(n, 1, 1)

    b, c = factor(brightness, 1.0), factor(contrast, 1.0)
    s, angle = factor(saturation, 1.0), factor(hue, 0.0).view(n) * 2 * math.pi
    # brightness, then contrast: blend with the image's mean luma (b times the original's, as brightness is linear)
    mean_luma = torch.einsum("c,nchw->n", luma, x).view(n, 1, 1) / (x.shape[2] * x.shape[3])
    matrix = c * b * eye
    offset = (1 - c) * b * mean_luma  # (N, 1, 1): a grey, left alone by saturation, hue and greyscale below
    matrix = (s * eye + (1 - s) * to_grey) @ matrix  # saturation: blend with the image's own luma
    matrix = hue_rotation(angle) @ matrix
    grey = (uniform(n, 0.0, 1.0, x, generator) < grayscale_p).view(n, 1, 1)
    matrix = torch.where(grey, to_grey @ matrix, matrix)
    out = torch.baddbmm(offset, matrix, x.flatten(2))  # (N, 3, H*W)
    return out.clamp_(0, 1).view_as(x)


def hue_rotation(angle: torch.Tensor) -> torch.Tensor:
    """(N,) radians → (N, 3, 3) RGB matrices that rotate the chroma plane (I, Q of YIQ) and keep luma."""
    cos, sin = angle.cos(), angle.sin()
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rotation = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], dim=1).view(-1, 3, 3)
    return _YIQ_TO_RGB.to(angle) @ rotation @ _RGB_TO_YIQ.to(angle)

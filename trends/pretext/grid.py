"""Cutting a 3×3 grid of patches out of every image of a batch, with a gap between patches and a random jitter of
each patch, the geometry the relative-position and jigsaw tasks share.

The gap and the jitter are what make the tasks hard to cheat (Doersch et al. 2015, section 3): without a gap the
network could match the edges and textures that run across neighbouring patches; without jitter it could read the
position from where a patch's borders fall. Sizes are given in pixels of a 32×32 image and scale with the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trends.errors import UserError
from trends.vision.augment import uniform_ints

REFERENCE_SIDE = 32  # the side the configured pixel sizes are meant for


@dataclass(frozen=True)
class Grid:
    patch: int  # side of each patch, pixels
    gap: int  # pixels between neighbouring patches (before jitter)
    jitter: int  # each patch moves by up to ± this many pixels, independently along each axis
    input_size: int  # side each patch is resized to before the encoder sees it

    @classmethod
    def for_images(cls, cfg, side: int) -> "Grid":
        """The configured sizes (pixels at 32×32) scaled to images of `side` pixels, checked to fit."""
        scale = side / REFERENCE_SIDE
        grid = cls(*(max(0, round(v * scale)) for v in (cfg.patch, cfg.gap, cfg.jitter, cfg.input_size)))
        if grid.patch < 2 or grid.input_size < 2:
            raise UserError(f"task.patch={cfg.patch} / task.input_size={cfg.input_size} give patches under 2 pixels "
                            f"on {side}×{side} images; raise them")
        if grid.span + 2 * grid.jitter > side:
            raise UserError(f"a 3×3 grid of task.patch={cfg.patch} px with task.gap={cfg.gap} and task.jitter="
                            f"{cfg.jitter} needs {grid.span + 2 * grid.jitter}×… px, more than the {side} px images "
                            f"(sizes are at 32×32);\nlower them so that 3·patch + 2·gap + 2·jitter ≤ 32")
        return grid

    @property
    def span(self) -> int:
        """Pixels from the first patch's left edge to the last one's right edge, without jitter."""
        return 3 * self.patch + 2 * self.gap

    def corners(self, n: int, height: int, width: int, generator: torch.Generator | None, device
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-left (row, col) of the 9 patches of each of n images, row-major cells: two (n, 9) int64 tensors."""
        cells = torch.arange(3, device=device) * (self.patch + self.gap)
        rows = ((height - self.span) // 2 + cells).repeat_interleave(3)  # cell k sits at row k // 3, column k % 3
        cols = ((width - self.span) // 2 + cells).repeat(3)
        return rows + self._jitter(n, generator, device), cols + self._jitter(n, generator, device)

    def _jitter(self, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
        return uniform_ints(2 * self.jitter + 1, n * 9, generator, device).view(n, 9) - self.jitter

    def cut(self, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The patches whose top-left corners are (rows, cols), each (n, m), resized for the encoder.

        x: (n, C, H, W) floats → (n·m, C, input_size, input_size), image by image, patch by patch."""
        n, m = rows.shape
        span = torch.arange(self.patch, device=x.device)
        r = (rows[:, :, None] + span)[:, :, :, None]  # (n, m, p, 1)
        c = (cols[:, :, None] + span)[:, :, None, :]  # (n, m, 1, p)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        patches = x.permute(0, 2, 3, 1)[batch, r, c]  # (n, m, p, p, C)
        patches = patches.permute(0, 1, 4, 2, 3).reshape(n * m, x.shape[1], self.patch, self.patch)
        if self.input_size == self.patch:
            return patches
        return F.interpolate(patches, size=self.input_size, mode="bilinear", align_corners=False, antialias=False)

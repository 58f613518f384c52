"""The one figure the core's plot helpers do not cover: what 'two views of the same image' looks like."""
from __future__ import annotations

from pathlib import Path

import torch

from trends.records.plots import plt, save


def view_pairs(path: Path, originals: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> Path:
    """Columns of (original, view 1, view 2). originals: (N, 3, H, W) uint8; views: (N, 3, S, S) floats in [0, 1]."""
    n = len(originals)
    rows = [("image", originals.float() / 255), ("view 1", first), ("view 2", second)]
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.1), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle("SimCLR: two random views of each image are pulled together, all other images pushed apart",
                 fontsize=9)
    return save(fig, path)

"""Context prediction (Doersch, Gupta & Efros 2015): show the network the centre patch of a 3×3 grid and one of its 8
neighbours, and ask where the neighbour lies. Both patches go through the same encoder; the head sees their features
side by side."""
from __future__ import annotations

import torch

from trends.pretext.grid import Grid
from trends.vision.augment import uniform_ints

# The 8 answers, in reading order around the centre (cell 4 of the row-major 3×3 grid).
POSITIONS = ("upper left", "above", "upper right", "left", "right", "lower left", "below", "lower right")
NEIGHBOUR_CELLS = torch.tensor([0, 1, 2, 3, 5, 6, 7, 8])
CENTRE = 4


def position_label(row_offset: int, col_offset: int) -> int:
    """The answer for a neighbour `row_offset` rows and `col_offset` columns from the centre (each -1, 0 or 1)."""
    cell = (row_offset + 1) * 3 + (col_offset + 1)
    if cell == CENTRE or not (-1 <= row_offset <= 1 and -1 <= col_offset <= 1):
        raise ValueError(f"({row_offset}, {col_offset}) is not one of the 8 neighbours")
    return int((NEIGHBOUR_CELLS == cell).nonzero())


class RelativePosition:
    name = "relative_position"
    classes = len(POSITIONS)
    inputs_per_question = 2  # centre, neighbour
    answers = POSITIONS

    def __init__(self, grid: Grid, device="cpu"):
        self.grid = grid
        self.neighbour_cells = NEIGHBOUR_CELLS.to(device)  # where the images are: no copy per step

    def ask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (n, C, H, W) floats → inputs (2n, C, s, s) as (centre, neighbour) pairs, and labels (n,) in 0..7."""
        n, device = x.shape[0], x.device
        rows, cols = self.grid.corners(n, x.shape[2], x.shape[3], generator, device)
        labels = uniform_ints(self.classes, n, generator, device)
        cells = torch.stack([torch.full_like(labels, CENTRE), self.neighbour_cells[labels]], dim=1)  # (n, 2)
        return self.grid.cut(x, rows.gather(1, cells), cols.gather(1, cells)), labels

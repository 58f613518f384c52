"""Context prediction (Doersch, Gupta & Efros 2015): show the network the centre patch of a 3×3 grid and one of its 8
neighbours, and ask where the neighbour lies. Both patches go through the same encoder; the head sees their features
side by side."""
from __future__ import annotations

import torch

from trends.pretext.grid import Grid

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

    def __init__(self, grid: Grid):
        self.grid = grid
        self.neighbour_cells = NEIGHBOUR_CELLS  # moved to the images' device on first use

    def ask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (n, C, H, W) floats → inputs (2n, C, s, s) as (centre, neighbour) pairs, and labels (n,) in 0..7."""
        n, device = x.shape[0], x.device
        rows, cols = self.grid.corners(n, x.shape[2], x.shape[3], generator, device)
        where = generator.device if generator is not None else device
        labels = torch.randint(0, self.classes, (n,), generator=generator, device=where).to(device)
        if self.neighbour_cells.device != device:
            self.neighbour_cells = self.neighbour_cells.to(device)
        cells = torch.stack([torch.full_like(labels, CENTRE), self.neighbour_cells[labels]], dim=1)  # (n, 2)
        return self.grid.cut(x, rows.gather(1, cells), cols.gather(1, cells)), labels

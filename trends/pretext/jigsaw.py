"""Jigsaw puzzles (Noroozi & Favaro 2016): cut the image into 3×3 tiles, shuffle them by one of K fixed
permutations, and ask which permutation it was. Every tile goes through the same encoder; the head sees the nine
features in the order shown.

The K permutations are chosen far apart (greedy max-min Hamming distance over all 9! orders, the paper's
algorithm): two permutations that differ in only two tiles would make a question no image could settle.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import torch

from trends.pretext.grid import Grid
from trends.vision.augment import uniform_ints

TILES = 9


@lru_cache(maxsize=8)
def permutation_set(k: int, seed: int = 0) -> torch.Tensor:
    """(k, 9) int64: k permutations of the 9 tiles, each as far (in Hamming distance) from those before it as any
    permutation can be. The first is drawn by `seed`; ties go to the earliest in lexicographic order."""
    every = torch.tensor(list(itertools.permutations(range(TILES))), dtype=torch.int8)  # (362880, 9)
    if not 1 <= k <= len(every):
        raise ValueError(f"k must lie in 1..{len(every)}")
    first = int(torch.randint(len(every), (1,), generator=torch.Generator().manual_seed(seed)))
    chosen = [first]
    nearest = (every != every[first]).sum(1)  # each candidate's distance to the closest chosen permutation
    for _ in range(k - 1):
        pick = int(nearest.argmax())
        chosen.append(pick)
        nearest = torch.minimum(nearest, (every != every[pick]).sum(1))
    return every[chosen].long()


def min_hamming(permutations: torch.Tensor) -> int:
    """The smallest number of positions in which two of the (k, 9) permutations differ."""
    distances = (permutations[:, None, :] != permutations[None, :, :]).sum(-1)
    distances.fill_diagonal_(TILES + 1)
    return int(distances.min())


class Jigsaw:
    name = "jigsaw"
    inputs_per_question = TILES

    def __init__(self, grid: Grid, permutations: int, device="cpu"):
        self.grid = grid
        self.permutations = permutation_set(permutations).to(device)  # where the images are: no copy per step
        self.classes = permutations
        self.answers = tuple(f"#{i}" for i in range(permutations))

    def ask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (n, C, H, W) → inputs (9n, C, s, s): each image's tiles in shuffled order (position j shows tile
        permutations[label][j]), and labels (n,) in 0..K-1."""
        n, device = x.shape[0], x.device
        rows, cols = self.grid.corners(n, x.shape[2], x.shape[3], generator, device)
        labels = uniform_ints(self.classes, n, generator, device)
        order = self.permutations[labels]  # (n, 9)
        return self.grid.cut(x, rows.gather(1, order), cols.gather(1, order)), labels

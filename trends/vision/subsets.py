"""Class-balanced training subsets for data-scaling experiments (and label-fraction evaluations)."""
from __future__ import annotations

from typing import Sequence

import torch


def nested_stratified_subsets(labels: torch.Tensor, fractions: Sequence[float], seed: int) -> dict[float, torch.Tensor]:
    """For each fraction f in (0, 1]: sorted indices (int64) of a subset holding round(f · n_c) images of every class
    c (at least one), so class proportions match the full set.

    Nested: each class is shuffled once (by `seed`) and every subset takes a prefix of that order, so a larger
    fraction contains every image of a smaller one, and adding data never swaps images out.
    """
    bad = [f for f in fractions if not 0 < float(f) <= 1]
    if bad:
        raise ValueError(f"fractions must lie in (0, 1]; got {bad}")
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    orders = [idx[torch.randperm(len(idx), generator=g)] for idx in
              (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))]
    subsets = {}
    for f in fractions:
        take = [order[:max(1, round(float(f) * len(order)))] for order in orders]
        subsets[float(f)] = torch.sort(torch.cat(take)).values
    return subsets

"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean NT-Xent over the 2N views.

    z1, z2: (N, D) projections of the two views of the same N images (normalised here, so any scale will do).
    Each view's positive is the other view of its image; the other 2N - 2 views in the batch are its negatives.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # float: bf16 logits lose the small differences that matter
    logits = z @ z.T / temperature  # (2N, 2N) cosine similarities
    logits.fill_diagonal_(float("-inf"))  # a view is not its own negative
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # i ↔ i + N
    return F.cross_entropy(logits, positives)

"""Small facts about models that every demo reports."""
from __future__ import annotations

import torch.nn as nn


def num_params(module: nn.Module) -> int:
    """Parameters of `module`, a shared (tied) tensor counted once."""
    return sum(p.numel() for p in module.parameters())

"""Momentum (EMA) targets: MoCo's key encoder, BYOL's target network and DINO's teacher are slowly moving averages
of the network being trained, never trained themselves."""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` that no optimiser moves: the starting point of a momentum target."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """θ_target ← m·θ_target + (1 − m)·θ_online for every parameter (buffers, such as BatchNorm's running
    statistics, stay the target's own: it runs its own forward passes)."""
    target_params, online_params = list(target.parameters()), list(online.parameters())
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, [p.detach() for p in online_params], alpha=1 - momentum)


def cosine_momentum(step: int, total: int, base: float, final: float = 1.0) -> float:
    """BYOL's schedule: the momentum rises from `base` at step 0 to `final` at step `total` along a half cosine."""
    return final - (final - base) * (math.cos(math.pi * min(step, total) / total) + 1) / 2

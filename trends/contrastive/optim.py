"""Optimizers of the self-supervised methods: SGD, LARS, AdamW (the schedule is trends.core.schedule.warmup_cosine)."""
from __future__ import annotations

import torch
import torch.nn as nn
from omegaconf import DictConfig

from trends.errors import UserError


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay (and, for LARS, layer-wise scaling) on conv and linear weights only; never on biases or BN.
    Frozen parameters (momentum targets) are no optimiser's."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay, "lars": True},
            {"params": no_decay, "weight_decay": 0.0, "lars": False}]


def build_optimizer(cfg: DictConfig, model: nn.Module, fused: bool = False) -> torch.optim.Optimizer:
    """`optim.name` in sgd | lars | adamw, at `optim.lr` (set for the configured batch size: no hidden scaling)."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "lars":
        return LARS(groups, lr=cfg.lr, momentum=cfg.momentum, trust_coefficient=cfg.trust_coefficient)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), fused=fused)
    raise UserError(f"optim.name={cfg.name} is not known; use sgd, lars or adamw")


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose step for each weight tensor is scaled by trust · ‖w‖ / ‖∇w + wd·w‖ (You et al. 2017),
    so that every layer moves by a similar fraction of its norm whatever the batch size. Groups with
    `lars=False` (biases, BatchNorm) take plain SGD steps, as in SimCLR."""

    def __init__(self, params, lr: float, momentum: float = 0.9, trust_coefficient: float = 0.001):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": 0.0, "lars": True,
                                  "trust_coefficient": trust_coefficient})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=group["weight_decay"])
                if group["lars"]:
                    w_norm, g_norm = p.norm(), grad.norm()
                    trust = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["trust_coefficient"] * w_norm / g_norm, torch.ones_like(w_norm))
                    grad = grad.mul(trust)
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = grad.clone()
                else:
                    buf.mul_(group["momentum"]).add_(grad)
                p.add_(buf, alpha=-group["lr"])


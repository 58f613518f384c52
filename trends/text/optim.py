"""The char-GPT's optimizers: AdamW for every weight (GPT-2's recipe), or Muon for the blocks' matrices with AdamW for
the embeddings, the head and the gains (modded-nanogpt's; `optim=muon`, part of `recipe=modern`).

Muon (Jordan et al. 2024; torch.optim.Muon, PyTorch's own) replaces each matrix's momentum-averaged gradient by
the nearest semi-orthogonal matrix (five Newton–Schulz iterations), so every direction of the update moves by the
same amount: the rare directions a raw gradient neglects learn as fast as the common ones. It is defined for 2-D
weights only, hence the pair. With `adjust_lr_fn="match_rms_adamw"` its updates have AdamW's RMS, so one learning
rate scale serves both (Liu et al. 2025, Moonlight).
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from trends.core.schedule import warmup_cosine

from .model import GPT


class Chain:
    """Several optimizers (or their schedules) that step, zero, save and load as one: what the training loop and a
    checkpoint see of AdamW and Muon together."""

    def __init__(self, *parts):
        self.parts = list(parts)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def get_last_lr(self) -> list[float]:
        return [lr for part in self.parts for lr in part.get_last_lr()]

    def state_dict(self) -> dict:
        return {str(i): part.state_dict() for i, part in enumerate(self.parts)}

    def load_state_dict(self, state: dict) -> None:
        for i, part in enumerate(self.parts):
            part.load_state_dict(state[str(i)])


def build_optimizer(model: GPT, o: DictConfig, fused: bool = False) -> torch.optim.Optimizer | Chain:
    """AdamW over `model.param_groups` (optim.name=adamw), or AdamW for what Muon does not take (optim.name=muon)."""
    if o.get("name", "adamw") == "adamw":
        return torch.optim.AdamW(model.param_groups(o.weight_decay), lr=o.lr, betas=tuple(o.betas), fused=fused)
    matrices = model.hidden_matrices()
    adamw = torch.optim.AdamW(model.param_groups(o.weight_decay, exclude=matrices), lr=o.lr, betas=tuple(o.betas),
                              fused=fused)
    muon = torch.optim.Muon(matrices, lr=o.muon_lr, weight_decay=o.weight_decay, momentum=o.muon_momentum,
                            adjust_lr_fn="match_rms_adamw")
    return Chain(adamw, muon)


def build_schedule(optimizer, warmup_steps: int, total: int, floor: float):
    """trends.core.schedule.warmup_cosine for each optimizer: AdamW's and Muon's rates rise and fall together."""
    if isinstance(optimizer, Chain):
        return Chain(*(warmup_cosine(part, warmup_steps, total, floor) for part in optimizer.parts))
    return warmup_cosine(optimizer, warmup_steps, total, floor)

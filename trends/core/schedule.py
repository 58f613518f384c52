"""How long a run trains and at what learning rate: the budget in steps, linear warmup then cosine decay, and the
optimizer step that advances the schedule."""
from __future__ import annotations

import math

import torch

from trends.errors import UserError


def total_steps(train, steps_per_epoch: float, prefer: str = "steps") -> int:
    """Optimizer steps for the budget in `train`: `steps`, or `epochs` passes over the data (× steps_per_epoch).
    A demo's config sets one and leaves the other null; when a user sets both, `prefer` names the one that wins."""
    for key in (prefer, "epochs" if prefer == "steps" else "steps"):
        value = train.get(key)
        if value is None:
            continue
        if value <= 0:
            raise UserError(f"train.{key}={value} must be positive (or null, to train for train.epochs/steps)")
        return int(value) if key == "steps" else max(1, math.ceil(value * steps_per_epoch))
    raise UserError("set train.epochs (passes over the data) or train.steps to a positive number")


def whole_epochs(epochs) -> int:
    """`train.epochs` for loops that evaluate at epoch ends and so need a whole number of them."""
    if epochs is None or epochs <= 0 or not float(epochs).is_integer():
        raise UserError(f"train.epochs={epochs}: give a whole number of epochs ≥ 1")
    return int(epochs)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total: int,
                  floor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Per step: the lr rises linearly over `warmup_steps` from lr/warmup_steps to lr, then follows a cosine down to
    `floor`·lr at step `total`, and stays there. One closed-form LambdaLR rather than torch's SequentialLR of LinearLR
    and CosineAnnealingLR: LinearLR cannot start from a factor of 0, the cosine would start one step late, and
    CosineAnnealingLR's recursive update drifts from the closed form over long runs."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_step(optimizer: torch.optim.Optimizer, scheduler, parameters, grad_clip: float) -> None:
    """After backward: clip the gradients' global norm to `grad_clip` (0: no clipping), step, advance the
    schedule by one step, and free the gradients."""
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)

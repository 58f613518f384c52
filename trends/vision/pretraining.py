"""What the self-supervised training loops (contrastive, pretext) share besides their evaluation: the training state
they checkpoint, and the walk over full batches of a fresh permutation each epoch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from trends.core.loop import TrainState
from trends.core.seed import derive_seed
from trends.errors import UserError
from trends.ranks import Dist


@dataclass
class PretrainState(TrainState):
    random_init_knn: float | None = None  # the untrained encoder's kNN accuracy: what self-supervision has to beat
    train_time: float = 0.0  # seconds of training steps alone (no evaluation), for images/s
    eval_time: float = 0.0  # seconds of evaluation during training (kNN monitor, the task's own accuracy)


def full_batches(n: int, batch_size: int) -> int:
    """Steps per epoch: full batches only (NT-Xent's negatives and BatchNorm's statistics scale with the batch)."""
    if n < batch_size:
        raise UserError(f"train.batch_size={batch_size} is larger than the {n} training images; lower it")
    return n // batch_size


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """A permutation per (seed, epoch): a resumed run walks exactly the batches an uninterrupted one would."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    return torch.randperm(n, generator=generator).to(device)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, first_step: int, steps_per_epoch: int, dist: Dist,
                  device) -> Iterator[torch.Tensor]:
    """This rank's share of each remaining batch of `epoch`, from step `first_step` of the epoch on."""
    order = epoch_order(n, seed, epoch, device)
    for i in range(first_step, steps_per_epoch):
        yield dist.mine(order[i * batch_size:(i + 1) * batch_size])

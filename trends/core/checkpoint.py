"""Checkpoints written atomically and durably (trends.records.files: a full disk or a kill mid-write never leaves a
truncated file in place of the last good one) and read back with a clear error when damaged."""
from __future__ import annotations

from pathlib import Path

import torch

from trends.errors import UserError
from trends.records.files import write_atomic


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` to `path`, or leave the checkpoint that was there (and raise the write's OSError)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; pass the folder of a run that trained at least one step")
    try:
        # weights_only: a checkpoint is data, never code (RNG states are stored as tensors for this).
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged files
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); "
                        "start a new run or restore the file") from None

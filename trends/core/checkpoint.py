"""Checkpoints written atomically (temp file + rename) and read back with a clear error when damaged."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from trends.errors import UserError


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` so that a crash mid-write never leaves a truncated file at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


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

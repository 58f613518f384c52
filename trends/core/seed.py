"""Seeding and the complete RNG state a checkpoint needs for an exact resume."""
from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def derive_seed(seed: int, *parts) -> int:
    """A seed for one named part of a run (an epoch's order, a cell, a fold), the same whichever other parts run
    before it: `seed` and the parts' names mixed, so seeds 0 and 1 never share a part's stream."""
    return seed * 1_000_003 + zlib.crc32("/".join(map(str, parts)).encode())


def capture_rng() -> dict:
    """Every global RNG state, as tensors and plain values so `torch.load(weights_only=True)` can read it back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

"""Device choice and a measured peak for model-FLOPs utilisation."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from trends.clock import Stopwatch
from trends.errors import UserError

from .data import cache_dir


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; anything else must be available or it is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"device={name} is not a device ({err}); use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA GPU is visible; use device=auto or device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name} but MPS is not available; use device=auto or device=cpu")
    return device


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def _cache_file() -> Path:
    return cache_dir() / "peak_flops.json"


def measure_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul throughput in FLOP/s in `dtype` (the dtype a run's matrix products use: MFU divides by it),
    measured once per device and dtype and cached."""
    key = f"{describe(device)}|{str(dtype).removeprefix('torch.')}|torch {torch.__version__}"
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return float(known[key])
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        synchronize(device)
        with Stopwatch() as watch:
            for _ in range(4):
                a @ b
            synchronize(device)
        best = min(best, watch.seconds / 4)
    peak = 2 * n**3 / best
    known[key] = peak
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, cache)
    except OSError:
        pass  # an unwritable cache only costs a re-measure next time
    return peak


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device`: before a clock stops, so that the time is that of work done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()

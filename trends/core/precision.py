"""Mixed precision: whether a run computes its matrix products in bf16, decided once from `train.amp` and the device.

`train.amp` is `auto`, `true` or `false`. `auto` takes bf16 autocast where the hardware multiplies bf16 natively:
every CUDA GPU this project targets, and CPUs that report bf16 matrix instructions (AVX512-BF16 or AMX on x86,
the BF16 extension on Arm). There it is 1.3–1.8× faster on mid-size models; on a CPU without them bf16 is emulated
and slower, so `auto` stays in fp32. `true` forces bf16 (emulated where unsupported), `false` forces fp32.

Under autocast only the matrix products and convolutions run in bf16: parameters, gradients and optimizer state stay
fp32, and every loss casts its logits to fp32 before its softmax (see the demos' losses).
`TRENDS_CPU_BF16=0` (or `=1`) overrides the CPU's report, e.g. to check the fp32 path on a machine that has bf16.
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    device: torch.device
    bf16: bool
    why: str  # one phrase for the log and the summary

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the matrix products (and so of the peak that MFU divides by)."""
        return torch.bfloat16 if self.bf16 else torch.float32

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp32"

    def autocast(self):
        """The context a forward pass runs in: bf16 autocast, or nothing at all on the fp32 path."""
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def summary(self) -> dict:
        return {"precision": self.name, "precision_why": self.why}


def choose_precision(device: torch.device, amp) -> Precision:
    """`train.amp` (auto/true/false, checked by the launch) on `device` → the precision the run uses, with the
    reason."""
    if amp != "auto":
        return Precision(device, amp, f"train.amp={str(amp).lower()}")
    if device.type == "cuda":
        return Precision(device, True, "auto: CUDA")
    if device.type == "cpu":
        native, what = cpu_bf16_matmul()
        return Precision(device, native, f"auto: {what}")
    return Precision(device, False, f"auto: fp32 on {device.type}")


@functools.cache
def cpu_bf16_matmul() -> tuple[bool, str]:
    """Whether this CPU multiplies bf16 natively, and what was found (asked once per process: torch reads cpuinfo)."""
    forced = os.environ.get("TRENDS_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1", f"TRENDS_CPU_BF16={forced}"
    cpu = torch.cpu
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return True, "CPU has AMX"
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        return True, "CPU has AVX512-BF16"
    if platform.machine().lower() in ("arm64", "aarch64") and torch.backends.mkldnn.is_available():
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():  # on Arm: the BF16 extension (BFMMLA)
            return True, "CPU has Arm BF16"
    return False, "no bf16 matrix instructions on this CPU"

"""fp32 against bf16 autocast, side by side in one process: training throughput of every demo's default model and
of its GPU-sized one, with the speed-up `train.amp=auto` brings on this machine.

    python bench/precision.py                  # all rows (≈ 6 min on 2 cores)
    python bench/precision.py --only lm        # one demo's rows: lm, vit-vs-cnn, contrastive
    TRENDS_CPU_BF16=0 python bench/precision.py --only lm   # what `auto` picks on a CPU without bf16

Each row times the demo's own training step (the benches bench/lm.py, bench/vit_vs_cnn.py and bench/contrastive.py
run it) with train.amp=false and then train.amp=true, twice over in alternation, and keeps each side's best, so
that a busy machine slows both alike. The GPU-sized models run at a small batch on a CPU (throughput per token or
image hardly depends on it there). trends scaling and trends distill train the lm's GPT (their rungs and students
lie between the two lm rows); trends pretext trains contrastive's encoders. MFU divides by the measured matmul peak
of the precision used (trends.core.device.measure_peak_flops).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import contrastive, lm, vit_vs_cnn  # noqa: E402
from trends.core.device import describe, measure_peak_flops, resolve_device  # noqa: E402
from trends.core.precision import choose_precision  # noqa: E402

CPU_BATCH = ["train.batch_size=16"]  # the GPU-sized GPT at 16 × 256 tokens: ≈ 2 s a step on 2 cores


def lm_rows(device: torch.device, steps: int):
    sizes = {"4 × 128, block 64 (default)": [],
             "6 × 384, block 256 (GPU preset)": ["experiment=shakespeare_gpu", "train.compile=false",
                                                 *(CPU_BATCH if device.type == "cpu" else [])]}
    for name, overrides in sizes.items():
        def rate(amp: bool, overrides=overrides) -> tuple[float, float]:
            r = lm.throughput([*overrides, f"train.amp={str(amp).lower()}"], device, steps)
            return r["tokens_per_s"], r["mfu"]
        yield "lm", name, "tokens/s", rate


def vit_vs_cnn_rows(device: torch.device, steps: int):
    contenders = [("small", "resnet", True), ("small", "resnet", False), ("small", "vit", True),
                  ("cifar_gpu", "resnet", True), ("cifar_gpu", "vit", True)]
    for preset, model, nhwc in contenders:
        def rate(amp: bool, preset=preset, model=model, nhwc=nhwc) -> tuple[float, float]:
            overrides = [f"model={preset}", f"train.amp={str(amp).lower()}", "train.compile=false",
                         f"train.channels_last={str(nhwc).lower()}"]
            with initialize_config_dir(str(REPO / "trends" / "conf"), version_base="1.3"):
                cfg = compose("vit_vs_cnn", overrides=overrides)
            r = vit_vs_cnn.bench(cfg, model, device, steps if preset == "small" else max(2, steps // 5), 2)
            peak = measure_peak_flops(device, r["precision"].dtype)
            return r["train"], 3 * r["flops"] * r["train"] / peak
        label = ("default" if preset == "small" else "GPU preset") + ("" if nhwc else ", NCHW as before")
        yield "vit-vs-cnn", f"{model} ({label}), batch 64", "images/s", rate


def contrastive_rows(device: torch.device, steps: int):
    batch = contrastive.config([]).train.batch_size
    for encoder, size, label in (("small_cnn", batch, "default"), ("resnet18", 64, "GPU preset's encoder")):
        def rate(amp: bool, encoder=encoder, size=size) -> tuple[float, float]:
            r = contrastive.bench(encoder, size, steps if encoder == "small_cnn" else max(2, steps // 5), device,
                                  None, amp)
            return r["images_per_s"], float("nan")
        yield "contrastive", f"{encoder} ({label}), batch {size}", "images/s", rate


ROWS = {"lm": lm_rows, "vit-vs-cnn": vit_vs_cnn_rows, "contrastive": contrastive_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per side (GPU-sized models: a fifth)")
    parser.add_argument("--only", choices=list(ROWS), action="append", help="the demos to time (default: all)")
    args = parser.parse_args()
    os.environ.setdefault("TRENDS_DATA", str(REPO.parent / "shared" / "data"))
    device = resolve_device(args.device)
    auto = choose_precision(device, "auto")
    table = Table(title=f"fp32 vs bf16 autocast on {describe(device)}; train.amp=auto picks {auto.name} here "
                        f"({auto.why})")
    for col in ("demo", "model", "unit", "fp32", "bf16", "bf16 ÷ fp32", "MFU fp32", "MFU bf16"):
        table.add_column(col, justify="left" if col in ("demo", "model", "unit") else "right")
    for demo in args.only or list(ROWS):
        for demo_name, model, unit, rate in ROWS[demo](device, args.steps):
            best = {False: (0.0, 0.0), True: (0.0, 0.0)}
            for _ in range(2):  # alternate, keep each side's best
                for amp in (False, True):
                    best[amp] = max(best[amp], rate(amp))
            (fp32, mfu32), (bf16, mfu16) = best[False], best[True]
            table.add_row(demo_name, model, unit, f"{fp32:,.0f}", f"{bf16:,.0f}", f"{bf16 / fp32:.2f}×",
                          "" if mfu32 != mfu32 else f"{mfu32:.1%}", "" if mfu16 != mfu16 else f"{mfu16:.1%}")
            print(f"{demo_name:12s} {model:36s} fp32 {fp32:9,.0f}  bf16 {bf16:9,.0f} {unit}  {bf16 / fp32:.2f}×",
                  flush=True)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()

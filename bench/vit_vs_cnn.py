"""Training throughput and model-FLOPs utilisation of every `trends vit-vs-cnn` contender.

    python bench/vit_vs_cnn.py                                # CPU default sizes (model=small)
    python bench/vit_vs_cnn.py experiment=cifar10_gpu         # ResNet-18 vs ViT-S-like, bf16, compiled, on the GPU
    python bench/vit_vs_cnn.py --steps 50 models=[resnet,vit,cct,hybrid] train.batch_size=256

The step timed is the demo's own (trends.vit_vs_cnn.train.train_step: crop/flip on the device, autocast, AdamW), on
random uint8 images already on the device. MFU = 3 × forward FLOPs per image × images/s ÷ the measured matmul peak
(trends.core.device.measure_peak_flops). Forward FLOPs count 2 per multiply-add of convolutions and matmuls.
Evaluation (forward only, no grad) runs the eager model, so only the training step pays for compilation.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from rich.console import Console
from rich.table import Table

from trends.core.device import describe, measure_peak_flops, resolve_device
from trends.core.modules import num_params
from trends.core.precision import choose_precision
from trends.vision.normalize import Normalize
from trends.vit_vs_cnn.models import build_model, flops_per_image
from trends.vit_vs_cnn.train import make_optimizer, train_step

CONF = Path(__file__).resolve().parent.parent / "trends" / "conf"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(cfg, name: str, device: torch.device, steps: int, warmup: int, image_size: int = 32,
          num_classes: int = 10) -> dict:
    torch.manual_seed(0)
    precision = choose_precision(device, cfg.train.amp)
    model = build_model(name, cfg.model[name], image_size, num_classes)
    flops = flops_per_image(model, image_size)
    model = model.to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(cfg, name, model, steps + warmup, device)
    forward = torch.compile(model) if cfg.train.compile and device.type == "cuda" else model
    b = cfg.train.batch_size
    images = torch.randint(0, 256, (b, 3, image_size, image_size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, num_classes, (b,), device=device)
    prep = Normalize.fit(images, channels_last=cfg.train.channels_last)

    for _ in range(warmup):  # compilation, autotuning, allocator warm-up
        train_step(forward, optimizer, scheduler, images, labels, prep, precision, cfg)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(forward, optimizer, scheduler, images, labels, prep, precision, cfg)
    sync(device)
    train_rate = steps * b / (time.perf_counter() - start)

    model.eval()
    with torch.no_grad(), precision.autocast():
        model(prep.uint8(images))
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            model(prep.uint8(images))
        sync(device)
    eval_rate = steps * b / (time.perf_counter() - start)
    return {"params": num_params(model), "flops": flops, "train": train_rate, "eval": eval_rate,
            "precision": precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of trends/conf/vit_vs_cnn.yaml")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per contender")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("vit_vs_cnn", overrides=args.overrides)
    device = resolve_device(cfg.device)
    precision = choose_precision(device, cfg.train.amp)
    peak = cfg.peak_flops or measure_peak_flops(device, precision.dtype)
    table = Table(title=f"vit-vs-cnn contenders on {describe(device)}, batch {cfg.train.batch_size}, "
                        f"{precision.name}, peak {peak / 1e12:.2f} TFLOP/s (measured {precision.name} matmul)")
    for col in ("model", "params", "MFLOPs/img (fwd)", "train img/s", "MFU", "eval img/s (eager)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in cfg.models:
        r = bench(cfg, name, device, args.steps, args.warmup)
        table.add_row(name, f"{r['params'] / 1e6:.3f}M", f"{r['flops'] / 1e6:.1f}", f"{r['train']:,.0f}",
                      f"{3 * r['flops'] * r['train'] / peak:.1%}", f"{r['eval']:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()

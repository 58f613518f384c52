"""Benchmark `trends lm`: tokens/s and MFU per config, then the val loss each recipe reaches and in what wall time.

    python bench/lm.py                      # throughput of default / nanoGPT CPU recipe / GPU preset, then quality
    python bench/lm.py --skip-quality       # throughput only (seconds)
    python bench/lm.py --decode             # generation: characters/s with and without the key/value cache

The reference is nanoGPT's documented CPU recipe for shakespeare_char (4 layers, 4 heads, 128 wide, block 64,
batch 12, lr 1e-3 → 1e-4, 2000 iterations), run through the same code so only the recipe differs.
Needs Tiny Shakespeare under $TRENDS_DATA (default ../shared/data).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trends.core.device import measure_peak_flops, resolve_device  # noqa: E402
from trends.core.precision import choose_precision  # noqa: E402
from trends.text.model import GPT, GPTConfig  # noqa: E402
from trends.text.sample import decoding_rates  # noqa: E402

NANOGPT_CPU = ["model.n_layer=4", "model.n_head=4", "model.n_embd=128", "model.block_size=64", "model.dropout=0.0",
               "train.batch_size=12", "train.epochs=null", "train.steps=2000", "optim.lr=1e-3", "optim.min_lr=1e-4",
               "optim.warmup_steps=100", "train.eval_every=250", "train.eval_batches=20"]
CONFIGS = {"default (CPU)": [], "nanoGPT CPU recipe": NANOGPT_CPU, "shakespeare_gpu preset": ["experiment=shakespeare_gpu"]}


def throughput(overrides: list[str], device: torch.device, steps: int) -> dict:
    """Tokens/s and MFU of `trends lm`'s training step (forward and backward under the run's precision, AdamW)
    for the config `overrides` compose, on random tokens; MFU against the matmul peak of the precision used."""
    with initialize_config_dir(str(REPO / "trends" / "conf"), version_base="1.3"):
        cfg = compose("lm", overrides=overrides)
    m, t = cfg.model, cfg.train
    precision = choose_precision(device, t.amp)
    model = GPT(GPTConfig(vocab_size=65, **OmegaConf.to_container(m))).to(device)
    forward = torch.compile(model) if t.compile and device.type == "cuda" else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    x = torch.randint(0, 65, (t.batch_size, m.block_size), device=device)

    def step():
        with precision.autocast():
            _, loss = forward(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(3 if device.type == "cpu" else 10):  # warm-up (and compilation)
        step()
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - tic
    tokens_per_s = steps * t.batch_size * m.block_size / seconds
    return {"params_M": model.num_params() / 1e6, "tokens_per_s": tokens_per_s, "precision": precision.name,
            "mfu": model.flops_per_token() * tokens_per_s / measure_peak_flops(device, precision.dtype)}


def default_width(n_layer: int, device: torch.device) -> GPT:
    """A default-width model (128 wide, block 64) of n_layer layers: what `GPT.generate` is timed on."""
    return GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=n_layer, n_head=4, n_embd=128, dropout=0.0,
                         bias=False)).to(device)


def quality(overrides: list[str]) -> dict:
    out = Path(os.environ.get("BENCH_OUTPUTS", REPO / "outputs" / "bench"))
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trends", "lm", *overrides], cwd=REPO, check=True,
                   env={**os.environ, "TRENDS_OUTPUTS": str(out)}, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - tic
    run = max((out / "lm").iterdir(), key=lambda p: p.stat().st_mtime)
    summary = json.loads((run / "summary.json").read_text())
    return {"wall_s": wall, **summary["metrics"], "run": str(run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--decode", action="store_true", help="only the generation speeds")
    args = parser.parse_args()
    os.environ.setdefault("TRENDS_DATA", str(REPO.parent / "shared" / "data"))
    device = resolve_device(args.device)
    if args.decode:
        models = {layers: default_width(layers, device) for layers in (4, 2)}  # distill's teacher and student
        slow, fast = decoding_rates(models, 1000, cache=False), decoding_rates(models, 1000, cache=True)
        print(f"{'layers × width':16s} {'no cache chars/s':>17s} {'KV cache chars/s':>17s}  (median of 7 rounds, "
              "the models timed in turns)")
        for layers in models:
            print(f"{layers} × 128{'':9s} {slow[layers]:17,.0f} {fast[layers]:17,.0f}")
        print(f"2-layer student vs 4-layer teacher: {fast[2] / fast[4]:.2f}× with the KV cache, "
              f"{slow[2] / slow[4]:.2f}× without")
        return
    print(f"device: {device}, peak {measure_peak_flops(device) / 1e9:.0f} GFLOP/s fp32, "
          f"{measure_peak_flops(device, torch.bfloat16) / 1e9:.0f} bf16 (matmul probe; MFU uses the run's precision)")
    print(f"{'config':28s} {'params':>8s} {'precision':>9s} {'tokens/s':>10s} {'MFU':>6s}")
    for name, overrides in CONFIGS.items():
        r = throughput(overrides, device, args.steps)
        print(f"{name:28s} {r['params_M']:7.2f}M {r['precision']:>9s} {r['tokens_per_s']:10,.0f} {r['mfu']:6.1%}")
    if args.skip_quality or device.type != "cpu":
        return
    print(f"\n{'recipe':28s} {'wall s':>7s} {'best val':>9s} {'tokens/s':>10s}")
    for name, overrides in (("nanoGPT CPU recipe", NANOGPT_CPU), ("trends lm default", [])):
        r = quality(overrides)
        print(f"{name:28s} {r['wall_s']:7.1f} {r['best_val_loss']:9.4f} {r['tokens_per_s']:10,.0f}")


if __name__ == "__main__":
    main()

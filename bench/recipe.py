"""Benchmark the tricks since GPT-2 one at a time: the training step's time (forward, backward, optimizer) of the
default `trends lm` model as each rung of `trends recipe` adds its trick, in alternation (the machine drifts).

    python bench/recipe.py              # the default size on this machine's CPU (or GPU), 30 steps × 5 rounds
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trends.core.device import resolve_device  # noqa: E402
from trends.core.precision import choose_precision  # noqa: E402
from trends.text.model import GPT, GPTConfig  # noqa: E402
from trends.text.optim import build_optimizer  # noqa: E402

CONF = REPO / "trends" / "conf"


def rungs() -> dict[str, tuple[dict, bool]]:
    """Each rung of `trends recipe` (trends/conf/recipe.yaml's ladder.rungs, in order) as (model switches, Muon?),
    read from its rung file; the last rung is recipe=modern itself."""
    out = {}
    for rung in OmegaConf.load(CONF / "recipe.yaml").ladder.rungs:
        cfg = OmegaConf.load(CONF / "recipe" / "rung" / f"{rung}.yaml")
        muon = "defaults" in cfg  # the rung that selects recipe=modern, whose optimiser is Muon
        if muon:
            cfg = OmegaConf.load(CONF / "text" / "recipe" / "modern.yaml")
        out[rung] = (OmegaConf.to_container(cfg.model) if "model" in cfg else {}, muon)
    return out


def step_time(tricks: dict, muon: bool, device, precision, steps: int) -> float:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False,
                          **tricks)).to(device)
    o = OmegaConf.create({"name": "muon" if muon else "adamw", "lr": 5e-3, "muon_lr": 5e-3, "muon_momentum": 0.95,
                          "betas": [0.9, 0.99], "weight_decay": 0.1})
    optimizer = build_optimizer(model, o)
    x = torch.randint(0, 65, (32, 64), device=device)

    def one() -> None:
        with precision.autocast():
            loss = model(x, x)[1]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = resolve_device("auto")
    precision = choose_precision(device, "auto")
    ladder = rungs()
    times: dict[str, list[float]] = {name: [] for name in ladder}
    for _ in range(args.rounds):
        for name, (tricks, muon) in ladder.items():
            times[name].append(step_time(tricks, muon, device, precision, args.steps))
    base = statistics.median(next(iter(times.values())))
    print(f"{device}, {precision.name}; training step of the default lm model (batch 32 × 64), median of "
          f"{args.rounds} rounds of {args.steps} steps")
    for name, values in times.items():
        t = statistics.median(values)
        print(f"{name:12s} {t * 1e3:7.1f} ms/step  {t / base:5.2f}× gpt2")


if __name__ == "__main__":
    main()

"""Is `trends scaling`'s learning-rate rule, lr = 0.64 / width, right at every size? A short per-size check: the
ladder at half, once and twice the rule's rate, same steps, one table. An untuned large model makes a false law.

    python bench/scaling_lr.py                                # depths 1, 3, 6; factors 0.5, 1, 2; 300 steps (≈ 7 min)
    python bench/scaling_lr.py --depths 2,4,6 --steps 800

Each factor is one real `trends scaling` sweep (lr overridden as `${div:0.64·factor,${model.n_embd}}`) into a scratch
outputs folder; the table is read from the sweeps' summary.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

RULE = 0.64  # lr × width in trends/conf/scaling.yaml


def sweep(factor: float, depths: str, steps: int, outputs: Path) -> dict[int, float]:
    """One ladder at `factor` × the rule's rate: depth → final validation loss."""
    args = [sys.executable, "-m", "trends", "scaling", f"scaling.depths=[{depths}]", f"train.steps={steps}",
            f"train.eval_every={steps}", f"optim.lr='${{div:{RULE * factor:g},${{model.n_embd}}}}'"]
    env = {**os.environ, "TRENDS_OUTPUTS": str(outputs / f"x{factor:g}")}
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    (summary,) = (outputs / f"x{factor:g}").glob("scaling/multirun/*/summary.json")
    return {r["n_layer"]: r["final_val_loss"] for r in json.loads(summary.read_text())["rungs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="1,3,6")
    parser.add_argument("--factors", default="0.5,1,2")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    factors = [float(f) for f in args.factors.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        losses = {f: sweep(f, args.depths, args.steps, Path(scratch)) for f in factors}
    table = Table(title=f"final val loss after {args.steps} steps at factor × (lr = {RULE} / width); * = best")
    table.add_column("depth × width")
    for f in factors:
        table.add_column(f"× {f:g}", justify="right")
    for depth in sorted(losses[factors[0]]):
        row = {f: losses[f][depth] for f in factors}
        best = min(row, key=row.get)
        table.add_row(f"{depth} × {32 * depth}", *(f"{v:.4f}{' *' if f == best else ''}" for f, v in row.items()))
    Console().print(table)


if __name__ == "__main__":
    main()

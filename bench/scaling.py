"""Beyond one process, measured: each demo as one process and as a torchrun data-parallel run, and a sweep with
Hydra's basic launcher beside joblib's.

    python bench/scaling.py --nproc 2                       # on this machine's cores (gloo)
    python bench/scaling.py --nproc 8 --gpu                 # one node of 8 GPUs (NCCL), the GPU presets
    python bench/scaling.py --only lm,sweep

Every run goes through the real CLI (`trends ...` / `torchrun ... -m trends ...`) into a scratch outputs folder; the
throughput is the one the run itself records in summary.json (training time only), the wall time is the whole
command's. On a CPU one process already uses every core through intra-op threads, so the torchrun runs give each
rank cores / nproc threads: the comparison is then one process against nproc processes on the same cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def cases(data: Path, gpu: bool) -> dict[str, tuple[list[str], str]]:
    """name → (CLI arguments, how to read its throughput from summary.json)."""
    images = ["data=imagefolder", f"data.path={data / 'cifar10_jpg'}"]
    if gpu:
        return {
            "lm": (["lm", "experiment=shakespeare_gpu", "train.steps=1000", "train.eval_every=1000"], "tokens/s"),
            "contrastive": (["contrastive", "experiment=cifar10_resnet18", *images, "train.epochs=5",
                             "eval.probe.epochs=0"], "images/s"),
            "vit-vs-cnn": (["vit-vs-cnn", "experiment=cifar10_gpu", *images, "data.fractions=[1.0]",
                            "train.steps=600"], "images/s"),
        }
    return {
        "lm": (["lm", "train.steps=300", "train.eval_every=300"], "tokens/s"),
        "contrastive": (["contrastive", *images, "train.epochs=1", "eval.probe.epochs=0"], "images/s"),
        "vit-vs-cnn": (["vit-vs-cnn", *images, "data.fractions=[1.0]", "train.steps=200"], "images/s"),
    }


def throughput(summary: dict) -> float:
    metrics = summary.get("metrics", {})
    for key in ("tokens_per_s", "images_per_s"):
        if key in metrics:
            return metrics[key]
    cells = summary["cells"]  # vit-vs-cnn: the mean over its (model, fraction) cells
    return sum(c["images_per_s"] for c in cells) / len(cells)


def launch(args: list[str], nproc: int, outputs: Path, env: dict) -> tuple[dict, float]:
    """Run one CLI command (under torchrun when nproc > 1); its summary.json and the wall seconds."""
    command = [sys.executable, "-m", "trends", *args]
    if nproc > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   "-m", "trends", *args]
    tic = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**env, "TRENDS_OUTPUTS": str(outputs)}, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    (summary,) = sorted(outputs.glob(f"{args[0]}/*/summary.json"))
    return json.loads(summary.read_text()), seconds


def sweep(data: Path, n_jobs: int, outputs: Path, env: dict) -> float:
    """Wall seconds of an 8-seed GCN sweep with the basic launcher (n_jobs=1) or joblib."""
    launcher = [] if n_jobs == 1 else ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    command = [sys.executable, "-m", "trends", "gnn", "-m", "seed=0,1,2,3,4,5,6,7", f"data.root={data}", *launcher]
    tic = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**env, "TRENDS_OUTPUTS": str(outputs)}, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2, help="processes of the torchrun runs")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("TRENDS_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--gpu", action="store_true", help="the GPU presets, one GPU per process")
    parser.add_argument("--only", default="lm,contrastive,vit-vs-cnn,sweep", help="comma-separated cases")
    args = parser.parse_args()
    wanted = args.only.split(",")
    cores = os.cpu_count() or 1
    env = {**os.environ, "TRENDS_DATA": str(args.data)}
    console = Console(width=150)
    table = Table(title=f"1 process vs torchrun × {args.nproc} ({'GPUs' if args.gpu else f'{cores} CPU cores'})")
    for column in ("run", "unit", "1 process", f"{args.nproc} processes", "speed-up", "wall 1 → N (s)",
                   "headline 1 → N"):
        table.add_column(column, justify="right" if column not in ("run", "unit") else "left")
    with tempfile.TemporaryDirectory() as scratch:
        for name, (cli_args, unit) in cases(args.data, args.gpu).items():
            if name not in wanted:
                continue
            per_rank = {} if args.gpu else {"OMP_NUM_THREADS": str(max(1, cores // args.nproc))}
            one, one_s = launch(cli_args, 1, Path(scratch) / f"{name}-1", env)
            many, many_s = launch(cli_args, args.nproc, Path(scratch) / f"{name}-n", {**env, **per_rank})
            key = one["headline"] if one["headline"] in one.get("metrics", {}) else None
            headline = (f"{one['metrics'][key]:.3f} → {many['metrics'][key]:.3f} ({key})" if key else "")
            table.add_row(name, unit, f"{throughput(one):,.0f}", f"{throughput(many):,.0f}",
                          f"{throughput(many) / throughput(one):.2f}×", f"{one_s:.0f} → {many_s:.0f}", headline)
            console.print(table)
        if "sweep" in wanted:
            basic = sweep(args.data, 1, Path(scratch) / "sweep-1", env)
            parallel = sweep(args.data, args.nproc, Path(scratch) / "sweep-n",
                             {**env, "OMP_NUM_THREADS": str(max(1, cores // args.nproc))})
            table.add_row("gnn sweep, 8 seeds", "wall s", f"{basic:.0f}", f"{parallel:.0f} (joblib)",
                          f"{basic / parallel:.2f}×", "", "")
    console.print(table)


if __name__ == "__main__":
    main()

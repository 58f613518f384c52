"""Depth and oversmoothing: how far apart message passing leaves the nodes, and a sweep's accuracy against depth.

Each node run measures its last hidden layer (at the picked epoch): the Dirichlet energy
E(X) = 1/N Σ_i Σ_{j ∈ N(i)} ‖x_i − x_j‖² (Rusch, Bronstein & Mishra 2023: zero exactly when every node equals its
neighbours, so it falls towards zero as a deep GCN smooths them together); the same divided by the mean squared norm
1/N Σ_i ‖x_i‖², which a layer's scale does not change (a plain deep GCN first inflates its features, then collapses
them: the raw energy rises before it falls); and the mean cosine similarity of every pair of nodes (one when all point
the same way). A sweep over `model.layers` (`trends gnn -m experiment=depth`)
ends with analyse_sweep (the callback trends/conf/gnn.yaml names): test accuracy and both measures against depth per
model, mean ± std over seeds, as depth.md/.csv, two figures and the sweep's summary.json.
"""
from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from trends.gnn import plots
from trends.records import layout
from trends.records.files import write_atomic, write_json_atomic
from trends.records.tables import markdown_table, write_csv

log = logging.getLogger("trends.gnn")


# -- the measures -------------------------------------------------------------------------------------------------
@torch.no_grad()
def dirichlet_energy(x: Tensor, edge_index: Tensor) -> float:
    """1/N Σ over the edges (i, j) of edge_index (both directions of an undirected edge) of ‖x_i − x_j‖²."""
    x = x.double()
    src, dst = edge_index
    return float((x[src] - x[dst]).pow(2).sum() / x.size(0))


@torch.no_grad()
def normalized_dirichlet_energy(x: Tensor, edge_index: Tensor) -> float:
    """dirichlet_energy(x) / (1/N Σ_i ‖x_i‖²): the energy per unit of squared norm, unchanged by scaling x. NaN where
    every x_i is zero."""
    norm = float(x.double().pow(2).sum() / x.size(0))
    return dirichlet_energy(x, edge_index) / norm if norm > 0 else math.nan


@torch.no_grad()
def mean_cosine_similarity(x: Tensor) -> float:
    """The mean cosine similarity over all pairs of distinct nodes whose vector is not zero (a ReLU can zero a node
    out: it has no direction), from the sum of the unit vectors: Σ_{i≠j} u_i·u_j = ‖Σ u_i‖² − n. NaN for fewer than
    two such nodes."""
    x = x.double()
    x = x[x.norm(dim=1) > 0]
    n = x.size(0)
    if n < 2:
        return math.nan
    total = torch.nn.functional.normalize(x, dim=1).sum(dim=0)
    return float((total.dot(total) - n) / (n * (n - 1)))


MEASURES = ("dirichlet_energy", "normalized_energy", "mean_cosine")  # node runs' metrics, depth.csv's columns


def oversmoothing(x: Tensor, edge_index: Tensor) -> dict[str, float]:
    """The three measures of node features `x` on the graph `edge_index`, rounded for the summary."""
    return {"dirichlet_energy": float(f"{dirichlet_energy(x, edge_index):.4g}"),
            "normalized_energy": float(f"{normalized_dirichlet_energy(x, edge_index):.4g}"),
            "mean_cosine": round(mean_cosine_similarity(x), 4)}


# -- the sweep ----------------------------------------------------------------------------------------------------
@dataclass
class Job:
    model: str
    data: str
    layers: int
    seed: int
    test_acc: float
    measures: dict[str, float]  # MEASURES: NaN where the run did not record one


def load_jobs(sweep_dir: Path) -> tuple[list[Job], list[str]]:
    """The completed node-classification jobs of a sweep, and the names of those left out (with why)."""
    jobs, left_out = [], []
    for folder in layout.job_folders(sweep_dir):
        summary = layout.read_summary(folder)
        config = folder / ".hydra" / "config.yaml"
        metrics = summary.get("metrics", {})
        if summary.get("status") != "completed" or not config.is_file() or "test_acc" not in metrics:
            left_out.append(f"{folder.name} ({summary.get('status', 'no summary')})")
            continue
        cfg = OmegaConf.load(config)
        jobs.append(Job(cfg.model.name, cfg.data.name, int(cfg.model.layers), int(cfg.seed), metrics["test_acc"],
                        {k: metrics.get(k, math.nan) for k in MEASURES}))
    return jobs, left_out


def depth_rows(jobs: list[Job]) -> list[dict]:
    """One row per model, dataset and depth, in the sweep's order of models and rising depth: the test accuracy as
    mean, std and count over seeds, and the mean of each measure."""
    groups: dict[tuple[str, str], dict[int, list[Job]]] = {}
    for job in jobs:
        groups.setdefault((job.model, job.data), {}).setdefault(job.layers, []).append(job)
    rows = []
    for (model, data), depths in groups.items():
        for layers in sorted(depths):
            members = depths[layers]
            accs = [j.test_acc for j in members]
            rows.append({"model": model, "data": data, "layers": layers, "seeds": len(members),
                         "test_acc": round(statistics.fmean(accs), 2),
                         "test_acc_std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
                         **{k: float(f"{_mean([j.measures[k] for j in members]):.4g}") for k in MEASURES}})
    return rows


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def finding(rows: list[dict]) -> str:
    """Each model's accuracy at its shallowest and deepest depth, and how alike its nodes ended up."""
    parts = []
    for (model, data), members in _by_line(rows).items():
        low, high = members[0], members[-1]
        change = high["test_acc"] - low["test_acc"]
        verb = "falls" if change <= -1 else "rises" if change >= 1 else "holds"
        parts.append(f"{model.upper()} on {data} {verb} from {low['test_acc']:.1f} % at {low['layers']} layers to "
                     f"{high['test_acc']:.1f} % at {high['layers']} ({change:+.1f} points; mean cosine of node pairs "
                     f"{low['mean_cosine']:.2f} → {high['mean_cosine']:.2f}, normalised Dirichlet energy "
                     f"{low['normalized_energy']:.3g} → {high['normalized_energy']:.3g})")
    return "; ".join(parts)


def _by_line(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    lines: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        lines.setdefault((row["model"], row["data"]), []).append(row)
    return lines


def analyse(sweep_dir: Path) -> dict | None:
    """The depth table, figures and summary of a sweep over `model.layers`; None (nothing written) where the sweep
    varies no depth: another kind of gnn sweep, whose table and report are the usual ones."""
    sweep_dir = Path(sweep_dir)
    jobs, left_out = load_jobs(sweep_dir)
    if len({j.layers for j in jobs}) < 2:
        return None
    rows = depth_rows(jobs)
    by_line = _by_line(rows)
    several_sets = len({data for _, data in by_line}) > 1
    plots.depth_plots(sweep_dir / layout.PLOTS, {f"{model.upper()} ({data})" if several_sets else model.upper(): members
                                                 for (model, data), members in by_line.items()})
    write_csv(sweep_dir / "depth.csv", rows)
    write_atomic(sweep_dir / "depth.md", markdown_table(rows) + "\n")
    summary = {"status": "completed", "command": "gnn", "sweep": str(sweep_dir), "headline": "test_acc",
               "finding": finding(rows), "lead_plot": "accuracy_vs_depth.png", "depths": rows, "left_out": left_out}
    write_json_atomic(sweep_dir / layout.SUMMARY, summary)
    log.info("depth: %s", summary["finding"])
    for (model, data), members in by_line.items():
        log.info("  %s on %s, test accuracy by depth: %s", model, data, "  ".join(
            f"{r['layers']}: {r['test_acc']:.1f} ± {r['test_acc_std']:.1f}" for r in members))
    return summary


def analyse_sweep(sweep_dir: Path, config: DictConfig) -> dict | None:
    """The end of a `trends gnn -m` sweep (hydra.callbacks.depth_analysis)."""
    return analyse(sweep_dir)

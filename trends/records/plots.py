"""Headless matplotlib helpers: every run writes PNGs under its plots/ folder."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from .files import write_atomic  # noqa: E402


def line_plot(path: Path, series: dict[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str,
              ylabel: str, title: str, logx: bool = False, hlines: dict[str, float] | None = None) -> Path:
    """One line per named (xs, ys) series, optional labelled horizontal reference lines. Points and lines that are
    not finite numbers (a diverged run logs NaN) are skipped: they would leave matplotlib no axis limits to set."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (xs, ys) in series.items():
        xs, ys = _finite_points(xs, ys)
        if xs:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=label)
    for label, y in (hlines or {}).items():
        if _finite(y):
            ax.axhline(y, linestyle="--", color="grey", linewidth=1)
            ax.annotate(label, (0.01, y), xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="grey")
    if logx and ax.lines:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    return save(fig, path)


def _finite_points(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """The (x, y) pairs where both are finite numbers, as two lists."""
    pairs = [(x, y) for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))


def learning_curves(path: Path, records: Iterable[dict], metric: str, *, x: str = "step",
                    title: str = "") -> Path:
    """Plot `metric` against `x` for every split found in metrics.jsonl records."""
    series: dict[str, tuple[list, list]] = {}
    for r in records:
        if metric in r and r[metric] is not None:
            xs, ys = series.setdefault(r["split"], ([], []))
            xs.append(r[x])
            ys.append(r[metric])
    return line_plot(path, series, xlabel=x, ylabel=metric, title=title or metric)


def scatter_pca(path: Path, features, labels, *, title: str, class_names: Sequence[str] | None = None) -> Path:
    """Features (N, D), a tensor or an array, projected on their two directions of largest variance (PCA), coloured
    by class (labels: (N,) ints)."""
    features = features.detach().float().cpu().numpy() if hasattr(features, "detach") else np.asarray(features)
    centred = features - features.mean(axis=0)
    _, _, v = np.linalg.svd(centred, full_matrices=False)
    points = centred @ v[:2].T
    labels = labels.cpu().numpy() if hasattr(labels, "cpu") else labels
    fig, ax = plt.subplots(figsize=(6, 6))
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
    if class_names is not None:
        handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(i))) for i in range(len(class_names))]
        ax.legend(handles, class_names, fontsize=7, loc="best")
    ax.set(title=title, xticks=[], yticks=[])
    return save(fig, path)


def save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=110))
    plt.close(fig)
    return path

"""The end of a run: the (model, fraction) → accuracy table in the summary and the terminal, the gap between the
CNN and the ViT (where it peaks, how much it narrows after, where if anywhere the ViT catches up), how much of it each
further transformer (the CCT, the hybrid) closes, and the accuracy-against-data plot."""
from __future__ import annotations

import logging
import math

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from trends.records import plots
from trends.records.findings import above_chance
from trends.records.run import Run

log = logging.getLogger("trends.vit_vs_cnn")
CNN, VIT = "resnet", "vit"


def fmt(fraction: float) -> str:
    """0.1 → "0.1", 1.0 → "1": the fraction as it appears in metric names."""
    return f"{fraction:g}"


def key(name: str, fraction: float) -> str:
    return f"{name}/{fmt(fraction)}"


def headline(names: list[str], fractions: list[float]) -> str:
    """The CNN's lead at the largest fraction when both are in the grid, else the accuracy of its last cell."""
    if CNN in names and VIT in names:
        return f"gap/{fmt(fractions[-1])}"
    return f"acc/{key(names[-1], fractions[-1])}"


def crossover(xs: list[float], cnn: list[float], vit: list[float]) -> float | None:
    """Training-set size where the ViT's accuracy first reaches the CNN's, interpolated linearly in log(size)
    between grid points; None if it stays behind (or ahead) across the whole grid."""
    gaps = [v - c for c, v in zip(cnn, vit)]
    for i in range(1, len(xs)):
        if gaps[i - 1] < 0 <= gaps[i]:
            t = gaps[i - 1] / (gaps[i - 1] - gaps[i])
            return math.exp(math.log(xs[i - 1]) + t * (math.log(xs[i]) - math.log(xs[i - 1])))
    return None


def finish(run: Run, cfg: DictConfig, names: list[str], fractions: list[float], results: dict,
           contenders: dict) -> None:
    """Summary metrics (flat `acc/<model>/<fraction>`, `gap/<fraction>`), the nested table, plot and terminal table."""
    images = {f: results[key(names[0], f)]["images"] for f in fractions}
    table = {name: {fmt(f): round(results[key(name, f)]["acc"], 4) for f in fractions} for name in names}
    for name in names:
        cells = [results[key(name, f)] for f in fractions]
        seconds = sum(c["steps"] * cfg.train.batch_size / c["images_per_s"] for c in cells if c["images_per_s"])
        images_seen = sum(c["steps"] * cfg.train.batch_size for c in cells if c["images_per_s"])
        contenders[name]["images_per_s"] = round(images_seen / seconds, 1) if seconds else 0.0
        contenders[name]["mfu"] = round(sum(c["mfu"] for c in cells) / len(cells), 5)
    metrics = {f"acc/{k}": round(r["acc"], 4) for k, r in results.items()}
    summary: dict = {"table": table, "cells": list(results.values()), "models": contenders,
                     "train_images": {fmt(f): n for f, n in images.items()}}
    if CNN in names and VIT in names:
        gaps = {fmt(f): round(table[CNN][fmt(f)] - table[VIT][fmt(f)], 4) for f in fractions}
        metrics.update({f"gap/{f}": g for f, g in gaps.items()})
        cross = crossover([images[f] for f in fractions], [table[CNN][fmt(f)] for f in fractions],
                          [table[VIT][fmt(f)] for f in fractions])
        peak = max(gaps, key=lambda f: gaps[f])
        closes = {name: {fmt(f): closed_share(table, name, fmt(f)) for f in fractions}
                  for name in names if name not in (CNN, VIT)}
        summary.update(gap=gaps, crossover_images=None if cross is None else round(cross),
                       cnn_wins_everywhere=all(g > 0 for g in gaps.values()),
                       gap_peak={"images": images[float(peak)], "gap": gaps[peak]},
                       gap_narrowing=round(gaps[peak] - gaps[fmt(fractions[-1])], 4),
                       gap_trend=gap_trend([images[f] for f in fractions], list(gaps.values())), closes=closes)
        metrics["gap_narrowing"] = summary["gap_narrowing"]
        metrics.update({f"closes/{name}/{f}": share for name, row in closes.items() for f, share in row.items()
                        if share is not None})
    metrics.update({f"images_per_s/{n}": contenders[n]["images_per_s"] for n in names})
    run.update(metrics=metrics, **summary)
    run.update(finding=finding(run.summary), lead_plot="accuracy_vs_data.png")

    path = accuracy_plot(run.plots_dir / "accuracy_vs_data.png", names, fractions, images, table, contenders,
                         summary.get("crossover_images"), cfg)
    training_loss_plot(run.plots_dir / "training_loss.png", run.history("train"))
    Console().print(rich_table(names, fractions, images, table, contenders, summary.get("closes", {})))
    if "gap" in summary:
        where = (f"the ViT catches up at ≈{summary['crossover_images']:,} images"
                 if summary["crossover_images"] else "no crossover inside the grid")
        log.info("CNN − ViT gap (accuracy points): %s; %s; the gap %s",
                 ", ".join(f"{100 * g:+.1f} @ {images[float(f)]:,}" for f, g in summary["gap"].items()), where,
                 summary["gap_trend"])
        for name, row in summary["closes"].items():
            log.info("%s closes %s of the ViT's gap to the CNN", name,
                     ", ".join("n/a" if c is None else f"{c:.0%}" for c in row.values()))
    log.info("plot: %s", path)


def closed_share(table: dict, name: str, fraction: str) -> float | None:
    """The share of the ViT's gap to the CNN that `name` closes at `fraction`: (name − ViT) / (CNN − ViT); 1 means
    it matches the CNN, above 1 it beats it, below 0 it is worse than the ViT. None where the ViT is not behind."""
    gap = table[CNN][fraction] - table[VIT][fraction]
    return round((table[name][fraction] - table[VIT][fraction]) / gap, 4) if gap > 0 else None


def finding(summary: dict) -> str:
    """The grid in one sentence: at the most training images, the CNN's accuracy against the ViT's and the CNN's
    lead there and at the smaller sizes, whether the gap narrows and where (if anywhere) the ViT catches up; with one
    model, its accuracy against a uniform guess over the classes; then how much of the ViT's gap each further
    transformer closes. `summary`: the run's, with `table` ({model: {fraction: accuracy}}), `train_images`
    ({fraction: images}), and, with both models, `gap`, `crossover_images`, `gap_trend` and `closes` (what finish
    writes); `classes` where the run recorded them."""
    table, images = summary["table"], summary["train_images"]
    largest = max(images, key=lambda f: images[f])
    where = f"at {images[largest]:,} training images"
    if "gap" not in summary:
        name = next(iter(table))
        acc = table[name][largest]
        classes = len(summary.get("classes") or [])
        chance = f" — {above_chance(100 * acc, classes)}" if classes else ""
        return f"{where} {name} reaches {100 * acc:.1f} % test accuracy{chance}"
    gaps = summary["gap"]
    lead = round(100 * gaps[largest], 1)  # points, as the sentence gives them
    verdict = "the two tie" if lead == 0 else f"{'the CNN' if lead > 0 else 'the ViT'} leads by {abs(lead):.1f} points"
    smaller = [f"{100 * gaps[f]:+.1f} at {images[f]:,}" for f in sorted(gaps, key=lambda f: images[f])
               if f != largest]
    sentence = (f"{where} the CNN reaches {100 * table[CNN][largest]:.1f} % test accuracy and the ViT "
                f"{100 * table[VIT][largest]:.1f} % — {verdict}"
                + (f" (CNN − ViT: {', '.join(smaller)} images; the gap {summary['gap_trend']})" if smaller else ""))
    cross = summary.get("crossover_images")
    if cross:
        sentence += f" — and the ViT catches up at ≈{cross:,} images"
    elif smaller and lead > 0:
        sentence += " — and the ViT does not catch up inside the grid"
    elif smaller and all(g < 0 for g in gaps.values()):
        sentence += " — the ViT leads at every size"
    for name, row in summary.get("closes", {}).items():
        shares = {f: c for f, c in row.items() if c is not None}
        if shares:
            least = min(shares, key=lambda f: shares[f])
            span = (f"{100 * shares[least]:.0f} %" if len(shares) == 1 else
                    f"{100 * shares[least]:.0f}–{100 * max(shares.values()):.0f} %")
            sentence += (f"; {name} closes {span} of the ViT's gap to the CNN"
                         + (f" (the least at {images[least]:,} images)" if len(shares) > 1 else ""))
    return sentence


def gap_trend(images: list[int], gaps: list[float]) -> str:
    """How the CNN − ViT gap moves along the grid: where it peaks and by how many points it narrows after."""
    if len(gaps) < 2:
        return "n/a (one fraction)"
    peak = max(range(len(gaps)), key=lambda i: gaps[i])
    drop = round(100 * (gaps[peak] - gaps[-1]), 1)
    if peak == len(gaps) - 1 or drop == 0:
        return "widens with more data" if gaps[-1] > gaps[0] else "stays the same"
    if peak == 0:
        return f"narrows with more data, by {drop:.1f} points"
    return f"peaks at {images[peak]:,} images, then narrows by {drop:.1f} points"


def accuracy_plot(path, names, fractions, images, table, contenders, cross, cfg) -> str:
    """Left: test accuracy (%) against training images (log x), one line per model; the CNN − ViT gap is written at
    every grid point and the crossover, if any, is a vertical line. Right (when the grid has the CNN and the ViT):
    each transformer's gap to the CNN against training images, the ViT's peak marked."""
    both = CNN in names and VIT in names
    fig, axes = plots.plt.subplots(1, 2 if both else 1, figsize=(12.5 if both else 7, 4.6), squeeze=False)
    ax = axes[0][0]
    xs = [images[f] for f in fractions]
    for name in names:
        c = contenders[name]
        ax.plot(xs, [100 * table[name][fmt(f)] for f in fractions], marker="o", color=_colour(names, name),
                label=f"{name} ({c['params'] / 1e6:.2g}M params, {c['flops_per_image'] / 1e6:.3g} MFLOPs)")
    if both:
        for f, x in zip(fractions, xs):
            lo, hi = sorted((100 * table[VIT][fmt(f)], 100 * table[CNN][fmt(f)]))
            ax.vlines(x, lo, hi, colors="grey", linestyles=":", linewidth=1)
            gap = 100 * (table[CNN][fmt(f)] - table[VIT][fmt(f)])
            ax.annotate(f"{gap:+.1f}", (x, (lo + hi) / 2), textcoords="offset points", xytext=(4, 0), fontsize=8,
                        color="grey", va="center")
        if cross is not None:
            ax.axvline(cross, color="black", linestyle="--", linewidth=1)
            ax.annotate(f"ViT catches up ≈{cross:,.0f}", (cross, 0.02), xycoords=("data", "axes fraction"),
                        textcoords="offset points", xytext=(4, 0), fontsize=8)
    budget = (f"{cfg.train.epochs:g} epochs per cell" if cfg.train.epochs is not None
              else f"{cfg.train.steps} steps × {cfg.train.batch_size} images per cell")
    if cfg.train.epochs is not None and cfg.train.min_steps:
        budget += f", ≥ {cfg.train.min_steps} steps"
    _log_sizes(ax, xs, "test accuracy (%)", f"ViT vs CNN as data grows ({budget}; grey: CNN − ViT, points)")
    if both:
        ax = axes[0][1]
        for name in [n for n in names if n != CNN]:
            gaps = [100 * (table[CNN][fmt(f)] - table[name][fmt(f)]) for f in fractions]
            ax.plot(xs, gaps, marker="o", color=_colour(names, name), label=f"{CNN} − {name}")
            if name == VIT:
                i = max(range(len(gaps)), key=lambda i: gaps[i])
                ax.annotate(f"peak {gaps[i]:+.1f}", (xs[i], gaps[i]), textcoords="offset points", xytext=(0, 6),
                            fontsize=8, ha="center")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.margins(y=0.12)  # room for the peak label under the title
        _log_sizes(ax, xs, "CNN's lead (accuracy points)", "the gap to the CNN: above 0 the CNN is ahead")
    fig.tight_layout()
    return str(plots.save(fig, path))


def _colour(names: list[str], name: str) -> str:
    return f"C{names.index(name)}"


def _log_sizes(ax, xs: list[int], ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.minorticks_off()
    ax.margins(x=0.1)  # room for the labels right of the last point
    ax.set(xlabel="training images (log scale)", ylabel=ylabel, title=title)
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def training_loss_plot(path, records: list[dict]) -> None:
    """Training loss against step within each cell, one colour per model and darker for more data: how fast each
    model fits (or memorises) each subset."""
    runs: dict[tuple[str, float], tuple[list, list]] = {}
    for r in records:
        xs, ys = runs.setdefault((r["model"], r["fraction"]), ([], []))
        xs.append(r["cell_step"])
        ys.append(r["loss"])
    if not runs:
        return
    names = list(dict.fromkeys(name for name, _ in runs))
    fractions = sorted({f for _, f in runs})
    fig, ax = plots.plt.subplots(figsize=(7, 4.6))
    for (name, f), (xs, ys) in runs.items():
        shade = 0.35 + 0.65 * (fractions.index(f) + 1) / len(fractions)
        ax.plot(xs, ys, color=f"C{names.index(name)}", alpha=shade, label=key(name, f))
    ax.set(xlabel="step (within the cell)", ylabel="training loss (label-smoothed)",
           title="training loss per (model, fraction): fitting the subset vs generalising")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    plots.save(fig, path)


def rich_table(names, fractions, images, table, contenders, closes: dict) -> Table:
    """Accuracy per model (rows) and training-set size (columns), with each model's cost; then the gap, and the
    share of it each further transformer closes (`closes`: the summary's)."""
    out = Table(title="ViT vs CNN: test accuracy by number of training images (fraction)")
    for col in ("model", "params", "MFLOPs", "img/s", "MFU"):
        out.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for f in fractions:
        out.add_column(f"{images[f]:,}\n({fmt(f)})", justify="right", no_wrap=True)
    for name in names:
        c = contenders[name]
        out.add_row(name, f"{c['params'] / 1e6:.3f}M", f"{c['flops_per_image'] / 1e6:.1f}",
                    f"{c['images_per_s']:,.0f}", f"{c['mfu']:.1%}",
                    *(f"{100 * table[name][fmt(f)]:.1f}%" for f in fractions))
    if CNN in names and VIT in names:
        out.add_row("CNN − ViT", "", "", "", "",
                    *(f"{100 * (table[CNN][fmt(f)] - table[VIT][fmt(f)]):+.1f}" for f in fractions))
        for name, row in closes.items():
            out.add_row(f"{name} closes", "", "", "", "", *("–" if c is None else f"{c:.0%}" for c in row.values()))
    return out

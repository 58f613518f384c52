"""The scaling figures: loss against parameters and against compute (log-log, the rungs, the fit, the largest rung
predicted from the others), every rung's learning curve in one figure, the IsoFLOP valleys, and the famous models
far outside the data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FormatStrFormatter

from trends.records.plots import plt, save
from trends.scaling.fit import PowerLaw
from trends.scaling.isoflop import Valley
from trends.scaling.reach import Famous, duration
from trends.scaling.rungs import Rung


def law_plot(path: Path, x, y, labels, law: PowerLaw, held_out: PowerLaw | None, *, xlabel: str, title: str,
             curves: list | None = None) -> Path:
    """Measured points, the law fitted to all of them, and the law fitted without the largest: its prediction of the
    largest point drawn as a hollow marker. curves: optional (xs, ys) learning curves drawn faintly behind."""
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    for xs, ys in curves or []:
        ax.plot(xs, ys, color="grey", alpha=0.35, linewidth=1)
    span = np.geomspace(min(x) / 1.5, max(x) * 1.5, 200)
    ax.plot(span, law(span), color="C0",
            label=f"fit: L = {law.E:.3f} + {law.A:.3g}·x^(−{law.alpha:.3f})")
    ax.scatter(x, y, color="C0", zorder=3, label="measured (final val loss)")
    for xi, yi, text in zip(x, y, labels):
        ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if held_out is not None:
        ax.plot(span, held_out(span), color="C1", linestyle="--", linewidth=1,
                label=f"fit without the largest (α = {held_out.alpha:.3f})")
        ax.scatter([x[-1]], [held_out(x[-1])], facecolors="none", edgecolors="C1", s=80, zorder=4,
                   label=f"largest, predicted: {float(held_out(x[-1])):.3f} (measured {y[-1]:.3f})")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="validation loss (nats/char)", title=title)
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):  # 1.70, not 1.7 × 10⁰
        axis(FormatStrFormatter("%.2f"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save(fig, path)


def learning_curves(path: Path, rungs: list[Rung], x: str = "tokens") -> Path:
    """Every rung's validation loss (the running training loss where runs evaluated only at their end, as in
    mode=isoflop) against training tokens (or FLOPs), coloured from small to large."""
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(rungs)))
    for rung, colour in zip(rungs, colours):
        xs = [t if x == "tokens" else t * rung.flops / rung.tokens for t, _ in rung.curve]
        label = rung.label if rung.budget is None else f"{rung.label}, C={rung.budget:.0e}"
        ax.plot(xs, [v for _, v in rung.curve], marker="o", markersize=3, color=colour, label=label)
    which = "validation" if all(r.curve_split == "val" for r in rungs) else "training"
    ax.set(xscale="log", xlabel=f"training {x}", ylabel=f"{which} loss (nats/char)",
           title="learning curves of every rung")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2 if len(rungs) > 8 else 1)
    return save(fig, path)


def isoflop_plot(path: Path, valleys: list[Valley], exponent: float) -> Path:
    """Left: loss against size at each budget, with the parabola and its bottom. Right: N_opt against C, with the
    fitted exponent and Chinchilla's 20 tokens per parameter."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for i, v in enumerate(valleys):
        colour = f"C{i}"
        left.scatter(v.sizes, v.losses, color=colour, label=f"C = {v.budget:.1e} FLOPs")
        span = np.geomspace(min(v.sizes), max(v.sizes), 100)
        a, b, c = v.curvature
        left.plot(span, a * np.log(span) ** 2 + b * np.log(span) + c, color=colour, linewidth=1)
        left.scatter([v.n_opt], [v.loss_opt], marker="*", s=140, color=colour, edgecolors="black", zorder=4)
    left.set(xscale="log", xlabel="non-embedding parameters N", ylabel="final validation loss (nats/char)",
             title="IsoFLOP valleys (★ = the parabola's bottom)")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8)
    budgets = np.array([v.budget for v in valleys])
    right.scatter(budgets, [v.n_opt for v in valleys], color="black", label="loss-optimal N")
    span = np.geomspace(budgets.min() / 2, budgets.max() * 2, 100)
    scale = valleys[0].n_opt / valleys[0].budget ** exponent
    right.plot(span, scale * span ** exponent, color="black", linewidth=1, label=f"fit: N_opt ∝ C^{exponent:.2f}")
    right.plot(span, np.sqrt(span / 120), color="C3", linestyle="--", linewidth=1,
               label="Chinchilla: 20 tokens/param, N = √(C/120)")
    right.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)", ylabel="N_opt",
              title="compute-optimal size")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=8)
    return save(fig, path)


def reach_plot(path: Path, rungs: list[Rung], law: PowerLaw, famous: list[Famous]) -> Path:
    """The law carried from the ladder out to famous models' sizes: an extrapolation over many orders of magnitude."""
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    x = [r.params for r in rungs]
    span = np.geomspace(min(x) / 2, max(f.params for f in famous) * 3, 300)
    inside = span <= max(x)
    ax.plot(span[inside], law(span[inside]), color="C0", label="fitted law (inside the data)")
    ax.plot(span[~inside], law(span[~inside]), color="C0", linestyle=":", label="extrapolation")
    ax.scatter(x, [r.final_val_loss for r in rungs], color="C0", zorder=3, label="this machine's rungs")
    for i, f in enumerate(famous):
        ax.scatter([f.params], [f.predicted_loss], marker="D", facecolors="none", edgecolors=f"C{i + 1}", s=70,
                   zorder=4, label=f"{f.name}: {duration(f.years_here)} here, {f.gpu_hours:,.0f} GPU-h")
        ax.annotate(f"{f.predicted_loss:.3f}?", (f.params, f.predicted_loss), textcoords="offset points",
                    xytext=(-10, 8), fontsize=8)
    ax.axhline(law.E, color="grey", linestyle="--", linewidth=1)
    ax.annotate(f"E = {law.E:.3f}", (span[0], law.E), textcoords="offset points", xytext=(2, 3), fontsize=8,
                color="grey")
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel="validation loss (nats/char)",
           title="out of reach: the law far outside its data")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save(fig, path)

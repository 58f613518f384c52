"""The ladder's figure: a waterfall of each trick's gain. The first rung's loss, then each rung's change from the rung
before as a bar floating between the two losses (green: lower, red: higher), then the last rung's loss: the bars add
up from the first recipe to the last. Error bars: ± one standard deviation over the seeds."""
from __future__ import annotations

from pathlib import Path

from trends.records.plots import plt, save


def waterfall(path: Path, ladders: dict[str, list[dict]], target: float | None = None) -> Path:
    """One panel per ladder (a variant of the sweep; one for a plain `trends recipe`), from analysis.ladder_rows."""
    widest = max(len(rows) for rows in ladders.values())
    fig, axes = plt.subplots(1, len(ladders), figsize=((0.9 * widest + 2.4) * len(ladders), 4.6), squeeze=False)
    for ax, (variant, rows) in zip(axes[0], ladders.items()):
        _waterfall(ax, rows, target)
        ax.set_title(f"each trick's gain{f' ({variant})' if variant else ''}", fontsize=10)
    return save(fig, path)


def _waterfall(ax, rows: list[dict], target: float | None) -> None:
    losses = [r["val_loss"] for r in rows]
    stds = [r["val_loss_std"] or 0.0 for r in rows]
    low = min(m - s for m, s in zip(losses, stds))
    high = max(m + s for m, s in zip(losses, stds))
    floor = low - 0.6 * (high - low) - 0.01  # the bars start near the losses: the differences matter, not the zero
    last = len(rows)
    ax.bar([0, last], [losses[0] - floor, losses[-1] - floor], bottom=floor, color="tab:grey")
    for i in range(1, last):
        step = losses[i] - losses[i - 1]
        ax.bar(i, step, bottom=losses[i - 1], color="tab:green" if step < 0 else "tab:red")
        _label(ax, i, max(losses[i], losses[i - 1]), f"{step:+.3f}")
    _label(ax, last, losses[-1], f"{losses[-1] - losses[0]:+.3f}")
    ax.errorbar(range(last), losses, yerr=stds, fmt="none", ecolor="black", capsize=3, linewidth=1)
    top = high + 0.2 * (high - low) + 0.01
    if target is not None and floor < target < top:
        ax.axhline(target, linestyle="--", color="grey", linewidth=1)
        ax.annotate(f"{target:g}", (0.01, target), xycoords=("axes fraction", "data"), va="bottom", fontsize=8,
                    color="grey")
    ax.set_xticks(range(last + 1), [r["trick"] for r in rows] + [f"= {rows[-1]['rung']}"], rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylim(floor, top)
    ax.set_ylabel("best validation loss (nats/char)")
    ax.grid(axis="y", alpha=0.3)


def _label(ax, x: float, y: float, text: str) -> None:
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)

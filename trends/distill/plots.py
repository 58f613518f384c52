"""The comparison's two figures: the students' validation curves against the teacher's loss, and size, loss and
generation speed side by side."""
from __future__ import annotations

from pathlib import Path

from trends.distill.students import Cohort
from trends.records.plots import plt, save

COLOURS = {"teacher": "black", "scratch": "tab:grey", "soft_targets": "tab:blue", "distilbert": "tab:orange"}


def val_curves(path: Path, groups: list[Cohort], findings: dict) -> Path:
    """Mean validation loss over the seeds (band: ± std) for every student; the teacher's loss as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for c in groups:
        steps, mean, std = c.mean_curve()
        label = f"{c.method} {c.variant}".strip() + (f" ({len(c.students)} seeds)" if len(c.students) > 1 else "")
        line, = ax.plot(steps, mean, marker="o", label=label, color=COLOURS.get(c.method) if not c.variant else None)
        ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=line.get_color(), alpha=0.2)
    teacher = findings.get("val_loss/teacher")
    if teacher is not None:
        ax.axhline(teacher, linestyle="--", color=COLOURS["teacher"], linewidth=1, label=f"teacher {teacher:.3f}")
    ax.set(xlabel="step", ylabel="validation loss (nats/char)", title="students learning from the teacher")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def size_loss_speed(path: Path, rows: list[dict]) -> Path:
    """Three panels of bars, teacher and students: parameters, validation loss (± std), characters/s decoded."""
    labels = [f"{r['model']}\n{r['variant']}" if "variant" in r else r["model"] for r in rows]
    colours = [COLOURS.get(r["model"], "tab:green") for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    panels = [("parameters (thousands)", [r["params"] / 1e3 for r in rows], None),
              ("validation loss (nats/char)", [r["val_loss"] for r in rows],
               [r.get("val_loss_std") or 0 for r in rows]),
              ("generation (chars/s, KV cache)", [r["chars_per_s"] for r in rows], None)]
    for ax, (title, values, errors) in zip(axes, panels):
        ax.bar(range(len(rows)), values, yerr=errors, color=colours, capsize=4)
        ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    losses = panels[1][1]
    spread = max(losses) - min(losses)
    axes[1].set_ylim(min(losses) - spread - 0.02, max(losses) + 0.5 * spread + 0.02)  # the differences, not the zero
    return save(fig, path)

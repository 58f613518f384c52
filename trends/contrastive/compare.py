"""The end of a method sweep (`trends contrastive -m method=simclr,moco,…`, hydra.callbacks.method_comparison): one
table and one figure of every method on the same encoder, data, budget and evaluation — kNN and linear-probe
accuracy, the gain over the random-init encoder, images/s and wall time — as mean ± std over seeds where the sweep
varies them. A sweep of one method is left to the usual sweep table."""
from __future__ import annotations

import logging
import statistics
from pathlib import Path

from omegaconf import DictConfig

from trends.records import layout, plots
from trends.records.files import write_atomic, write_json_atomic
from trends.records.tables import markdown_table, write_csv

log = logging.getLogger("trends.contrastive")
MEASURES = {"knn_acc": "kNN accuracy", "knn_gain_points": "kNN gain over random init (points)",
            "probe_acc": "linear probe accuracy", "images_per_s": "images/s", "duration_s": "wall time (s)"}


def method_rows(sweep_dir: Path) -> tuple[list[dict], list[str]]:
    """One row per method, in the sweep's order: each measure's mean and std over the method's completed jobs (its
    seeds), and the names of the jobs left out (with why)."""
    groups: dict[str, list[dict]] = {}
    left_out = []
    for folder in layout.job_folders(sweep_dir):
        summary = layout.read_summary(folder)
        if summary.get("status") != "completed" or "method" not in summary:
            left_out.append(f"{folder.name} ({summary.get('status', 'no summary')})")
            continue
        groups.setdefault(summary["method"], []).append({**summary["metrics"], "duration_s": summary["duration_s"]})
    rows = []
    for method, jobs in groups.items():
        row = {"method": method, "seeds": len(jobs)}
        for baseline in ("random_init_knn_acc", "random_init_probe_acc"):  # per seed, the same for every method
            values = [j[baseline] for j in jobs if j.get(baseline) is not None]
            if values:
                row[baseline] = round(statistics.fmean(values), 4)
        for key in MEASURES:
            values = [j[key] for j in jobs if j.get(key) is not None]
            if values:
                row[key] = round(statistics.fmean(values), 4)
                row[f"{key}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
        rows.append(row)
    return rows, left_out


def readable(row: dict) -> dict:
    """A row for methods.md: each measure as mean ± std (std only where seeds vary), under its name in words."""
    out = {"method": row["method"], "seeds": row["seeds"]}
    for key, name in MEASURES.items():
        if key in row:
            digits = 3 if key.endswith("acc") else 1
            std = f" ± {row[key + '_std']:.{digits}f}" if row["seeds"] > 1 else ""
            out[name] = f"{row[key]:.{digits}f}{std}"
    return out


def finding(rows: list[dict]) -> str:
    """The methods ranked by kNN accuracy, each with its gain over the random-init encoder."""
    ranked = sorted(rows, key=lambda r: -r["knn_acc"])
    best = ranked[0]
    parts = [f"{r['method']} {r['knn_acc']:.3f} ({r['knn_gain_points']:+.1f})" for r in ranked]
    return (f"{best['method']} leads with kNN accuracy {best['knn_acc']:.3f}, {best['knn_gain_points']:+.1f} points "
            f"over the random-init encoder ({best['random_init_knn_acc']:.3f}); by kNN accuracy (gain in points): "
            + ", ".join(parts))


def figure(path: Path, rows: list[dict]) -> None:
    """kNN (and, where measured, linear-probe) accuracy per method as bars with their std over seeds, the
    random-init encoder's kNN accuracy as a line; beside it, each method's images/s."""
    fig, (ax, speed) = plots.plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [2, 1]})
    names = [r["method"] for r in rows]
    xs = range(len(rows))
    probe = all("probe_acc" in r for r in rows)
    width = 0.4 if probe else 0.6
    ax.bar([x - width / 2 * probe for x in xs], [r["knn_acc"] for r in rows], width,
           yerr=[r["knn_acc_std"] for r in rows], capsize=3, label="kNN")
    if probe:
        ax.bar([x + width / 2 for x in xs], [r["probe_acc"] for r in rows], width,
               yerr=[r["probe_acc_std"] for r in rows], capsize=3, label="linear probe")
    baselines = [("random_init_knn_acc", "random-init encoder, kNN", "C0")]
    if probe and "random_init_probe_acc" in rows[0]:
        baselines.append(("random_init_probe_acc", "random-init encoder, linear probe", "C1"))
    for key, label, colour in baselines:
        ax.axhline(rows[0][key], color=colour, linestyle="--", linewidth=1)
        ax.annotate(label, (0.01, rows[0][key]), xycoords=("axes fraction", "data"), va="bottom", fontsize=8,
                    color=colour, zorder=5, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    for x, r in zip(xs, rows):
        ax.annotate(f"{r['knn_gain_points']:+.1f}", (x - width / 2 * probe, r["knn_acc"]), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=8)
    seeds = {r["seeds"] for r in rows}
    ax.set_xticks(list(xs), names)
    ax.set(ylabel="accuracy on the test images", title="frozen features after pretraining "
           f"({'mean ± std over ' + str(max(seeds)) + ' seeds' if max(seeds) > 1 else 'one seed'}; "
           "above the bars: kNN points over random init)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    speed.barh(list(xs), [r["images_per_s"] for r in rows], color="C2")
    speed.set_yticks(list(xs), names)
    speed.invert_yaxis()
    speed.set(xlabel="training images/s", title="speed")
    speed.title.set_fontsize(9)
    speed.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    plots.save(fig, path)


def analyse(sweep_dir: Path) -> dict | None:
    """methods.md/.csv, plots/methods.png and the sweep's summary.json; None where the sweep compares no methods."""
    sweep_dir = Path(sweep_dir)
    rows, left_out = method_rows(sweep_dir)
    if len(rows) < 2:
        return None
    figure(sweep_dir / layout.PLOTS / "methods.png", rows)
    write_csv(sweep_dir / "methods.csv", rows)
    note = f"\nLeft out (not completed): {', '.join(left_out)}\n" if left_out else ""
    write_atomic(sweep_dir / "methods.md", markdown_table([readable(r) for r in rows]) + "\n" + note)
    summary = {"status": "completed", "command": "contrastive", "sweep": str(sweep_dir), "headline": "knn_acc",
               "finding": finding(rows), "lead_plot": "methods.png", "methods": rows, "left_out": left_out}
    write_json_atomic(sweep_dir / layout.SUMMARY, summary)
    log.info("methods: %s", summary["finding"])
    return summary


def analyse_sweep(sweep_dir: Path, config: DictConfig) -> dict | None:
    """The end of a `trends contrastive -m` sweep (hydra.callbacks.method_comparison)."""
    return analyse(sweep_dir)

"""The table at the end of a Hydra multirun: every job's overrides, status and headline metrics,
plus mean ± std over seeds. Written as CSV and Markdown into the sweep folder and printed with rich.

Loaded by Hydra as a callback (conf/common.yaml), so it must stay free of torch imports.
"""
from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from .layout import job_folders, read_summary


def job_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder (`<sweep>/<n>/summary.json`), in job order."""
    rows = []
    for job in job_folders(sweep_dir):
        summary = read_summary(job) or {"status": "missing"}
        overrides = [o for o in summary.get("overrides", []) if not o.startswith("hydra")]
        rows.append({"job": job.name, "overrides": " ".join(overrides), "status": summary.get("status"),
                     **summary.get("metrics", {})})
    return rows


def aggregate_over_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group jobs whose overrides differ only in `seed=` and report mean ± sample std of each metric."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["status"] != "completed":
            continue
        key = " ".join(o for o in row["overrides"].split() if not o.startswith("seed="))
        groups.setdefault(key, []).append(row)
    table = []
    for key, members in groups.items():
        out: dict[str, Any] = {"overrides": key or "(defaults)", "seeds": len(members)}
        for name in _metric_names(members):
            values = [m[name] for m in members if isinstance(m.get(name), (int, float))]
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                out[name] = f"{statistics.fmean(values):.4g} ± {std:.2g}"
        table.append(out)
    return table


def write_tables(sweep_dir: Path, console: Console | None = None) -> list[dict[str, Any]]:
    rows = job_rows(sweep_dir)
    if not rows:
        return rows
    write_csv(sweep_dir / "sweep.csv", rows)
    sections = [("Jobs", rows)]
    if any(" seed=" in f" {r['overrides']}" for r in rows):
        aggregated = aggregate_over_seeds(rows)
        write_csv(sweep_dir / "sweep_by_seed.csv", aggregated)
        sections.append(("Mean ± std over seeds", aggregated))
    (sweep_dir / "sweep.md").write_text("\n\n".join(f"### {title}\n\n{markdown_table(t)}" for title, t in sections)
                                        + "\n")
    console = console or Console()
    for title, table in sections:
        console.print(rich_table(table, f"{title} — {sweep_dir}"))
    return rows


class SweepTable(Callback):
    """Hydra callback: write and print the sweep table once all jobs are done."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_tables(Path(config.hydra.sweep.dir))


def _metric_names(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    return [n for n in names if n not in ("job", "overrides", "status", "seeds")]


def _columns(rows: list[dict]) -> list[str]:
    fixed = [c for c in ("job", "overrides", "seeds", "status") if any(c in r for r in rows)]
    return fixed + _metric_names(rows)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(rows))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict]) -> str:
    cols = _columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def rich_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col in _columns(rows):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(fmt(r.get(c)) for c in _columns(rows)))
    return table

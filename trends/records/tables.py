"""The table at the end of a Hydra multirun: every job's overrides, status and headline metrics, the best job
marked, plus mean ± std over seeds and, for a search, its history (the best value so far after each trial).
Written as CSV and Markdown into the sweep folder and printed with rich; the tables of the demos' own analyses use
the same writers."""
from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .files import write_atomic
from .layout import job_folders, read_summary
from .search import Objective, best_index, history, score

TERMINAL_METRICS = 6  # metric columns the printed table shows (the files hold them all)
# What a row is, not what it measured: the table's first columns, never counted as metrics.
IDENTITY = ("job", "best", "variant", "model", "method", "rung", "trick", "overrides", "seeds", "status")


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
            values = [m[name] for m in members if _finite(m.get(name))]  # a NaN (a diverged metric) is left out
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                out[name] = f"{statistics.fmean(values):.4g} ± {std:.2g}"
        table.append(out)
    return table


def mean_curve(curves: list[tuple[list, list]]) -> tuple[list, list[float], list[float]]:
    """Curves of one metric from several seeds, (xs, ys) each: the xs every one of them reached, and the mean and
    sample std over the seeds there (std 0 for one seed)."""
    by_x: dict = {}
    for xs, ys in curves:
        for x, y in zip(xs, ys):
            if _finite(y):
                by_x.setdefault(x, []).append(y)
    xs = sorted(x for x, values in by_x.items() if len(values) == len(curves))
    return (xs, [statistics.fmean(by_x[x]) for x in xs],
            [statistics.stdev(by_x[x]) if len(by_x[x]) > 1 else 0.0 for x in xs])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def write_tables(sweep_dir: Path, console: Console | None = None) -> list[dict[str, Any]]:
    """sweep.csv (every job, every metric), sweep_by_seed.csv, and sweep.md and the terminal's table, which name the
    overrides all jobs share once, above the table, and show each job only what sets it apart."""
    rows = job_rows(sweep_dir)
    if not rows:
        return rows
    headline = next(filter(None, (read_summary(job).get("headline") for job in job_folders(sweep_dir))), None)
    objective = Objective.of_sweep(sweep_dir)
    metric = objective.metric_of(headline)
    scores = [score(r["status"], r.get(metric)) for r in rows] if metric else []
    best = mark_best(rows, scores, objective.lower(metric)) if metric else None
    write_csv(sweep_dir / "sweep.csv", rows)
    sections = [("Jobs", rows)]
    if any(" seed=" in f" {r['overrides']}" for r in rows):
        aggregated = aggregate_over_seeds(rows)
        write_csv(sweep_dir / "sweep_by_seed.csv", aggregated)
        sections.append(("Mean ± std over seeds", aggregated))
    if objective.search and metric:
        sections.append((f"Search: {metric}, the best so far after each trial",
                         search_history(rows, metric, scores, objective.lower(metric))))
    shared = shared_overrides([r["overrides"].split() for r in rows])
    sections = [(title, [{**r, "overrides": " ".join(short(o) for o in r["overrides"].split() if o not in shared)}
                         if "overrides" in r else r for r in table]) for title, table in sections]
    common = f"All jobs: `{' '.join(shared)}`\n\n" if shared else ""
    write_atomic(sweep_dir / "sweep.md", common + "\n\n".join(f"### {title}\n\n{markdown_table(t)}"
                                                                for title, t in sections) + "\n")
    console = console or Console()
    shared_line = f"\nall jobs: {' '.join(shared)}" if shared else ""
    for title, table in sections:
        console.print(rich_table(table, f"{title} — {sweep_dir}{shared_line}", metrics=TERMINAL_METRICS,
                                 first=metric))
    if len(_metric_names(rows)) > TERMINAL_METRICS:
        console.print(f"every metric of every job: {sweep_dir / 'sweep.md'}")
    if best is not None:
        overrides = escape(' '.join(short(o) for o in best['overrides'].split()))
        console.print(f"best job ({'lowest' if objective.lower(metric) else 'highest'} {metric}): {best['job']} "
                      f"{overrides} → {fmt(best[metric])}")
    return rows


def mark_best(rows: list[dict[str, Any]], scores: list[float | None], lower: bool) -> dict[str, Any] | None:
    """Mark (column `best`) the job with the best score (trends.records.search.score), and return it."""
    best = best_index(scores, lower)
    if best is None:
        return None
    for i, row in enumerate(rows):
        row["best"] = "★" if i == best else ""
    return rows[best]


def search_history(rows: list[dict[str, Any]], metric: str, scores: list[float | None],
                   lower: bool) -> list[dict[str, Any]]:
    """One row per trial, in the order the sweeper ran them: its score and the best score so far."""
    return [{"job": r["job"], "status": r["status"], metric: v, "best so far": b}
            for r, v, b in zip(rows, scores, history(scores, lower))]


def short(override: str) -> str:
    """`optim.lr=0.013680095279726922` (a sampler's choice) as `optim.lr=0.01368`, for the tables people read."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}={number:.4g}" if "." in value and len(value) > 7 else override


def shared_overrides(override_lists: list[list[str]]) -> list[str]:
    """The overrides every job of the sweep has (a fixed teacher=, experiment=smoke): said once, not per job."""
    if len(override_lists) < 2:
        return []
    return [o for o in override_lists[0] if all(o in others for others in override_lists[1:])]


def _metric_names(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    return [n for n in names if n not in IDENTITY]


def _columns(rows: list[dict], metrics: int | None = None, first: str | None = None) -> list[str]:
    """The job's identity, then its metrics (`first` leading, at most `metrics` of them)."""
    fixed = [c for c in IDENTITY if any(c in r for r in rows)]
    names = _metric_names(rows)
    if first in names:
        names = [first] + [n for n in names if n != first]
    return fixed + names[:metrics]


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=_columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


def markdown_table(rows: list[dict]) -> str:
    cols = _columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def rich_table(rows: list[dict], title: str, metrics: int | None = None, first: str | None = None) -> Table:
    """The rows as a terminal table, their text taken literally: an override such as `models=[vit]` is not markup."""
    table = Table(title=escape(title))
    columns = _columns(rows, metrics, first)
    for col in columns:
        table.add_column(escape(col), overflow="fold")
    for r in rows:
        table.add_row(*(escape(fmt(r.get(c))) for c in columns))
    return table

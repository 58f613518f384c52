"""`trends runs`: read run folders (JSON and YAML only, so it stays instant)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trends.records.layout import job_folders, read_summary, status_of


def find_runs(root: Path) -> list[Path]:
    """Every run folder (with a summary.json) and sweep folder (with a multirun.yaml) under `root`, newest first;
    a sweep's jobs are not listed apart from their sweep."""
    sweeps = {p.parent for p in Path(root).glob("**/multirun.yaml")}
    runs = {p.parent for p in Path(root).glob("**/summary.json") if p.parent.parent not in sweeps}
    return sorted(runs | sweeps, key=_modified, reverse=True)


def print_runs(root: Path, limit: int) -> None:
    console = Console()
    runs = find_runs(root)
    if not runs:
        console.print(f"no runs under {root}")
        return
    table = Table(title=f"runs under {root}")
    for col in ("run", "command", "status", "overrides", "headline", "time"):
        table.add_column(col, overflow="fold")
    for run in runs[:limit]:
        row = _sweep_row(run) if (run / "multirun.yaml").is_file() else _run_row(run)
        table.add_row(str(run.relative_to(root)), *row)
    console.print(table)


def _run_row(run: Path) -> tuple[str, ...]:
    s = _summary(run)
    overrides = escape(" ".join(o for o in s.get("overrides", []) if not o.startswith("hydra")))
    return s.get("command", "?"), _state(run, s), overrides, _headline(s), f"{_seconds(s):.0f}s"


def _state(run: Path, s: dict) -> str:
    """The run's status as it stands; a running or killed one says how far its last checkpoint got (where
    `--resume` starts)."""
    status = status_of(run, s)
    step = s.get("checkpoint", {}).get("step")
    if status in ("running", "killed"):
        return _status(status) + (f" (checkpoint: step {step})" if step is not None else " (no checkpoint)")
    return _status(status)


def _seconds(s: dict) -> float:
    """Seconds of work: the whole run's once it ended, up to its last checkpoint before."""
    return s.get("duration_s", s.get("checkpoint", {}).get("elapsed", 0))


def _sweep_row(sweep: Path) -> tuple[str, ...]:
    """One row for a whole sweep: its jobs' statuses counted, its own headline (a demo's analysis) or its best
    job's, and the jobs' time added up."""
    folders = job_folders(sweep)
    jobs = [read_summary(j) for j in folders]
    own = read_summary(sweep)
    counts = Counter(status_of(f, j) or "missing" for f, j in zip(folders, jobs))
    status = ", ".join(f"{n} {_status(k)}" for k, n in counts.items()) or "no jobs yet"
    if own.get("status") == "failed":
        status += f", analysis {_status('failed')}"
    task = OmegaConf.select(OmegaConf.load(sweep / "multirun.yaml"), "hydra.overrides.task", default=[])
    overrides = escape("-m " + " ".join(o for o in task if not o.startswith(("hydra", "resume="))))
    headline = _headline(own) or _best_headline(sweep)
    command = own.get("command") or next((j.get("command") for j in jobs if j.get("command")), "?")
    return command, status, overrides, headline, f"{sum(_seconds(j) for j in jobs):.0f}s"


def _headline(s: dict) -> str:
    head = s.get("headline")
    value = s.get("metrics", {}).get(head, s.get(head)) if head else None  # a sweep's analysis: top level
    return f"{head}={value:.4g}" if isinstance(value, (int, float)) else ""


def _best_headline(sweep: Path) -> str:
    from trends.records.report import Folder, best_job
    from trends.records.search import Objective

    jobs = [Folder(j) for j in job_folders(sweep)]
    objective = Objective.of_sweep(sweep)
    metric = objective.metric_of(next((j.summary["headline"] for j in jobs if j.summary.get("headline")), None))
    best = best_job(jobs, metric, objective.lower(metric)) if metric else None
    return f"best {metric}={best.summary['metrics'][metric]:.4g}" if best else ""


def compare_runs(paths: list[Path]) -> None:
    """`trends runs compare A B …`: the runs' headlines, the config keys that differ, every metric side by side. Each
    folder is checked first (a UserError says what it is instead of a run); text from the folders is escaped, never
    read as rich markup."""
    from trends.records.report import Folder, config_diff, fmt, read_record

    for path in paths:
        read_record(Path(path), sweeps=False)
    runs = [Folder(Path(p)) for p in paths]
    console = Console()
    names = [escape(r.name) for r in runs]
    overview = Table(title="runs")
    for col in ("", *names):
        overview.add_column(col, overflow="fold")
    for label, get in (("command", lambda r: escape(str(r.summary.get("command", "?")))),
                       ("status", lambda r: _state(r.path, r.summary)),
                       ("headline", lambda r: escape(_headline(r.summary))),
                       ("time", lambda r: f"{r.summary.get('duration_s', 0):.0f}s")):
        overview.add_row(label, *(get(r) for r in runs))
    console.print(overview)
    diff = config_diff(runs)
    if diff:
        table = Table(title="config: the keys that differ")
        for col in diff[0]:
            table.add_column(escape(col), overflow="fold")
        for row in diff:
            table.add_row(*(escape(fmt(v)) for v in row.values()))
        console.print(table)
    else:
        console.print("config: the same")
    metrics = Table(title="metrics")
    for col in ("metric", *names):
        metrics.add_column(col, overflow="fold")
    for name in dict.fromkeys(k for r in runs for k in r.summary.get("metrics", {})):
        metrics.add_row(escape(name), *(escape(fmt(r.summary.get("metrics", {}).get(name))) for r in runs))
    console.print(metrics)


def _modified(folder: Path) -> float:
    marker = folder / "summary.json" if (folder / "summary.json").is_file() else folder / "multirun.yaml"
    return marker.stat().st_mtime


def show_run(run: Path) -> None:
    """`trends runs show RUN`: everything a run (or a sweep) recorded: its summary, its config as written, its files.
    The folder is checked first (a UserError says what it is instead of a run); its text is printed as it is, never
    read as rich markup."""
    from trends.records.report import read_record

    run = Path(run)
    summary = read_record(run)
    console = Console()
    console.rule(escape(str(run)))
    if summary:
        console.print_json(json.dumps(summary))
    config = run / ".hydra" / "config.yaml"
    if config.is_file():
        console.rule("config")
        console.print(config.read_text(errors="replace"), markup=False, highlight=False)
    console.rule("files")
    for path in sorted(p for p in run.rglob("*") if p.is_file() and ".hydra" not in p.parts):
        console.print(f"{path.relative_to(run)}  ({path.stat().st_size:,} bytes)", markup=False)


def _summary(run: Path) -> dict:
    return read_summary(run) or {"status": "unreadable"}


def _status(status: str | None) -> str:
    colour = {"completed": "green", "interrupted": "yellow", "killed": "yellow", "running": "cyan", "failed": "red",
              "diverged": "red"}.get(status or "", "")
    return f"[{colour}]{status}[/{colour}]" if colour else escape(str(status))

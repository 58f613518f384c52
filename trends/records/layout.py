"""Where run folders live and the names of the files in them, in one place (the CLI, the launch, the loop and
`trends sample` all read them)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .lock import holder

CHECKPOINT = Path("checkpoints") / "last.pt"  # the model parts, the training state, every rank's RNG streams
METRICS = "metrics.jsonl"  # one JSON object per logged point
SUMMARY = "summary.json"  # status, headline metrics, what ran where
PLOTS = "plots"


def outputs_root() -> Path:
    """The folder every run and sweep goes under: $TRENDS_OUTPUTS, else ./outputs."""
    return Path(os.environ.get("TRENDS_OUTPUTS", "outputs"))


def latest_completed_run(command: str, overrides: list[str]) -> Path | None:
    """The newest completed single run of `trends <command>` started with exactly these overrides, if any."""
    def matches(run: Path) -> bool:
        summary = read_summary(run)
        given = [o for o in summary.get("overrides", []) if not o.startswith("hydra.")]
        return summary.get("status") == "completed" and given == overrides
    root = outputs_root() / command
    runs = [p for p in root.iterdir() if p.is_dir() and p.name != "multirun" and matches(p)] if root.is_dir() else []
    return max(runs, key=lambda p: (p / SUMMARY).stat().st_mtime, default=None)


def checkpoint_of(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def read_summary(run_dir: Path) -> dict:
    """A run folder's summary.json, or {} where there is none (yet) or it cannot be read (or holds no object)."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def status_of(run_dir: Path, summary: dict | None = None) -> str | None:
    """A run's status as it stands: a summary that says `running` while no process holds the folder's lock belongs to
    a run that was killed (SIGKILL, the OOM killer, a cluster's time limit) before it could say how it ended."""
    summary = read_summary(run_dir) if summary is None else summary
    status = summary.get("status")
    if status == "running" and holder(run_dir) is None:
        return "killed"
    return status


def job_folders(sweep_dir: Path) -> list[Path]:
    """A Hydra sweep's job folders (`<sweep>/0`, `<sweep>/1`, …, or named after the job's number and what it is, as
    `<sweep>/0_scratch`), in job order."""
    return sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.split("_", 1)[0].isdigit()),
                  key=lambda p: int(p.name.split("_", 1)[0]))

"""The names of the files in a run folder, in one place (the CLI, the loop and `trends sample` all read them)."""
from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT = Path("checkpoints") / "last.pt"  # the model parts, the training state, every rank's RNG streams
METRICS = "metrics.jsonl"  # one JSON object per logged point
SUMMARY = "summary.json"  # status, headline metrics, what ran where
PLOTS = "plots"


def checkpoint_of(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def read_summary(run_dir: Path) -> dict:
    """A run folder's summary.json, or {} where there is none (yet) or it cannot be read."""
    try:
        return json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


def job_folders(sweep_dir: Path) -> list[Path]:
    """A Hydra sweep's job folders (`<sweep>/0`, `<sweep>/1`, …, or named after the job's number and what it is, as
    `<sweep>/0_scratch`), in job order."""
    return sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.split("_", 1)[0].isdigit()),
                  key=lambda p: int(p.name.split("_", 1)[0]))

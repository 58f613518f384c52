"""The names of the files in a run folder, in one place (the CLI, the loop and `trends sample` all read them)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=jsonable) + "\n")
    os.replace(tmp, path)


def jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)

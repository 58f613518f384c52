"""The names of the files in a run folder, in one place (the CLI, the loop and `trends sample` all read them)."""
from __future__ import annotations

from pathlib import Path

CHECKPOINT = Path("checkpoints") / "last.pt"  # the model parts, the training state, every rank's RNG streams
METRICS = "metrics.jsonl"  # one JSON object per logged point
SUMMARY = "summary.json"  # status, headline metrics, what ran where
PLOTS = "plots"


def checkpoint_of(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT

"""The one reader of metrics.jsonl: every place that reads a run's logged points reads them here."""
from __future__ import annotations

import json
from pathlib import Path

from .layout import METRICS


def read_metrics(run_dir: Path, split: str | None = None) -> list[dict]:
    """The points a run folder logged, one dict each ({step, epoch, split, <metrics>, elapsed}), in the order they
    were written; only those of `split` when given. [] where the folder has no metrics.jsonl."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if split is None or r.get("split") == split]

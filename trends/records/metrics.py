"""The one reader of metrics.jsonl: every place that reads a run's logged points reads them here.

A run appends one line per point; a process killed in the middle of an append (or a full disk) leaves a torn last
line, which is skipped with a warning: what came before it is whole, and a resumed run rewrites the file from its
checkpoint anyway. A damaged line anywhere else means the file was edited or corrupted: said, with its line number.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from trends.errors import UserError

from .layout import METRICS

log = logging.getLogger("trends")
_warned: set[tuple[str, int]] = set()  # (file, size) already warned about: once per torn line, not per read


def read_metrics(run_dir: Path, split: str | None = None) -> list[dict]:
    """The points a run folder logged, one dict each ({step, epoch, split, <metrics>, elapsed}), in the order they
    were written; only those of `split` when given. [] where the folder has no metrics.jsonl."""
    path = Path(run_dir) / METRICS
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise UserError(f"{path} line {number} is damaged (not JSON); restore the file or start a new "
                                "run") from None
            if (str(path), len(text)) not in _warned:
                _warned.add((str(path), len(text)))
                log.warning("%s: its last line is torn (the run stopped while writing it); skipped", path)
    return [r for r in records if split is None or r.get("split") == split]

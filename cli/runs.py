"""`trends runs`: read run folders (JSON and YAML only, so it stays instant)."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from trends.core.layout import read_summary


def find_runs(root: Path) -> list[Path]:
    """Every folder under `root` with a summary.json, newest first."""
    found = [p.parent for p in Path(root).glob("**/summary.json")]
    return sorted(found, key=lambda p: (p / "summary.json").stat().st_mtime, reverse=True)


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
        s = _summary(run)
        overrides = " ".join(o for o in s.get("overrides", []) if not o.startswith("hydra"))
        head = s.get("headline")
        value = s.get("metrics", {}).get(head, s.get(head)) if head else None  # a sweep's analysis: top level
        headline = f"{head}={value:.4g}" if isinstance(value, (int, float)) else ""
        table.add_row(str(run.relative_to(root)), s.get("command", "?"), _status(s.get("status")),
                      overrides, headline, f"{s.get('duration_s', 0):.0f}s")
    console.print(table)


def show_run(run: Path) -> None:
    run = Path(run)
    if not (run / "summary.json").is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no summary.json)")
    console = Console()
    console.rule(str(run))
    console.print_json(json.dumps(_summary(run)))
    config = run / ".hydra" / "config.yaml"
    if config.is_file():
        console.rule("config")
        console.print(OmegaConf.to_yaml(OmegaConf.load(config)))
    console.rule("files")
    for path in sorted(p for p in run.rglob("*") if p.is_file() and ".hydra" not in p.parts):
        console.print(f"{path.relative_to(run)}  ({path.stat().st_size:,} bytes)")


def _summary(run: Path) -> dict:
    return read_summary(run) or {"status": "unreadable"}


def _status(status: str | None) -> str:
    colour = {"completed": "green", "interrupted": "yellow", "failed": "red", "diverged": "red"}.get(status or "", "")
    return f"[{colour}]{status}[/{colour}]" if colour else str(status)

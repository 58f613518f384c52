"""A rich live progress bar on a terminal; plain log lines elsewhere (CI, pipes, log files)."""
from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from trends.ranks import Dist

log = logging.getLogger("trends")


class Progress:
    """`advance()` every step; `note(text)` shows the latest metrics beside the bar and in the log."""

    def __init__(self, total: int, description: str, completed: int = 0, unit: str = "step"):
        self._live = sys.stderr.isatty() and Dist.from_env().main  # one bar under torchrun
        self._bar = None
        if self._live:
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task(description, total=total, completed=completed, info="", rate="")
            self._bar.start()
        self.unit = unit

    def advance(self, n: int = 1, rate: float | None = None) -> None:
        if self._bar is not None:
            fields = {"rate": f"{rate:,.0f} {self.unit}/s"} if rate is not None else {}
            self._bar.update(self._task, advance=n, **fields)

    def note(self, text: str) -> None:
        log.info(text)
        if self._bar is not None:
            self._bar.update(self._task, info=text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

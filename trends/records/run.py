"""A run's record on disk: metrics.jsonl as it trains; summary.json from its first step (status `running`, the
process and host that run it), brought up to date at each checkpoint and given its final status at the end (the
runtime's `trends.core.execute` decides which). A run killed outright (SIGKILL, the OOM killer, a cluster's time
limit) thus still has a summary that says how far its last checkpoint got, and `trends runs` shows it as `killed`
once its lock (trends.records.lock) is free."""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trends.clock import Stopwatch
from trends.ranks import Dist

from . import layout, lock
from .files import append_line, jsonable, sync, write_atomic, write_json_atomic
from .metrics import read_metrics
from .report import write_report_safely
from .tensorboard import TensorBoard

log = logging.getLogger(__name__)


class Run:
    """The folder of one run and what is written into it."""

    def __init__(self, out_dir: Path, cfg: DictConfig, command: str, overrides: list[str]):
        self.dir = Path(out_dir)
        self.cfg = cfg
        self.metrics_path = self.dir / layout.METRICS
        self.summary_path = self.dir / layout.SUMMARY
        self.checkpoint_path = layout.checkpoint_of(self.dir)
        self.plots_dir = self.dir / layout.PLOTS
        self.stop_requested = False  # set by Ctrl-C; loops check it at step boundaries
        ranks = Dist.from_env()
        self.is_main = ranks.main  # under torchrun only rank 0 writes
        self.begun = False  # has its first step begun (and its summary been written)?
        self._tensorboard_wanted = OmegaConf.select(cfg, "logger.name") == "tensorboard" and self.is_main
        self._tensorboard: TensorBoard | None = None
        self._purge_step: int | None = None  # a resumed run's TensorBoard rewrites the points after its checkpoint
        if self._tensorboard_wanted:
            TensorBoard.check_installed()  # before any work: the extra is missing, say so now
        self._clock = Stopwatch.started()  # the run's work; a resume starts it from the checkpoint's elapsed
        self.summary: dict[str, Any] = {
            "status": "running",
            "command": command,
            "overrides": overrides,
            "started_at": _now(),
            "pid": os.getpid(),
            "host": platform.node(),
            "seed": cfg.get("seed"),
            "world_size": ranks.world,
            "versions": _versions(),
            "git_commit": _git_commit(),
        }

    # -- time -----------------------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        """Seconds of work on this run, including the time before a resume."""
        return self._clock.read()

    def writing(self):
        """The folder's lock, held while this process writes the run (rank 0's; the other ranks write nothing)."""
        return lock.hold(self.dir, self.summary["command"]) if self.is_main else nullcontext()

    def begin(self) -> None:
        """The first step is about to run: from now on the folder has a summary (status `running`). Before it, a run
        that bad input stops leaves nothing worth keeping; after it, nothing deletes the folder."""
        if not self.begun:
            self.begun = True
            self._write_summary()

    # -- metrics --------------------------------------------------------------------------------------------------
    def log(self, step: int, split: str, epoch: float | None = None, **values: float) -> dict:
        """Append one point to metrics.jsonl: {step, epoch, split, <metrics>, elapsed}."""
        record = {"step": step, "epoch": epoch, "split": split,
                  **{k: jsonable(v) if hasattr(v, "item") else v for k, v in values.items()},
                  "elapsed": round(self.elapsed, 3)}
        self.begin()
        if self.is_main:
            append_line(self.metrics_path, json.dumps(record))
        if self._tensorboard_wanted:
            self._board().scalars(step, split, values)
        return record

    def _board(self) -> TensorBoard:
        """The run's TensorBoard writer, opened at the first value it is given (after a resume's rewind)."""
        if self._tensorboard is None:
            self._tensorboard = TensorBoard(self.dir, purge_step=self._purge_step)
        return self._tensorboard

    def history(self, split: str | None = None) -> list[dict]:
        return [r for r in read_metrics(self.dir) if split is None or r["split"] == split]

    def rewind(self, step: int, elapsed: float) -> None:
        """On resume: forget points logged after the checkpoint's step and carry its elapsed time forward."""
        if self.is_main:
            kept = [r for r in self.history() if r["step"] <= step]
            write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
            for leftover in self.dir.rglob(".*.tmp"):  # a killed writer's; this process holds the folder now
                leftover.unlink(missing_ok=True)
        self._clock = Stopwatch.started(elapsed)
        self._purge_step = step + 1
        previous = self._read_summary()
        self.summary["started_at"] = previous.get("started_at", self.summary["started_at"])
        self.summary["resumed"] = previous.get("resumed", 0) + 1
        self.summary["checkpoint"] = {**previous.get("checkpoint", {}), "step": step, "elapsed": round(elapsed, 2)}

    # -- summary --------------------------------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        self.summary.update(fields)

    def checkpointed(self, step: int) -> None:
        """A checkpoint of `step` was written: the metrics logged up to it reach the disk, and the summary says how
        far a resume would start."""
        self.summary["checkpoint"] = {"step": step, "elapsed": round(self.elapsed, 2), "at": _now()}
        if self.is_main:
            sync(self.metrics_path)
            self._write_summary()

    def finish(self, status: str, error: str | None = None) -> None:
        self.summary.update(status=status, duration_s=round(self.elapsed, 2), finished_at=_now())
        if error:
            self.summary["error"] = error
        if not self.is_main:
            return
        self._write_summary()
        if self._tensorboard_wanted:
            self._board().hparams(self.summary.get("overrides", []), self.summary.get("metrics", {}))
            self._board().close()
        write_report_safely(self.dir)

    def _read_summary(self) -> dict:
        return layout.read_summary(self.dir)

    def _write_summary(self) -> None:
        if self.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.summary_path, {**self.summary, "updated_at": _now()})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "torch_geometric", "numpy", "hydra-core", "trends-lab"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None

"""A run's record on disk: metrics.jsonl as it trains, summary.json with its status at the end.

`execute` wraps a demo's `main(cfg, run)` so that every way a run can end (completed, Ctrl-C, NaN, bad input, bug)
leaves a complete folder with an honest status.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import signal
import subprocess
import threading
import time
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from . import layout
from .distributed import shutdown
from .errors import Diverged, RunInterrupted, UserError
from .ranks import Dist
from .tensorboard import TensorBoard

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


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
        self.logged_any = False
        self._tensorboard_wanted = OmegaConf.select(cfg, "logger.name") == "tensorboard" and self.is_main
        self._tensorboard: TensorBoard | None = None
        self._purge_step: int | None = None  # a resumed run's TensorBoard rewrites the points after its checkpoint
        if self._tensorboard_wanted:
            TensorBoard.check_installed()  # before any work: the extra is missing, say so now
        self._t0 = time.perf_counter()
        self._elapsed_before = 0.0  # time spent before a resume
        self.summary: dict[str, Any] = {
            "status": "running",
            "command": command,
            "overrides": overrides,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": cfg.get("seed"),
            "world_size": ranks.world,
            "versions": _versions(),
            "git_commit": _git_commit(),
        }

    # -- time -----------------------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        """Seconds of work on this run, including the time before a resume."""
        return self._elapsed_before + time.perf_counter() - self._t0

    # -- metrics --------------------------------------------------------------------------------------------------
    def log(self, step: int, split: str, epoch: float | None = None, **values: float) -> dict:
        """Append one point to metrics.jsonl: {step, epoch, split, <metrics>, elapsed}."""
        record = {"step": step, "epoch": epoch, "split": split,
                  **{k: _jsonable(v) if hasattr(v, "item") else v for k, v in values.items()},
                  "elapsed": round(self.elapsed, 3)}
        if self.is_main:
            with self.metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        if self._tensorboard_wanted:
            self._board().scalars(step, split, values)
        self.logged_any = True
        return record

    def _board(self) -> TensorBoard:
        """The run's TensorBoard writer, opened at the first value it is given (after a resume's rewind)."""
        if self._tensorboard is None:
            self._tensorboard = TensorBoard(self.dir, purge_step=self._purge_step)
        return self._tensorboard

    def history(self, split: str | None = None) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        records = [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]
        return [r for r in records if split is None or r["split"] == split]

    def rewind(self, step: int, elapsed: float) -> None:
        """On resume: forget points logged after the checkpoint's step and carry its elapsed time forward."""
        if self.is_main:
            kept = [r for r in self.history() if r["step"] <= step]
            tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(tmp, self.metrics_path)
        self._elapsed_before = elapsed
        self._purge_step = step + 1
        self._t0 = time.perf_counter()
        previous = self._read_summary()
        self.summary["started_at"] = previous.get("started_at", self.summary["started_at"])
        self.summary["resumed"] = previous.get("resumed", 0) + 1

    # -- summary --------------------------------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        self.summary.update(fields)

    def finish(self, status: str, error: str | None = None) -> None:
        self.summary.update(status=status, duration_s=round(self.elapsed, 2),
                            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if error:
            self.summary["error"] = error
        if not self.is_main:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.summary_path, self.summary)
        if self._tensorboard_wanted:
            self._board().hparams(self.summary.get("overrides", []), self.summary.get("metrics", {}))
            self._board().close()
        write_report_safely(self.dir)

    def _read_summary(self) -> dict:
        return layout.read_summary(self.dir)


def write_report_safely(folder: Path) -> None:
    """report.html for a run or sweep folder; a report that cannot be written costs a warning, never the record."""
    from .report import write_report

    try:
        write_report([folder])
    except Exception as err:  # noqa: BLE001 — the run's own files are written; the page is a view of them
        log.warning("report.html not written: %s: %s", type(err).__name__, err)


def execute(train: Callable[[DictConfig, Run], Any], cfg: DictConfig, out_dir: Path, *, command: str,
            overrides: list[str], multirun: bool) -> dict:
    """Run `train(cfg, run)` (a demo's `main`) and record how it ended.

    In a sweep a failed job is recorded and the sweep goes on; in a single run the error reaches the CLI.
    """
    run = Run(out_dir, cfg, command, overrides)
    try:
        with _graceful_sigint(run):
            train(cfg, run)
    except (RunInterrupted, KeyboardInterrupt) as err:
        run.finish("interrupted")
        if isinstance(err, RunInterrupted):
            shutdown()  # as below
            if multirun:  # Hydra records a job's Exception and starts the next job: only a BaseException stops it
                raise KeyboardInterrupt from err
        raise  # Ctrl-C stops a sweep too
    except Diverged as err:
        run.update(diverged_at_step=err.step)
        run.finish("diverged", error=str(err))
        # Under torchrun every rank stopped at the same step (the stop flag and the loss are shared). They leave
        # together once rank 0 has written: torchrun stops the other workers as soon as one exits.
        shutdown()
        log.error("diverged: %s", err)
        if not multirun:
            raise
    except UserError as err:
        if not multirun and not run.logged_any:
            raise  # bad input before any training: the CLI removes the unused folder
        run.finish("failed", error=str(err))
        if not multirun:
            raise
        log.error("job failed: %s", err)
    except Exception:
        run.finish("failed", error=traceback.format_exc())
        if not multirun:
            raise
        log.exception("job failed; the sweep goes on")
    else:
        run.finish("completed")
        shutdown()  # every rank leaves the process group once rank 0 has written
        if run.stop_requested and multirun:  # Ctrl-C after the last step (in the plots, say): this job is done,
            raise KeyboardInterrupt  # but the user asked the sweep to stop
    return run.summary


@contextmanager
def _graceful_sigint(run: Run):
    """First Ctrl-C asks the loop to save and stop at the next step boundary; a second one aborts at once.

    Under torchrun a worker gets each Ctrl-C twice, from the terminal and again from torchrun as it shuts the
    workers down; there the repeat is ignored, and torchrun itself kills workers that take over 30 s to stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    under_torchrun = "TORCHELASTIC_RUN_ID" in os.environ

    def handler(signum, frame):
        if run.stop_requested:
            if under_torchrun:
                return
            raise KeyboardInterrupt
        run.stop_requested = True
        log.warning("Ctrl-C: saving a checkpoint at the end of this step%s",
                    "" if under_torchrun else " (press again to abort now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "torch_geometric", "numpy", "hydra-core", "trends"):
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


def to_container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)

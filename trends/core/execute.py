"""How a run ends, recorded: `execute` wraps a demo's `main(cfg, run)` so that every way a run can end (completed,
Ctrl-C, NaN, bad input, bug) leaves a complete folder with an honest status."""
from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig

from trends.errors import Diverged, RunInterrupted, UserError
from trends.records.run import Run

from .distributed import shutdown

log = logging.getLogger(__name__)


def execute(train: Callable[[DictConfig, Run], Any], cfg: DictConfig, out_dir: Path, *, command: str,
            overrides: list[str], multirun: bool) -> dict:
    """Run `train(cfg, run)` (a demo's `main`) and record how it ended.

    In a sweep a failed job is recorded and the sweep goes on; in a single run the error reaches the CLI.
    """
    run = Run(out_dir, cfg, command, overrides)
    with run.writing():  # the folder's lock: a second writer is refused before anything is touched
        _record(train, cfg, run, multirun)
    return run.summary


def _record(train: Callable[[DictConfig, Run], Any], cfg: DictConfig, run: Run, multirun: bool) -> None:
    try:
        with _graceful_stop(run):
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
        if not multirun and not run.begun:
            raise  # bad input before the first step: the launch removes the unused folder
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


@contextmanager
def _graceful_stop(run: Run):
    """First Ctrl-C asks the loop to save and stop at the next step boundary; a second one aborts at once. SIGTERM
    (a cluster's time limit, `kill`, a shutdown: the polite request before SIGKILL) is answered alike, so that a
    stopped job keeps the steps it trained since its last checkpoint.

    Under torchrun a worker gets each Ctrl-C twice, from the terminal and again from torchrun as it shuts the
    workers down; there the repeat is ignored, and torchrun itself kills workers that take over 30 s to stop.

    A process that was started with Ctrl-C ignored (`nohup`, `cmd &` from a script: the shell's way of keeping a
    terminal's Ctrl-C from background jobs) keeps ignoring it, during a job as between two jobs of a sweep."""
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
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        log.warning("%s: saving a checkpoint at the end of this step%s", name,
                    "" if under_torchrun else " (again to abort now)")

    signals = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)

"""The scaffolding every training loop shares, written once, so that a demo's loop holds only its step and its
evaluation.

A demo builds its data and model, then hands the loop what a checkpoint must hold, and its meter (trends.core.meter:
timing, throughput, loss windows, progress, record cadence, the step boundary), and writes its own step:

    loop = Loop(run, cfg.device, LMState(), cfg.train.amp)  # joins torchrun's group, picks device and precision
    ...build data, model, optimizer, scheduler on loop.device...
    meter = loop.meter(total_steps, per_step=tokens_per_step, log_every=cfg.train.log_every)
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"batches": batches, "meter": meter})
    if cfg.resume:
        loop.resume()                                      # state, parts, this rank's RNG streams, the metrics record
    forward = loop.compile(model, cfg.train.compile)
    with loop.progress(total_steps, unit="tok") as progress:
        for step in meter.steps():                         # Ctrl-C on any rank: save here and end as interrupted
            ...the demo's step, its forward passes inside `with loop.precision.autocast():`...
            meter.trained(loss)                            # NaN or inf ends the run as diverged; the clock stops
            if meter.recording:
                run.log(step, "step", **meter.means, tokens_per_s=round(meter.rate))
            if meter.due(cfg.train.eval_every):
                ...evaluate (not training time)...
                loop.checkpoint()
    loop.finish(report)                                    # plots and the summary, on rank 0 only

What a resumed run restores, and when: the training state and the metrics record at `resume()`; the tracked parts
and every RNG stream (the global generators and the demo's own, the meter among them) as soon as both the
checkpoint and the parts are there, so that a grid of cells or folds, which tracks fresh parts for each, gets them
back in the cell that was interrupted, after that cell has built and seeded its model. A checkpoint taken between
cells holds no parts; its RNG streams come back at `resume()`.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol

import torch

from trends.errors import Diverged, RunInterrupted, UserError
from trends.records.run import Run

from .checkpoint import load_checkpoint, save_checkpoint
from .device import resolve_device
from .distributed import any_rank, gather_objects, init_distributed, mean_across_ranks, rank_entry
from .meter import Meter
from .precision import choose_precision
from .progress import Progress
from .seed import capture_rng, restore_rng

log = logging.getLogger("trends")


@dataclass
class TrainState:
    """How far a loop has come. A demo subclasses it with its own fields, in values a weights-only checkpoint can
    hold (numbers, strings, lists, dicts, tensors). `step` is the x of metrics.jsonl: a resumed run forgets the
    points logged after it."""
    step: int = 0


class Stream(Protocol):
    """Per-rank state beyond the global RNGs: a torch.Generator, a Meter — anything with get/set_state."""

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


class Loop:
    def __init__(self, run: Run, device: str, state: TrainState, amp="auto"):
        self.run = run
        self.dist, self.device = init_distributed(resolve_device(device))
        self.precision = choose_precision(self.device, amp)  # train.amp: auto, true or false
        run.update(**self.precision.summary())
        log.info("precision: %s (%s)", self.precision.name, self.precision.why)
        self.state = state
        self._parts: dict[str, Any] = {}
        self._streams: dict[str, Stream] = {}
        self._kept: dict[str, Any] = {}
        self._waiting: dict | None = None  # a loaded checkpoint whose parts wait for track()
        self._saved_step: int | None = None
        self._meter: Meter | None = None  # the latest meter: a checkpoint stops its clock
        self.bar: Progress | None = None  # the progress bar meters advance

    @property
    def main(self) -> bool:
        return self.dist.main

    # -- what a checkpoint holds ----------------------------------------------------------------------------------
    def track(self, streams: dict[str, Stream] | None = None, **parts) -> None:
        """The model parts (anything with state_dict/load_state_dict) and this rank's own streams that checkpoints
        save from now on, in place of those tracked before (a new cell, a new fold: `track()` alone forgets them)."""
        self._parts, self._streams = parts, dict(streams or {})
        self._restore_parts()

    def keep(self, **values) -> None:
        """Plain values written into every checkpoint for readers of the run (a vocabulary, the model's config)."""
        self._kept.update(values)

    def checkpoint(self) -> None:
        """Save the tracked parts, the state and every rank's RNG streams. Every rank calls it; rank 0 writes.
        Writing it is not training: the meter's clock stops first."""
        if self._meter is not None:
            self._meter.pause()
        ranks = gather_objects({"rng": capture_rng(), "streams": {k: s.get_state() for k, s in self._streams.items()}})
        if self.main:
            save_checkpoint(self.run.checkpoint_path, {
                **self._kept, "state": asdict(self.state), "ranks": ranks, "elapsed": self.run.elapsed,
                "parts": {name: part.state_dict() for name, part in self._parts.items()}})
        self.run.checkpointed(self.state.step)  # the summary says how far a resume starts; the metrics are synced
        self._saved_step = self.state.step

    def resume(self) -> None:
        """Continue from the run folder's checkpoint (see the module's docstring for what comes back when)."""
        saved = load_checkpoint(self.run.checkpoint_path)
        try:
            self.state = type(self.state)(**saved["state"])
        except (KeyError, TypeError):  # no state, or one with other fields
            raise UserError(f"{self.run.checkpoint_path} was written by an older trends; start a new run") from None
        self.run.rewind(self.state.step, saved["elapsed"])
        self._saved_step = self.state.step
        self._waiting = saved
        if not saved["parts"]:
            self._restore_streams()
        self._restore_parts()
        log.info("resumed at step %d", self.state.step)

    def _restore_parts(self) -> None:
        if self._waiting is None or not self._parts or not self._waiting["parts"]:
            return
        saved = self._waiting["parts"]
        if set(saved) != set(self._parts):
            raise UserError(f"{self.run.checkpoint_path} holds {sorted(saved)}, not {sorted(self._parts)}; "
                            "was it written by another command?")
        for name, part in self._parts.items():
            part.load_state_dict(saved[name])
        self._restore_streams()

    def _restore_streams(self) -> None:
        mine = rank_entry(self._waiting["ranks"], self.dist)  # a run resumes on as many processes as it had
        restore_rng(mine["rng"])
        for name, stream in self._streams.items():
            stream.set_state(mine["streams"][name])
        self._waiting = None

    # -- inside the loop ------------------------------------------------------------------------------------------
    def finite(self, loss: torch.Tensor | float, shared: bool = False) -> float:
        """The loss as a float, averaged over ranks so that all of them decide alike (a sync point: timings around
        it are honest on GPUs); `shared`: it is the same on every rank already (a loss over the gathered global batch,
        a LossWindow's mean), so no collective is needed. NaN or inf ends the run as diverged at `state.step`."""
        value = float(loss.detach()) if torch.is_tensor(loss) else loss
        if not shared:
            value = mean_across_ranks(value, self.device)
        if not math.isfinite(value):
            raise Diverged(self.state.step, value)
        return value

    def stop_if_asked(self) -> None:
        """A step boundary (a meter's `steps()` asks before every step): if Ctrl-C reached any rank, every rank saves
        here and the run ends as interrupted."""
        if any_rank(self.run.stop_requested, self.device):
            if self._saved_step != self.state.step:
                self.checkpoint()
            raise RunInterrupted(self.state.step)

    def compile(self, module: torch.nn.Module, enabled: bool) -> torch.nn.Module:
        """torch.compile on CUDA when asked. On CPUs it gains ≈ 5 % on these models, less than its compile time."""
        return torch.compile(module) if enabled and self.device.type == "cuda" else module

    def meter(self, total: int, **options) -> Meter:
        """The meter of the next `total` steps (options: see trends.core.meter.Meter); track it among the streams."""
        self._meter = Meter(self, total, **options)
        return self._meter

    def progress(self, total: int, unit: str = "step") -> Progress:
        """The bar over the whole run's `total` steps; meters advance it with their rate, in `unit`s per second."""
        self.bar = Progress(total, self.run.summary["command"], completed=self.state.step, unit=unit)
        return self.bar

    def finish(self, report: Callable[[], None]) -> None:
        """The end of a run: `report()` (plots, references, the summary's metrics) on rank 0 alone."""
        if self.main:
            report()


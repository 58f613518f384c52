"""The meter of a training loop, after torchvision's `MetricLogger.log_every`: what every demo used to measure for
itself — the time of training alone, its throughput, the mean losses between records, the progress bar, the record
cadence and the step boundary where Ctrl-C stops a run — kept in one place, so that a demo's loop is its step and its
evaluation:

    meter = loop.meter(total, per_step=batch_size, log_every=t.log_every)
    loop.track(model=model, optimizer=optimizer, streams={"meter": meter})  # checkpointed: counters, open windows
    ...
    with loop.progress(total, unit="img"):
        for step in meter.steps():          # a step boundary: Ctrl-C saves and ends the run here, never inside a
            loss = ...the step...           # step and never before what followed the last one (its evaluation)
            meter.trained(loss)             # the step's end: the clock stops, the loss joins its window, the bar
            if meter.recording:             # every log_every steps, at every epoch's end and at the last step
                run.log(step, "train", **meter.means, images_per_s=round(meter.rate, 1))
            if meter.due(t.eval_every):     # evaluation and checkpoints come after trained(): not training time
                ...
"""
from __future__ import annotations

from typing import Iterator

import torch

from trends.clock import Stopwatch

from .device import synchronize
from .distributed import mean_across_ranks


class LossWindow:
    """The mean training loss since the last record: summed where the losses are (no sync per step), per rank, and
    tracked as a stream, so that a run resumed mid-window logs the very means an uninterrupted one would."""

    def __init__(self, device: torch.device):
        self.total = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
        self.count = 0

    def add(self, loss: torch.Tensor | float) -> None:
        self.total += loss.detach() if torch.is_tensor(loss) else loss
        self.count += 1

    def mean(self) -> float:
        """The mean over the window and over ranks (a sync point); the window starts again."""
        value = mean_across_ranks(self.total.item() / max(self.count, 1), self.total.device)
        self.total.zero_()
        self.count = 0
        return value

    def get_state(self) -> dict:
        return {"total": self.total.cpu(), "count": self.count}

    def set_state(self, state: dict) -> None:
        self.total.copy_(state["total"])
        self.count = state["count"]


class Meter:
    """One stretch of training (a run, a grid's cell, a fold): `total` steps of `per_step` items each (tokens,
    images, epochs: throughput is in the demo's unit). Made by `Loop.meter`; a stream the demo tracks, so that its
    steps, its training seconds and its open windows come back on resume and a resumed run reports the rates and
    means an uninterrupted one would.

    `log_every`, `epoch`: a training record every `log_every` steps, at the end of every `epoch` steps and at the
    last step. `warmup`: steps kept out of `rate` once there are others (they pay for compilation and allocation).
    `read_every_step`: read the loss every step (the NaN guard per step; a sync, so each step's time is honest on
    GPUs); False reads it only at records, keeping the GPU's queue full between them — then call `pause()` before
    any evaluation at a step that is not a record."""

    def __init__(self, loop, total: int, per_step: float = 1, log_every: int | None = None,
                 epoch: int | None = None, warmup: int = 0, read_every_step: bool = True):
        self.loop, self.total, self.per_step = loop, total, per_step
        self.log_every, self.epoch, self.warmup, self.read_every_step = log_every, epoch, warmup, read_every_step
        self.step = 0  # steps done in this stretch
        self.clock = Stopwatch()  # training alone: from each step's start to its trained()
        self.warm_seconds: float | None = None  # the clock when warm-up ended
        self.mark = [0, 0.0]  # (step, seconds) at the last record
        self.windows: dict[str, LossWindow] = {}
        self.recording = False  # does this step write a training record?
        self.means: dict[str, float] = {}  # at a record: the mean of each window ("loss" first) since the last
        self.window_rate = 0.0  # at a record: items per second since the last

    # -- the loop -------------------------------------------------------------------------------------------------
    def steps(self, until: int | None = None) -> Iterator[int]:
        """The number each step of this stretch will have once done (1, 2, …), up to `until` (default: `total`).
        Before each, a step boundary: if Ctrl-C reached any rank, every rank saves there and the run ends as
        interrupted — after everything the previous step's body did, its evaluation and checkpoint included."""
        until = self.total if until is None else until
        self.loop.run.begin()  # the run's summary (`running`) exists from here on
        while self.step < until:
            self.loop.stop_if_asked()
            self.clock.start()
            number = self.step + 1
            yield number
            if self.step != number:
                raise RuntimeError("each step of Meter.steps() ends with meter.trained(loss)")

    def trained(self, loss: torch.Tensor | float, shared: bool = False, **values: torch.Tensor) -> float | None:
        """The end of a step's training: the step counts (here and in `loop.state.step`, the x of metrics.jsonl),
        `loss` and `values` (e.g. the batch's accuracy) join their windows, and the clock stops once the loss is read
        (a sync: every step, or at records only). Returns the loss as a float, averaged over ranks and checked for NaN
        or inf, or None where the meter reads it only at records. `shared`: the loss is the same on every rank
        already (computed over the gathered global batch)."""
        self.step += 1
        self.loop.state.step += 1
        for name, value in {"loss": loss, **values}.items():
            if name not in self.windows:
                self.windows[name] = LossWindow(self.loop.device)
            self.windows[name].add(value)
        read = None
        if self.read_every_step:
            read = self.loop.finite(loss, shared)
            self.clock.stop()
        self.recording = self.step == self.total or self._every(self.log_every) or self._every(self.epoch)
        if self.recording:
            self.means = {name: window.mean() for name, window in self.windows.items()}  # a sync
            if read is None:
                self.loop.finite(self.means["loss"], shared=True)
            self.clock.stop()
        elif self.step == self.warmup:
            self.pause()
        if self.step == self.warmup:
            self.warm_seconds = self.clock.seconds
        if self.recording:
            steps, seconds = self.step - self.mark[0], self.clock.seconds - self.mark[1]
            self.window_rate = steps * self.per_step / seconds if seconds > 0 else 0.0
            self.mark = [self.step, self.clock.seconds]
        if self.loop.bar is not None:
            self.loop.bar.advance(rate=self.rate)
        return read

    def due(self, every: int | None) -> bool:
        """Is this step one of every `every` (None: never), or the last? The cadence of evaluations and checkpoints."""
        return self.step == self.total or self._every(every)

    def pause(self) -> None:
        """Stop the clock now, once the device has finished the steps queued so far (their time is training): before
        an evaluation after a step whose loss was not read. `Loop.checkpoint` pauses by itself."""
        if self.clock.running:
            synchronize(self.loop.device)
            self.clock.stop()

    def _every(self, n: int | None) -> bool:
        return bool(n) and self.step % n == 0

    # -- what it measured -----------------------------------------------------------------------------------------
    @property
    def items(self) -> float:
        """Items trained on in this stretch, the warm-up included."""
        return self.step * self.per_step

    @property
    def rate(self) -> float:
        """Items per second of training, over every step so far but the warm-up's (all of them while there are no
        others), the steps before a resume included."""
        steps, seconds = self.step, self.clock.read()
        if self.warm_seconds is not None and steps > self.warmup:
            steps, seconds = steps - self.warmup, seconds - self.warm_seconds
        return steps * self.per_step / seconds if seconds > 0 else 0.0

    # -- a stream: this rank's part of a checkpoint ---------------------------------------------------------------
    def get_state(self) -> dict:
        return {"step": self.step, "seconds": self.clock.read(), "warm_seconds": self.warm_seconds,
                "mark": self.mark, "windows": {name: window.get_state() for name, window in self.windows.items()}}

    def set_state(self, state: dict) -> None:
        self.step, self.clock, self.warm_seconds = state["step"], Stopwatch(state["seconds"]), state["warm_seconds"]
        self.mark = list(state["mark"])
        self.windows = {}
        for name, saved in state["windows"].items():
            self.windows[name] = LossWindow(self.loop.device)
            self.windows[name].set_state(saved)

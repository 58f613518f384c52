"""The training skeleton (trends.core.loop and its meter), proved once for every demo: a run stopped by Ctrl-C at any
step and resumed from its checkpoint ends bit for bit where an uninterrupted run ends, its loss means and training
seconds included; NaN stops a run as diverged; a grid of cells resumes inside the cell that was interrupted; the
meter's clock leaves evaluations and checkpoints out; Ctrl-C on an epoch's last step stops after its evaluation."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest
import torch
from omegaconf import OmegaConf

from trends.errors import Diverged, RunInterrupted, UserError
from trends.core import loop as loop_module
from trends.core.loop import Loop, TrainState
from trends.records.run import Run
from trends.core.schedule import warmup_cosine


@dataclass
class ToyState(TrainState):
    best: float = float("inf")
    seen: list = field(default_factory=list)


def _run(folder) -> Run:
    folder.mkdir(exist_ok=True)
    return Run(folder, OmegaConf.create({"seed": 0}), "toy", [])


def train(folder, steps: int, *, stop_at: int | None = None, resume: bool = False, lr: float = 0.05) -> Loop:
    """A small model with dropout (the global RNG), momentum and a schedule (optimizer and scheduler state), batches
    from its own generator (a stream) and a loss record over windows of 3 steps (the meter, a stream too)."""
    run = _run(folder)
    loop = Loop(run, "cpu", ToyState())
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = warmup_cosine(optimizer, 2, steps)
    batches = torch.Generator().manual_seed(1)
    meter = loop.meter(steps, per_step=16, log_every=3)
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"batches": batches, "meter": meter})
    if resume:
        loop.resume()
    loop.started_at = meter.step, meter.clock.seconds  # for the assertions
    for step in meter.steps():
        x = torch.randn(16, 4, generator=batches)
        loss = (model(x).squeeze(1) - x.sum(1)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        value = meter.trained(loss)
        loop.state.best = min(loop.state.best, value)
        loop.state.seen.append(step)
        if meter.recording:
            run.log(step, "train", loss=meter.means["loss"])
        if step % 4 == 0:
            loop.checkpoint()
        if step == stop_at:
            run.stop_requested = True  # what the Ctrl-C handler does
    loop.model = model  # for the assertions
    return loop


def _losses(folder) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("stop_at", [1, 5, 8, 11])  # before any checkpoint, mid-window, on a checkpoint, late
def test_ctrl_c_then_resume_ends_exactly_where_an_uninterrupted_run_ends(tmp_path, stop_at):
    straight = train(tmp_path / "straight", 12)
    with pytest.raises(RunInterrupted):
        train(tmp_path / "run", 12, stop_at=stop_at)
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["state"]["step"] == stop_at  # saved at the step where it stopped
    assert set(saved["parts"]) == {"model", "optimizer", "scheduler"} and len(saved["ranks"]) == 1
    resumed = train(tmp_path / "run", 12, resume=True)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.state == straight.state
    assert _losses(tmp_path / "run") == _losses(tmp_path / "straight")  # the loss window across the stop too
    meter = saved["ranks"][0]["streams"]["meter"]
    assert resumed.started_at == (stop_at, meter["seconds"]) and meter["seconds"] > 0  # training seconds go on


def test_nan_ends_the_run_as_diverged_at_its_step(tmp_path):
    with pytest.raises(Diverged) as stopped:
        train(tmp_path / "run", 12, lr=1e6)
    assert stopped.value.step >= 1


def test_a_checkpoint_of_other_parts_is_refused(tmp_path):
    train(tmp_path / "run", 4)
    loop = Loop(_run(tmp_path / "run"), "cpu", ToyState())
    loop.track(encoder=torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="holds"):
        loop.resume()


@dataclass
class GridState(TrainState):
    results: dict = field(default_factory=dict)


def grid(folder, *, stop_at: int | None = None, resume: bool = False) -> dict:
    """Three cells, each a fresh model seeded on its own, as vit-vs-cnn's grid and gnn's folds are."""
    run = _run(folder)
    loop = Loop(run, "cpu", GridState())
    if resume:
        loop.resume()
    for cell in ("a", "b", "c"):
        if cell in loop.state.results:
            continue
        torch.manual_seed(ord(cell))
        model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
        optimizer = torch.optim.Adam(model.parameters())
        meter = loop.meter(5)  # five steps a cell, counted by the cell's own meter
        loop.track(model=model, optimizer=optimizer, streams={"meter": meter})  # a mid-cell checkpoint comes back here
        for _ in meter.steps():
            optimizer.zero_grad()
            loss = model(torch.randn(4, 3)).sum()
            loss.backward()
            optimizer.step()
            meter.trained(loss)
            if loop.state.step == stop_at:
                run.stop_requested = True
        loop.state.results[cell] = model[0].weight.sum().item()
        loop.track()
        loop.checkpoint()
    return loop.state.results


@pytest.mark.parametrize("stop_at", [3, 5, 7])  # inside the first cell, at its end, inside the second
def test_a_grid_of_cells_resumes_inside_the_interrupted_cell(tmp_path, stop_at):
    expected = grid(tmp_path / "straight")
    with pytest.raises(RunInterrupted):
        grid(tmp_path / "run", stop_at=stop_at)
    assert grid(tmp_path / "run", resume=True) == expected


@pytest.mark.parametrize("read_every_step", [True, False])
def test_training_seconds_leave_out_evaluations_and_checkpoints(tmp_path, monkeypatch, read_every_step):
    """Steps of 10 ms, each followed by an evaluation and a checkpoint of 150 ms each, in either order: the meter's
    clock holds the steps alone, whether it reads the loss every step or only at records (a checkpoint stops the
    clock by itself; an evaluation after a step whose loss is not read pauses it first)."""
    def slow_save(*args):
        time.sleep(0.15)
        save(*args)

    save = loop_module.save_checkpoint
    monkeypatch.setattr(loop_module, "save_checkpoint", slow_save)
    loop = Loop(_run(tmp_path), "cpu", TrainState())
    meter = loop.meter(4, per_step=10, log_every=2, read_every_step=read_every_step)
    loop.track(streams={"meter": meter})
    for step in meter.steps():
        time.sleep(0.01)  # the step
        meter.trained(torch.tensor(1.0))
        if step % 2:
            loop.checkpoint()
        if not read_every_step:
            meter.pause()
        time.sleep(0.15)  # an evaluation
        if not step % 2:
            loop.checkpoint()
    assert 0.04 <= meter.clock.seconds < 0.15  # four steps; not one evaluation or checkpoint
    assert 40 / 0.15 < meter.rate <= 40 / 0.04  # items per second of training


def epochs(folder, *, stop_at: int | None = None, resume: bool = False) -> Loop:
    """Two epochs of three steps, an evaluation after each epoch: the shape of the pretraining loop."""
    run = _run(folder)
    loop = Loop(run, "cpu", TrainState())
    meter = loop.meter(6, log_every=2, epoch=3)
    loop.track(streams={"meter": meter})
    if resume:
        loop.resume()
    for step in meter.steps():
        meter.trained(torch.tensor(float(step)))
        if step == stop_at:
            run.stop_requested = True  # Ctrl-C during the step, before the epoch's evaluation
        if meter.recording:
            run.log(step, "train", loss=meter.means["loss"])
        if step % 3 == 0:
            run.log(step, "eval", epoch=step // 3)
            loop.checkpoint()
    return loop


def test_ctrl_c_on_an_epochs_last_step_stops_after_its_evaluation(tmp_path):
    epochs(tmp_path / "straight")
    with pytest.raises(RunInterrupted):
        epochs(tmp_path / "run", stop_at=3)
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["state"]["step"] == 3
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1] == {**records[-1], "step": 3, "split": "eval", "epoch": 1}  # the evaluation came first
    epochs(tmp_path / "run", resume=True)
    assert _records(tmp_path / "run") == _records(tmp_path / "straight")  # nothing lost, nothing twice


def _records(folder) -> list[tuple]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["split"], r.get("loss")) for r in map(json.loads, lines)]

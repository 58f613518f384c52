"""The training skeleton (trends.core.loop), proved once for every demo: a run stopped by Ctrl-C at any step and
resumed from its checkpoint ends bit for bit where an uninterrupted run ends; NaN stops a run as diverged; a grid of
cells resumes inside the cell that was interrupted."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch
from omegaconf import OmegaConf

from trends.errors import Diverged, RunInterrupted, UserError
from trends.core.loop import Loop, LossWindow, TrainState
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
    from its own generator (a stream) and a loss record over windows of 3 steps (a LossWindow)."""
    run = _run(folder)
    loop = Loop(run, "cpu", ToyState())
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = warmup_cosine(optimizer, 2, steps)
    batches = torch.Generator().manual_seed(1)
    window = LossWindow(loop.device)
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"batches": batches, "loss": window})
    if resume:
        loop.resume()
    while loop.state.step < steps:
        x = torch.randn(16, 4, generator=batches)
        loss = (model(x).squeeze(1) - x.sum(1)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loop.state.step += 1
        window.add(loss)
        value = loop.finite(loss)
        loop.state.best = min(loop.state.best, value)
        loop.state.seen.append(loop.state.step)
        if loop.state.step % 3 == 0:
            run.log(loop.state.step, "train", loss=window.mean())
        if loop.state.step % 4 == 0:
            loop.checkpoint()
        if loop.state.step == stop_at:
            run.stop_requested = True  # what the Ctrl-C handler does
        loop.stop_if_asked()
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
    for number, cell in enumerate(("a", "b", "c")):
        if cell in loop.state.results:
            continue
        torch.manual_seed(ord(cell))
        model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
        optimizer = torch.optim.Adam(model.parameters())
        loop.track(model=model, optimizer=optimizer)  # a mid-cell checkpoint comes back here, in its cell
        while loop.state.step < 5 * (number + 1):  # five steps a cell
            optimizer.zero_grad()
            model(torch.randn(4, 3)).sum().backward()
            optimizer.step()
            loop.state.step += 1
            if loop.state.step == stop_at:
                run.stop_requested = True
            loop.stop_if_asked()
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

"""`trends tour`: a failing demo is shown on the page while the others complete; Ctrl-C stops the tour, which then
continues without rerunning the demos that finished; the page loads in headless Chromium."""
from __future__ import annotations

import json

from helpers import CHROMIUM, TRENDS, ctrl_c_after_first_checkpoint, in_chromium, trends

TOUR = ["tour", "--smoke", "--only", "lm,gnn"]


def _state(workdir) -> dict:
    return json.loads((workdir / "outputs" / "tour-smoke" / "tour.json").read_text())


def test_a_failing_demo_is_shown_and_ctrl_c_then_continues_without_rerunning_finished_ones(workdir):
    failing = trends(*TOUR, "--set", "gnn:optim.lr=-1", cwd=workdir)  # a value that cannot work: gnn exits 2
    assert failing.returncode == 1, failing.stderr
    state = _state(workdir)
    assert state["lm"]["status"] == "completed" and state["gnn"]["status"] == "failed"
    assert state["gnn"]["exit_code"] == 2
    page = (workdir / "outputs" / "tour-smoke" / "tour.html").read_text()
    assert "best val loss" in page and "failed" in page and "1/2 trends completed" in page
    (lm_run,) = (workdir / "outputs" / "tour-smoke" / "runs" / "lm").iterdir()

    long_gnn = [*TRENDS, *TOUR, "--set", "gnn:train.epochs=400"]  # long enough to be stopped mid-way
    code, err = ctrl_c_after_first_checkpoint(long_gnn, "tour-smoke/runs/gnn/multirun/*", workdir, whole_group=True)
    assert code == 130, err
    assert _state(workdir)["gnn"]["status"] == "interrupted" and "continues where it stopped" in err

    again = trends(*TOUR, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "lm: done before" in again.stdout and "--resume" in again.stdout
    state = _state(workdir)
    assert state["gnn"]["status"] == "completed"
    assert list((workdir / "outputs" / "tour-smoke" / "runs" / "lm").iterdir()) == [lm_run]  # lm not rerun
    page = workdir / "outputs" / "tour-smoke" / "tour.html"
    assert "GCN test accuracy" in page.read_text() and "2/2 trends completed" in page.read_text()
    if CHROMIUM:
        seen = in_chromium(page, workdir)
        assert seen.broken_images == 0 and seen.images >= 1 and not seen.console and seen.colours > 50


def test_tour_refuses_an_unknown_stage(cli):
    code, out = cli("tour", "--smoke", "--only", "lm,gpt5")
    assert code == 2 and "gpt5: not a stage" in out

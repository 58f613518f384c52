"""Reports: every run and sweep leaves a self-contained report.html; `trends report` rebuilds one or compares runs
(only the config keys that differ); `trends runs` shows a sweep as one row and `trends runs compare` diffs runs in
the terminal; each kind of page loads in headless Chromium with every image decoded, no console error, and a
screenshot that is not blank."""
from __future__ import annotations

import json
import re

import pytest

from helpers import CHROMIUM, in_chromium, summary, trends
from trends.records.report import Folder, config_diff

SWEEP = ["--smoke", "-m", "model.n_embd=16,32", "seed=0,1", "train.steps=6", "train.eval_every=3"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    result = trends("lm", *SWEEP, cwd=root)
    assert result.returncode == 0, result.stderr
    (folder,) = (root / "outputs" / "lm" / "multirun").iterdir()
    return folder


def test_every_run_and_the_sweep_leave_a_self_contained_report(sweep):
    pages = [sweep / "report.html", *(sweep / str(n) / "report.html" for n in range(4))]
    for page in pages:
        html = page.read_text()
        assert page.stat().st_size < 2_000_000
        assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from the network
    run = (sweep / "0" / "report.html").read_text()
    assert "best_val_loss" in run and "trends lm --smoke" not in run  # the command is the overrides the run had
    assert "trends lm experiment=smoke model.n_embd=16 seed=0" in run and "data:image/png;base64," in run
    page = (sweep / "report.html").read_text()
    assert "Mean ± std over seeds" in page and "model.n_embd=16" in page and "<svg" in page


def test_the_comparison_shows_exactly_the_keys_that_differ(sweep, cli, tmp_path):
    first, last = Folder(sweep / "0"), Folder(sweep / "3")  # n_embd 16 seed 0 against n_embd 32 seed 1
    assert {row["key"] for row in config_diff([first, last])} == {"model.n_embd", "seed"}
    code, out = cli("report", str(sweep / "0"), str(sweep / "3"), "-o", str(tmp_path / "compare.html"))
    assert code == 0, out
    html = (tmp_path / "compare.html").read_text()
    assert "model.n_embd" in html and "Curves overlaid" in html and "train.steps" not in html
    code, out = cli("runs", "compare", str(sweep / "0"), str(sweep / "3"))
    assert code == 0 and "model.n_embd" in out and "seed" in out and "train.steps" not in out


def test_runs_lists_a_sweep_as_one_row(sweep, cli):
    from trends.cli.runs import find_runs

    root = sweep.parent.parent.parent
    assert find_runs(root) == [sweep]  # its four jobs are inside its row, not beside it
    code, out = cli("runs", "--root", str(root))
    assert code == 0 and "4 completed" in out


def test_report_refuses_a_folder_that_is_not_a_run(cli, tmp_path):
    code, out = cli("report", str(tmp_path))
    assert code == 2 and "not a run or sweep folder" in out


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (`.ci/run` installs Debian's chromium)")
@pytest.mark.parametrize("kind", ["run", "sweep", "comparison"])
def test_each_kind_of_report_renders_in_headless_chromium(sweep, kind, tmp_path):
    page = {"run": sweep / "0" / "report.html", "sweep": sweep / "report.html"}.get(kind)
    if page is None:
        assert trends("report", str(sweep / "0"), str(sweep / "3"), "-o", str(tmp_path / "c.html"),
                      cwd=tmp_path).returncode == 0
        page = tmp_path / "c.html"
    seen = in_chromium(page, tmp_path)
    assert seen.broken_images == 0 and (seen.images > 0 or kind != "run")  # sweep and comparison charts are SVG
    assert not seen.console, seen.console
    assert seen.colours > 50  # text, tables and charts: not a blank page


def test_tensorboard_events_hold_the_logged_values_and_the_hparams(workdir, cli):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, out = cli("lm", "--smoke", "logger=tensorboard", "model.n_embd=16")
    assert code == 0, out
    (run,) = (workdir / "outputs" / "lm").iterdir()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r["split"] == "val"]
    assert [(e.step, e.value) for e in events.Scalars("val/loss")] == [(s, pytest.approx(v)) for s, v in logged]
    assert events.Scalars("hparam/best_val_loss")[0].value == pytest.approx(summary(run)["metrics"]["best_val_loss"])
    assert events.PluginTagToContent("hparams")  # the HParams view's record of this run's overrides


def test_tensorboard_without_the_extra_is_one_line_naming_it(workdir):
    blocked = workdir / "blocked" / "tensorboard"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed')\n")  # as if the extra were missing
    result = trends("lm", "--smoke", "logger=tensorboard", cwd=workdir, env={"PYTHONPATH": str(blocked.parent)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: logger=tensorboard needs TensorBoard: pip install 'trends[tensorboard]'"
    assert not (workdir / "outputs").exists()


def test_the_python_entry_runs_a_demo_and_returns_its_record(workdir):
    from trends import run
    from trends.errors import UserError

    record = run("lm", "model.n_embd=16", smoke=True)
    assert record.status == "completed" and record.headline[0] == "best_val_loss"
    assert record.headline[1] == summary(record.path)["metrics"]["best_val_loss"]
    steps, losses = record.curve("val", "loss")
    assert steps == [10, 20, 30] and losses[-1] == pytest.approx(record.metrics["final_val_loss"], abs=1e-4)
    assert record.report.is_file() and {p.name for p in record.plots} == {"loss.png", "step_loss.png"}
    assert "best_val_loss=" in repr(record)
    with pytest.raises(UserError, match="optim.lr must be > 0"):
        run("lm", "optim.lr=-1", smoke=True)
    with pytest.raises(UserError, match="no demo called"):
        run("nope")

"""Reports: every run and sweep leaves a self-contained report.html that leads with its finding (the demo's sentence,
or for a plain sweep the best variant against the others), then its lead figure, then the tables, with the flat
record folded away; chart labels are written in full; `trends report` rebuilds one or compares runs (only the config
keys that differ); `trends runs` shows a sweep as one row and `trends runs compare` diffs runs in the terminal; each
kind of page loads in headless Chromium with every image decoded, no console error, and a screenshot that is not
blank (TRENDS_REFRESH_SCREENSHOTS=1 keeps them as tests/screenshots/<kind>.png)."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from helpers import CHROMIUM, REPO, in_chromium, summary, trends
from trends.records.charts import bar_chart, line_chart, wrap
from trends.records.report import Folder, config_diff, write_report

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


def fake_run(folder, summary_fields: dict, plots=("a_first.png", "knn.png")):
    """A run folder as a demo leaves it, without training: summary.json, metrics.jsonl, plots, a table."""
    from PIL import Image

    (folder / "plots").mkdir(parents=True)
    for i, name in enumerate(plots):
        Image.new("RGB", (40, 30), (40 * i, 90, 160)).save(folder / "plots" / name)
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "split": "val", "loss": 2.0 / s}) + "\n"
                                                  for s in (1, 2, 3)))
    (folder / "comparison.csv").write_text("model,acc\nours,0.5\nbaseline,0.4\n")
    (folder / "summary.json").write_text(json.dumps({"status": "completed", "command": "demo", "overrides": [],
                                                     "device": "cpu", **summary_fields}))
    return folder


def main_of(html: str) -> str:
    return html.split("<main>", 1)[1].split("</main>", 1)[0]


def first_text(html: str) -> str:
    """The text of a piece of a page, tags dropped and white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


FINDING = "The encoder reaches 0.541 — 12.3 points above the same encoder untrained (0.418)"


def test_a_run_page_leads_with_its_finding_then_its_figure_then_the_tables(tmp_path):
    run = fake_run(tmp_path / "run", {"finding": FINDING, "lead_plot": "knn.png", "headline": "acc",
                                      "metrics": {"acc": 0.541, "random_init_acc": 0.418}})
    main = main_of(write_report([run]).read_text())
    assert first_text(main).startswith(FINDING)
    first_figure = min(main.index(tag) for tag in ("<img", "<svg") if tag in main)
    assert main.index(FINDING) < first_figure < main.index("<table")
    assert re.search(r'<figure class="lead"><img [^>]*alt="knn.png"', main)  # the figure the demo named
    folds = re.findall(r"<details[^>]*>.*?</details>", main, flags=re.S)
    record = next(f for f in folds if "summary.json" in f)
    assert "<details class=\"fold\">" in record and " open" not in record.split(">", 1)[0]  # closed
    assert ">device<" in record and ">device<" not in main.replace(record, "")  # the flat dump is only in the fold
    assert main.rindex("<table") > main.index("comparison")  # the demo's table is on the page, above the fold
    assert main.index("comparison") < main.index(record)


def test_a_run_without_a_named_figure_or_finding_leads_with_its_headline_and_first_plot(tmp_path):
    run = fake_run(tmp_path / "run", {"headline": "acc", "metrics": {"acc": 0.541}})
    main = main_of(write_report([run]).read_text())
    assert first_text(main).startswith("acc = 0.541")
    assert re.search(r'<figure class="lead"><img [^>]*alt="a_first.png"', main)
    bare = fake_run(tmp_path / "bare", {"headline": "best_val_loss", "metrics": {"best_val_loss": 0.5}}, plots=())
    main = main_of(write_report([bare]).read_text())
    assert re.search(r'<figure class="lead"><svg', main)  # no plot: the headline's curve from metrics.jsonl


def fake_sweep(folder, values: dict[str, list[float]], metric="test_acc", analysis: dict | None = None):
    """A grid sweep's folder: one job per (variant, seed) with its headline metric, as `trends X -m` leaves it."""
    folder.mkdir(parents=True)
    task = sorted({o for variant in values for o in variant.split()})
    (folder / "multirun.yaml").write_text(json.dumps({"hydra": {"overrides": {"task": task}}}))
    job = 0
    for variant, seeds in values.items():
        for seed, value in enumerate(seeds):
            (folder / str(job)).mkdir()
            (folder / str(job) / "summary.json").write_text(json.dumps({
                "status": "completed", "command": "gnn", "overrides": [*variant.split(), f"seed={seed}"],
                "headline": metric, "metrics": {metric: value}}))
            job += 1
    if analysis is not None:
        (folder / "summary.json").write_text(json.dumps(analysis))
    return folder


def test_a_sweep_page_leads_with_the_best_variant_against_the_others(tmp_path):
    sweep = fake_sweep(tmp_path / "sweep", {"model=gcn": [81.0, 82.0], "model=mlp": [59.0, 60.0]})
    main = main_of(write_report([sweep]).read_text())
    assert first_text(main).startswith(
        "model=gcn is the best of 2 variants by test_acc: 81.50 ± 0.71 over 2 seeds — 22 above model=mlp "
        "(59.50 ± 0.71)")
    assert main.index('<figure class="lead"><svg') < main.index("<table")  # the bars across variants lead


def test_a_sweep_page_leads_with_its_analysis_finding_and_folds_its_numbers(tmp_path):
    sentence = "The DistilBERT-style student reaches 1.728 — 0.20 below the same student from scratch (1.931)"
    sweep = fake_sweep(tmp_path / "sweep", {"distill.method=scratch": [1.93], "distill.method=distilbert": [1.73]},
                       metric="best_val_loss", analysis={"status": "completed", "finding": sentence,
                                                         "val_loss/scratch": 1.931, "val_loss_std/scratch": 0.013})
    main = main_of(write_report([sweep]).read_text())
    assert first_text(main).startswith(sentence)
    (fold,) = re.findall(r"<details[^>]*>.*?</details>", main, flags=re.S)
    assert "val_loss_std/scratch" in fold and "val_loss_std/scratch" not in main.replace(fold, "")
    assert main.index("Jobs") < main.index(fold)  # under the tables
    assert ">scratch</tspan>" in main and "distilbert</tspan>" in main  # the bars' labels: the values in full
    assert "distill.method" in main and "…" not in main


def test_chart_labels_are_written_in_full():
    label = "distill.method=soft_targets model.n_embd=32"
    svg = bar_chart([label, "distill.method=scratch model.n_embd=32", "x"], [1.0, 2.0, 3.0], title="t")
    assert "…" not in svg
    spans = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
    assert "".join(spans).replace(" ", "").startswith(label.replace(" ", ""))  # every character, wrapped
    many = bar_chart([f"optim.lr={10 ** -i:g}" for i in range(12)], list(range(12)), title="t")
    assert "optim.lr=1e-11" in re.sub(r"</tspan><tspan[^>]*>", "", many)  # more bars: a wider chart, not cut labels
    legend = line_chart({label: ([1, 2], [1.0, 2.0]), "short": ([1, 2], [2.0, 1.0])}, title="t")
    assert "soft_targets" in legend and "…" not in legend
    assert all(len(line) <= 10 for line in wrap("distill.method=soft_targets", 10))
    assert "".join(wrap("a_very_long_override=with_a_value", 8)) == "a_very_long_override=with_a_value"


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
    if os.environ.get("TRENDS_REFRESH_SCREENSHOTS"):  # the README's and the docs' pictures of each kind of page
        shutil.copyfile(tmp_path / f"{page.stem}.png", REPO / "tests" / "screenshots" / f"{kind}.png")


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
    assert result.stderr.strip() == "error: logger=tensorboard needs TensorBoard: pip install 'trends-lab[tensorboard]'"
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

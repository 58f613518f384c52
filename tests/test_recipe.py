"""`trends recipe`: the ladder's smoke run through the CLI (a job per rung and seed, the table, the waterfall, the
summary's keys in ladder order, the report), an interrupted ladder resumed, the analysis on hand-made records (the
time to the target, mean ± std, the change in nats and in σ), and the rungs composed as `trends lm` composes them."""
from __future__ import annotations

import html
import io
import json
import shutil

import pytest
import torch
import yaml
from helpers import summary
from omegaconf import OmegaConf
from rich.console import Console
from typer.testing import CliRunner

from trends.recipe.analysis import analyse
from trends.recipe.ladder import time_to_reach

RUNGS = ["gpt2", "rotary", "rmsnorm", "relu2", "qk_norm", "modern"]


@pytest.fixture(scope="module")
def smoke_ladder(tmp_path_factory):
    """`trends recipe --smoke` in-process, in a fresh folder, on one thread (these models are too small to gain from
    a second, and two OpenMP threads waiting on each other on a loaded 2-core machine make every op many times
    slower: 12 s against 60 s). Yields the CLI (as the `cli` fixture's), the folder, and the run's exit code and
    output."""
    from trends.cli.main import app

    root = tmp_path_factory.mktemp("recipe")
    runner = CliRunner()

    def cli(*args: str):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.setenv("OMP_NUM_THREADS", "1")
        for name in ("TRENDS_OUTPUTS", "TRENDS_DATA", "HYDRA_FULL_ERROR"):
            mp.delenv(name, raising=False)
        yield cli, root, cli("recipe", "--smoke")
    torch.set_num_threads(threads)


def _sweep(root):
    (sweep,) = (root / "outputs" / "recipe" / "multirun").iterdir()
    return sweep


def test_smoke_ladder_leaves_a_job_per_rung_and_seed_the_table_and_the_waterfall(smoke_ladder):
    _, root, (code, output) = smoke_ladder
    assert code == 0, output[-3000:]
    sweep = _sweep(root)
    expected = [f"{n}_{rung}" for n, rung in enumerate(RUNGS * 2)]  # the whole ladder at seed 0, then at seed 1
    assert sorted((p.name for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit()),
                  key=lambda name: int(name.split("_")[0])) == expected
    for n, name in enumerate(expected):
        job = summary(sweep / name)
        assert job["status"] == "completed" and job["command"] == "recipe", name
        assert job["rung"] == RUNGS[n % 6] and job["seed"] == n // 6 and job["trick"], name
    for name in ("recipe.md", "recipe.csv", "sweep.md", "sweep.csv", "plots/waterfall.png", "report.html"):
        assert (sweep / name).is_file() and (sweep / name).stat().st_size > 0, name

    found = summary(sweep)
    assert found["status"] == "completed" and found["headline"] == "val_loss/modern"
    assert [k.split("/")[1] for k in found if k.startswith("val_loss/")] == RUNGS  # in ladder order
    assert [k.split("/")[1] for k in found if k.startswith("val_loss_std/")] == RUNGS
    for rung in RUNGS:
        losses = [summary(sweep / f"{n}_{rung}")["metrics"]["best_val_loss"] for n in (RUNGS.index(rung),
                                                                                         RUNGS.index(rung) + 6)]
        assert found[f"val_loss/{rung}"] == pytest.approx(sum(losses) / 2, abs=1e-4)
        assert found[f"val_loss_std/{rung}"] == pytest.approx(abs(losses[0] - losses[1]) / 2 ** 0.5, abs=1e-4)
    assert [r["rung"] for r in found["rungs"]] == RUNGS and found["left_out"] == []
    assert found["improvement"] == pytest.approx(found["val_loss/gpt2"] - found["val_loss/modern"], abs=1e-3)
    assert "modern" in found["finding"] and "gpt2" in found["finding"]
    assert (sweep / "recipe.md").read_text().startswith("| rung | trick | seeds | val_loss | val_loss_std |")
    assert found["finding"][1:] in html.unescape((sweep / "report.html").read_text())  # the page leads with it
    assert "+ QK-norm:" in output and "σ" in output  # each trick's change, as the terminal shows it


def test_the_tours_recipe_stage_reads_the_ladder(smoke_ladder):
    """The tour runs `trends recipe` (with --smoke, --quick's overrides, or none) and shows its waterfall and the
    last rung against the first."""
    from trends.api import Record
    from trends.cli.tour import findings, stages

    _, root, (code, _) = smoke_ladder
    assert code == 0
    sweep = _sweep(root)
    (stage,) = [s for s in stages() if s["name"] == "recipe"]
    assert stage["command"] == "recipe" and (sweep / "plots" / stage["figure"]).is_file()
    found, rungs = findings("recipe", Record.load(sweep)), summary(sweep)["rungs"]
    assert f"{rungs[-1]['val_loss']:.3f}" in found.headline and f"{rungs[0]['val_loss']:.3f}" in found.baseline
    assert found.beats == (rungs[-1]["val_loss"] < rungs[0]["val_loss"])


def test_an_interrupted_ladder_resumes_keeping_its_finished_rungs(smoke_ladder):
    """The last two jobs never ran (the sweep was stopped before them): --resume runs those, keeps the others as
    they are, and ends with the same table (the same seeds on one thread give the same losses)."""
    cli, root, (code, _) = smoke_ladder
    assert code == 0
    sweep = _sweep(root)
    stopped = shutil.copytree(sweep, root / "outputs" / "recipe" / "stopped")
    for name in ("10_qk_norm", "11_modern", "plots", "summary.json", "recipe.md", "recipe.csv", "report.html"):
        path = stopped / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    kept = {n: summary(stopped / f"{n}_{rung}") for n, rung in enumerate(RUNGS * 2) if n < 10}

    code, output = cli("recipe", "--resume", str(stopped))
    assert code == 0, output[-3000:]
    for n, rung in enumerate(RUNGS * 2):
        job = summary(stopped / f"{n}_{rung}")
        assert job["status"] == "completed"
        if n < 10:
            assert job == kept[n], n  # not run again
        else:
            assert job["metrics"]["best_val_loss"] == summary(sweep / f"{n}_{rung}")["metrics"]["best_val_loss"]
    resumed, first = summary(stopped), summary(sweep)
    assert {k: v for k, v in resumed.items() if k.startswith("val_loss")} == \
        {k: v for k, v in first.items() if k.startswith("val_loss")}
    assert (stopped / "plots" / "waterfall.png").is_file() and (stopped / "report.html").is_file()
    assert "resume=" not in (stopped / "sweep.md").read_text()  # how a job was launched is not a variant of it


def test_time_to_reach_interpolates_between_the_evaluations_around_the_target():
    def curve(*points):
        return [{"loss": loss, "elapsed": seconds} for loss, seconds in points]

    # 1.900 at 100 s, 1.800 at 120 s: 1.886 is 14 % of the way down, 2.8 s after the first
    assert time_to_reach(1.886, curve((2.5, 80.0), (1.9, 100.0), (1.8, 120.0), (1.7, 140.0))) == pytest.approx(102.8)
    assert time_to_reach(2.0, curve((2.5, 10.0), (2.0, 20.0))) == pytest.approx(20.0)  # reached exactly
    assert time_to_reach(2.0, curve((1.95, 12.0), (1.5, 30.0))) == 12.0  # the first evaluation is already there
    assert time_to_reach(2.0, curve((2.5, 10.0), (2.2, 20.0))) is None  # never
    assert time_to_reach(2.0, []) is None


def _job(sweep, n: int, rung: str, loss: float, val: list[tuple[float, float]], status: str = "completed",
         rate: float = 1000.0, extra: tuple[str, ...] = ()) -> None:
    """A finished job of a `trends recipe` sweep, as train.py and the trainer leave it: summary.json and the
    validation points of metrics.jsonl."""
    job = sweep / f"{n}_{rung}"
    job.mkdir(parents=True)
    (job / "summary.json").write_text(json.dumps({
        "status": status, "command": "recipe", "overrides": [f"seed={n // 3}", f"rung={rung}", *extra],
        "rung": rung, "trick": f"+ {rung}", "trick_what": f"what {rung} is",
        "metrics": {"best_val_loss": loss, "tokens_per_s": rate}}))
    (job / "metrics.jsonl").write_text("".join(
        json.dumps({"step": 10 * (i + 1), "split": split, "loss": value, "elapsed": seconds}) + "\n"
        for i, (value, seconds) in enumerate(val) for split in ("train", "val")))


def test_the_analysis_of_hand_made_records(tmp_path):
    """Three rungs × two seeds and a failed job: each rung's mean ± std, its change from the rung before and from the
    first in nats and in σ (the pooled std of one seed), the mean time to the target over the seeds when all reached
    it, and the summary's keys in ladder order."""
    sweep = tmp_path / "sweep"
    for seed, (gpt2, rotary, modern) in enumerate((
            ((2.0, [(2.5, 10.0), (2.1, 20.0), (2.0, 30.0)]), (1.9, [(2.4, 10.0), (1.9, 20.0)]),
             (1.8, [(2.2, 4.0), (1.8, 8.0)])),
            ((2.2, [(2.5, 10.0), (2.2, 20.0)]), (2.1, [(1.95, 12.0)]), (2.0, [(2.1, 5.0), (1.9, 9.0)])))):
        for k, (rung, (loss, val)) in enumerate(zip(("gpt2", "rotary", "modern"), (gpt2, rotary, modern))):
            _job(sweep, 3 * seed + k, rung, loss, val, rate=1000.0 + 2000.0 * seed)
    _job(sweep, 6, "modern", 9.9, [], status="failed")
    config = OmegaConf.create({"ladder": {"target_loss": 2.0}})
    out = io.StringIO()
    found = analyse(sweep, config, Console(file=out, width=200))

    gpt2, rotary, modern = found["rungs"]
    assert [r["rung"] for r in found["rungs"]] == ["gpt2", "rotary", "modern"]
    assert (gpt2["val_loss"], gpt2["val_loss_std"], gpt2["seeds"]) == (2.1, 0.1414, 2)  # √((0.1² + 0.1²) / 1)
    assert (rotary["val_loss"], modern["val_loss"], modern["val_loss_std"]) == (2.0, 1.9, 0.1414)
    assert gpt2["tokens_per_s"] == 2000  # mean over the seeds
    # The change: −0.1 nats from the rung before; σ = the pooled std of one seed, √((0.02 + 0.02) / 2) = 0.1414.
    assert (rotary["vs_before"], rotary["vs_before_sigmas"], rotary["vs_gpt2"]) == (-0.1, -0.7, -0.1)
    assert (modern["vs_before"], modern["vs_before_sigmas"]) == (-0.1, -0.7)
    assert (modern["vs_gpt2"], modern["vs_gpt2_sigmas"]) == (-0.2, -1.4)
    assert gpt2["vs_before"] is None and gpt2["vs_gpt2_sigmas"] is None  # the first rung has nothing before it
    # Time to 2.0: gpt2's second seed never reached it (no mean of the seeds that did); rotary 18 s (80 % of the way
    # from 10 s to 20 s) and 12 s (its first evaluation); modern 6 s and 7 s.
    assert gpt2["s_to_2"] is None and rotary["s_to_2"] == 15.0 and modern["s_to_2"] == 6.5

    assert list(found)[list(found).index("val_loss/gpt2"):list(found).index("improvement")] == [
        f"{name}/{rung}" for rung in ("gpt2", "rotary", "modern")
        for name in ("val_loss", "val_loss_std", "tokens_per_s", "seconds_to_target")]
    assert found["val_loss/modern"] == 1.9 and found["val_loss_std/modern"] == 0.1414
    assert found["seconds_to_target/modern"] == 6.5 and found["seconds_to_target/gpt2"] is None
    assert found["improvement"] == pytest.approx(0.2) and found["improvement_sigmas"] == pytest.approx(1.4)
    assert found["headline"] == "val_loss/modern" and found["target_loss"] == 2.0
    assert found["left_out"] == ["6_modern: failed"]
    assert found["finding"] == ("the ladder's last rung, modern (+ modern), ends at 1.900 ± 0.141 nats/char (mean of "
                                "2 seeds), 0.200 below its first, gpt2 (2.100 ± 0.141; 1.4 σ), and reaches 2 in 6 s, "
                                "which gpt2 does not")
    assert summary(sweep) == json.loads(json.dumps(found))
    assert (sweep / "plots" / "waterfall.png").is_file()
    text = out.getvalue()
    assert "+ rotary: -0.1000 nats (-0.7 σ) — what rotary is" in text


def test_a_ladder_with_another_axis_is_one_ladder_per_variant(tmp_path):
    sweep = tmp_path / "sweep"
    for n, (rung, lr, loss) in enumerate((("gpt2", "0.01", 2.0), ("modern", "0.01", 1.9),
                                          ("gpt2", "0.02", 2.1), ("modern", "0.02", 1.7))):
        _job(sweep, n, rung, loss, [(loss, 10.0)], extra=(f"optim.lr={lr}", "experiment=smoke"))
    found = analyse(sweep, None, Console(file=io.StringIO()))
    assert [(r["variant"], r["rung"]) for r in found["rungs"]] == [
        ("optim.lr=0.01", "gpt2"), ("optim.lr=0.01", "modern"), ("optim.lr=0.02", "gpt2"), ("optim.lr=0.02", "modern")]
    assert found["val_loss/modern[optim.lr=0.02]"] == 1.7 and found["val_loss_std/modern[optim.lr=0.02]"] is None
    assert found["improvement[optim.lr=0.01]"] == pytest.approx(0.1)
    assert found["improvement[optim.lr=0.02]"] == pytest.approx(0.4)
    assert found["headline"] == "val_loss/modern[optim.lr=0.01]"


def _cadence_aside(config: dict) -> dict:
    """The config less train.eval_every: the ladder may evaluate more often than `trends lm` (its time to the target
    is read between evaluations), and evaluating draws no training batch, so the training is the same."""
    return {**config, "train": {k: v for k, v in config["train"].items() if k != "eval_every"}}


def _composed(cli, *args: str) -> dict:
    code, output = cli(*args)
    assert code == 0, output
    return yaml.safe_load(output)


@pytest.mark.parametrize("recipe, lm", [((), ()), (("--smoke",), ("--smoke",)),
                                        (("experiment=gpu",), ("experiment=shakespeare_gpu",))])
def test_each_rung_is_a_trends_lm_run_with_one_trick_more(cli, recipe, lm):
    """The first rung composes to plain `trends lm`, the last to `trends lm recipe=modern` (everything but the ladder's
    own section: model, optimiser, data, budget), at the CPU default, in smoke and on a GPU; every rung in between
    changes one thing of the one before."""
    rungs = [_composed(cli, "recipe", "--cfg", *recipe, f"rung={rung}") for rung in RUNGS]
    for rung, config in zip(RUNGS, rungs):
        assert config.pop("ladder")["rung"] == rung
    assert _cadence_aside(rungs[0]) == _cadence_aside(_composed(cli, "lm", "--cfg", *lm))
    assert _cadence_aside(rungs[-1]) == _cadence_aside(_composed(cli, "lm", "--cfg", *lm, "recipe=modern"))
    for before, after in zip(rungs, rungs[1:]):
        changed = [(section, key) for section in ("model", "optim") for key in {*before[section], *after[section]}
                   if before[section].get(key) != after[section].get(key)]
        assert {k: v for k, v in before.items() if k not in ("model", "optim")} == \
            {k: v for k, v in after.items() if k not in ("model", "optim")}
        if after is rungs[-1]:  # the last trick is the optimiser: Muon and its learning rates, the model unchanged
            assert {section for section, _ in changed} == {"optim"} and after["optim"]["name"] == "muon"
        else:
            assert len(changed) == 1 and changed[0][0] == "model", changed

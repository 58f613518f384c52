"""Config mistakes answered before any data is read or any folder is written: unknown keys get the closest valid
keys, values that cannot work are named, and every answer is at most two lines with exit code 2."""
from __future__ import annotations

import pytest

from helpers import trends


def _refused(workdir, command: str, *args: str) -> str:
    """Run `trends COMMAND ARGS`; assert the short refusal (exit 2, ≤ 2 lines, no folder); return stderr."""
    result = trends(command, *args, cwd=workdir, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert "Error executing job" not in result.stderr and "Config search path" not in result.stderr
    assert not (workdir / "outputs").exists(), "a folder was left"
    return result.stderr


@pytest.mark.parametrize("command, typo, meant", [
    ("lm", "model.n_layers=6", "model.n_layer"),
    ("gnn", "model.hiden=32", "model.hidden"),
    ("contrastive", "train.bach_size=64", "train.batch_size"),
    ("vit-vs-cnn", "model.vit.head=2", "model.vit.heads"),
])
def test_a_misspelt_key_in_each_demo_gets_its_suggestion(workdir, command, typo, meant):
    err = _refused(workdir, command, typo)
    key = typo.split("=")[0]
    assert f"{key} is not a key of trends {command}; did you mean {meant}" in err
    assert "+" + typo not in err and "append" not in err


def test_an_appended_key_the_config_lacks_is_refused_the_same_way(workdir):
    err = _refused(workdir, "lm", "--smoke", "+model.n_layers=6")
    assert "model.n_layers is not a key of trends lm; did you mean model.n_layer" in err


def test_a_misspelt_key_in_a_sweep_is_refused_before_any_job(workdir):
    err = _refused(workdir, "lm", "-m", "model.n_layers=2,3")
    assert "did you mean model.n_layer" in err


def test_a_key_with_nothing_close_points_to_the_config(workdir):
    assert "trends lm --cfg` lists the keys" in _refused(workdir, "lm", "zzzz.qqqq=1")


def test_an_unknown_group_option_lists_the_options_without_the_search_path(workdir):
    assert "model=nosuch is not an option; available options of model: gpt" in _refused(workdir, "lm", "model=nosuch")


@pytest.mark.parametrize("override, needle", [
    ("+model.n_layer=3", "Could not append to config"),  # Hydra's three lines, cut to two
    ("~model.nope", "'model.nope' does not exist"),
    ("seed=[1", "no viable alternative"),
])
def test_other_override_mistakes_are_two_lines_at_most(workdir, override, needle):
    assert needle in _refused(workdir, "lm", override)


@pytest.mark.parametrize("command, args, needle", [
    ("lm", ["optim.lr=-1"], "optim.lr must be > 0"),
    ("lm", ["--epochs", "-1"], "train.epochs must be > 0"),  # no data here: the budget is reported, not the download
    ("lm", ["train.steps=0"], "train.steps must be > 0"),
    ("lm", ["train.batch_size=0"], "train.batch_size must be > 0"),
    ("lm", ["model.dropout=1.0"], "model.dropout must be in [0, 1)"),
    ("lm", ["model.n_head=3"], "model.n_embd=128 must be divisible by model.n_head=3"),
    ("vit-vs-cnn", ["optim.lr.resnet=-1"], "optim.lr.resnet must be > 0"),
    ("vit-vs-cnn", ["data.fractions=[0.5,1.5]"], "data.fractions must be in (0, 1]"),
    ("vit-vs-cnn", ["model.vit.heads=3"], "model.vit.dim=64 must be divisible by model.vit.heads=3"),
    ("gnn", ["model.dropout=-0.1"], "model.dropout must be in [0, 1)"),
    ("contrastive", ["optim.lr=0"], "optim.lr must be > 0"),
])
def test_values_that_cannot_work_are_refused_before_the_data(workdir, command, args, needle):
    # data.root points at an empty folder and the URL nowhere: reaching the data would report something else
    assert needle in _refused(workdir, command, *args, f"data.root={workdir / 'empty'}")


def test_the_full_hydra_text_stays_available_with_debug(workdir):
    result = trends("lm", "--debug", "optim.lr=-1", cwd=workdir, timeout=120)
    assert result.returncode != 0 and "Traceback" in result.stderr

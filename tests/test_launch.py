"""The launch below both entries: `trends.run(...)` answers bad input as the command line does (a UserError with the
CLI's very line, no folder left), and a single run's config is composed once and checked once, before its folder."""
from __future__ import annotations

import dataclasses

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

import trends
from helpers import summary
from trends import launch
from trends.core import config
from trends.errors import UserError


@pytest.mark.parametrize("override, line", [
    ("model=nosuch", "model=nosuch is not an option; available options of model: appnp, gat, gcn, gcnii, gin, "
                     "mlp, sage"),
    ("model.hiden=32", "model.hiden is not a key of trends gnn; did you mean model.hidden"),
])
def test_run_refuses_bad_input_with_the_cli_line_and_leaves_no_folder(workdir, cli, override, line):
    with pytest.raises(UserError) as refused:
        trends.run("gnn", override)
    assert str(refused.value).startswith(line)
    code, out = cli("gnn", override)
    assert code == 2 and out.strip() == f"error: {refused.value}"
    assert not (workdir / "outputs").exists()


def main(cfg, run) -> None:
    """The entry of a demo that trains nothing: what is measured is the launch alone."""


def test_a_single_run_composes_its_config_once_and_checks_it_once(workdir, monkeypatch):
    composed, checked = [], []
    load, check = ConfigLoaderImpl.load_configuration, config.check_values
    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration",
                        lambda self, *args, **kwargs: composed.append(args) or load(self, *args, **kwargs))
    monkeypatch.setattr(config, "check_values", lambda *args: checked.append(args) or check(*args))
    plan = launch.prepare(dataclasses.replace(launch.demo_named("lm"), entry=__name__), ["model=gpt"], smoke=True)
    assert (len(composed), len(checked)) == (1, 1) and plan.folder.is_dir()
    launch.start(plan)
    assert (len(composed), len(checked)) == (1, 1)  # the job ran on the launch's config, as composed and checked
    assert summary(plan.folder)["status"] == "completed"
    assert {p.name for p in (plan.folder / ".hydra").iterdir()} == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert (plan.folder / "lm.log").is_file()


def test_a_run_started_in_the_same_second_as_another_gets_the_next_suffix(workdir):
    """The folder named after this second is taken first, for sure: the new runs get `_1` and `_2`. (Three runs in
    a row need not share a second, and then they would not collide at all.)"""
    from datetime import datetime

    def second() -> str:
        return datetime.now().strftime("%Y-%m-%d_%H-%M-%S")

    for _ in range(5):  # again if the clock's second ticked over in between
        stamp = second()
        (workdir / "outputs" / "lm" / stamp).mkdir(parents=True, exist_ok=True)
        first, then = launch.new_run_dir("lm"), launch.new_run_dir("lm")
        if second() == stamp:
            break
    else:
        pytest.fail("the clock's second ticked over five times in a row")
    assert (first.name, then.name) == (f"{stamp}_1", f"{stamp}_2")
    assert first.is_dir() and then.is_dir() and first.parent.resolve() == workdir / "outputs" / "lm"

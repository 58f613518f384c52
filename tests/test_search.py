"""Hyperparameter search with Hydra's Optuna sweeper (the real plugin): each trial returns its optimised metric,
the direction follows the metric, the best trial is named alike by Optuna and by trends, a failed trial does not
stop the search, and a study stored in SQLite continues where an interrupted search stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf

from helpers import REPO, TRENDS, as_in_a_terminal, run_dirs, summary, trends

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the search extra: pip install 'trends-lab[search]'")


def search(workdir: Path, command: str, *args: str) -> tuple[Path, list[dict], DictConfig]:
    """`trends COMMAND ARGS` (a search) to the end: its sweep folder, its jobs' summaries, optimization_results.yaml."""
    result = trends(command, *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / command / "multirun").iterdir()
    done = [summary(run) for run in run_dirs(workdir, command)]
    return sweep, done, OmegaConf.load(sweep / "optimization_results.yaml")


def test_a_search_maximises_an_accuracy_and_both_name_the_same_best_trial(workdir):
    sweep, done, results = search(workdir, "gnn", "--smoke", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4",
                                  "hydra.sweeper.sampler.seed=0", "optim.lr=tag(log, interval(0.001, 0.1))",
                                  "model.dropout=interval(0.0, 0.8)")
    assert [j["status"] for j in done] == ["completed"] * 4
    assert len({j["overrides"][0] for j in done}) == 4  # the sampler chose four learning rates
    assert OmegaConf.select(OmegaConf.load(sweep / "multirun.yaml"), "hydra.sweeper.direction") == "maximize"
    best = max(done, key=lambda j: j["metrics"]["test_acc"])  # no optimized_metric: the headline
    assert results.best_value == best["metrics"]["test_acc"]
    table = (sweep / "sweep.md").read_text()
    assert "Search: test_acc" in table and table.count("★") == 1
    assert "best so far" in (sweep / "report.html").read_text()


def test_a_search_minimises_a_loss_from_its_config_group(workdir):
    sweep, done, results = search(workdir, "lm", "--smoke", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                                  "model.n_embd=choice(32, 64)")  # the command line's space wins: smoke widths
    assert [j["status"] for j in done] == ["completed"] * 2
    assert results.best_value == min(j["metrics"]["best_val_loss"] for j in done)
    assert OmegaConf.select(OmegaConf.load(sweep / "multirun.yaml"), "hydra.sweeper.direction") == "minimize"


def test_a_failed_trial_is_recorded_and_the_search_goes_on(workdir):
    # A valid and an invalid dropout to choose from: a trial given 1.5 fails in its own job. (Not a grid: the
    # plugin's GridSampler crashes when the grid's last trial is a failed one.)
    sweep, done, results = search(workdir, "gnn", "--smoke", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4",
                                  "hydra.sweeper.sampler.seed=0", "hydra.sweeper.max_failure_rate=1.0",
                                  "model.dropout=choice(0.2, 1.5)")
    assert len(done) == 4 and {j["status"] for j in done} == {"completed", "failed"}
    assert (sweep / "sweep.md").read_text().count("★") == 1  # the best of those that completed
    assert results.best_params["model.dropout"] == 0.2
    assert results.best_value == max(j["metrics"]["test_acc"] for j in done if j["status"] == "completed")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # optuna 2's database layer on SQLAlchemy 1.4
def test_a_stored_search_interrupted_after_two_trials_continues_to_four(workdir):
    import optuna

    # 1000 epochs: a trial long enough that the Ctrl-C lands while it trains (with 400, once on a fresh clone, the
    # signal came as the faster third trial ended and the search ran on to its fourth: exit 0, not 130)
    stored = ["gnn", "--smoke", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=4", "train.epochs=1000",
              "hydra.sweeper.storage=sqlite:///outputs/search.db", "hydra.sweeper.study_name=cora_test"]
    proc = subprocess.Popen([*TRENDS, *stored], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ), preexec_fn=as_in_a_terminal)
    deadline = time.time() + 120
    # The third trial's folder: the plugin asks for a trial only after telling the study the one before. (Two
    # completed folders are not enough: the second trial's summary is written before its value reaches the study.)
    def trials_started() -> int:  # job folders, made as each trial starts (a summary.json only as it ends)
        return len([p for p in workdir.glob("outputs/gnn/multirun/*/*") if p.is_dir() and p.name.isdigit()])

    while trials_started() < 3 and time.time() < deadline:
        time.sleep(0.05)
    if trials_started() < 3:
        proc.kill()
        pytest.fail(f"the third trial did not start within 120 s: {proc.communicate()[1][-2000:]}")
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the third trial
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "the same command again continues study cora_test" in err
    storage = f"sqlite:///{workdir}/outputs/search.db"
    complete = optuna.trial.TrialState.COMPLETE
    trials = optuna.load_study(study_name="cora_test", storage=storage).trials
    reported = sum(t.state == complete for t in trials)
    assert reported >= 2  # two, or three where the Ctrl-C came after the third trial's last step
    # The trial it was running was failed by the search as it exited, and queued to run again with its settings.
    [stopped] = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    [queued] = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert queued.params == stopped.params and queued.system_attrs["failed_trial"] == stopped.number

    again = trends(*stored, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert f"{reported} of its 4 trials are done or running, {4 - reported} to go" in again.stderr
    study = optuna.load_study(study_name="cora_test", storage=storage)
    assert sum(t.state == complete for t in study.trials) == 4  # not 4 more: the first search's trials count


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # optuna 2's database layer on SQLAlchemy 1.4
def test_a_shared_study_fails_only_the_trials_whose_worker_stopped_beating(workdir):
    """Two trials another search asked the stored study for and left running: one whose process still records its
    heartbeat, one whose heartbeat stopped (a killed process). The next search leaves the first running and counts
    it as taken; it fails the second and runs it again, with the same settings."""
    import optuna

    from trends.records.search import Heartbeat, trials_still_owed

    storage = f"sqlite:///{workdir}/outputs/search.db"
    stored = ["gnn", "--smoke", "-m", "hparams_search=optuna", "hydra.sweeper.storage=sqlite:///outputs/search.db",
              "hydra.sweeper.study_name=shared"]
    first = trends(*stored, "hydra.sweeper.n_trials=1", cwd=workdir)
    assert first.returncode == 0, first.stderr
    study = optuna.load_study(study_name="shared", storage=storage)
    space = study.trials[0].distributions
    live, dead = study.ask(space), study.ask(space)
    other_search = Heartbeat(interval=0.5)  # the live worker's process, beating
    other_search.add(storage, "shared", live.number)
    backend = optuna.storages.RDBStorage(storage)  # the dead one beat once, then its process was killed
    backend.record_heartbeat(backend.get_trial_id_from_study_id_trial_number(backend.get_study_id_from_name("shared"),
                                                                             dead.number))
    time.sleep(4)  # past a 2 s grace period (SQLite's clock counts whole seconds)

    assert trials_still_owed(storage, "shared", 4, grace_s=2) == 2  # 4 - the first trial - the live one
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert trials[live.number].state == optuna.trial.TrialState.RUNNING
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    [queued] = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert queued.params == trials[dead.number].params

    again = trends(*stored, "hydra.sweeper.n_trials=4", cwd=workdir)  # the default grace: the live one is live
    assert again.returncode == 0, again.stderr
    assert "2 of its 4 trials are done or running, 2 to go" in again.stderr
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert trials[live.number].state == optuna.trial.TrialState.RUNNING  # never failed, never run twice
    [rerun] = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert rerun.state == optuna.trial.TrialState.COMPLETE and rerun.params == trials[dead.number].params
    assert len(trials) == 5 and sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3
    study.tell(live, 0.0)  # the live worker finishes; its heartbeat stops with the trial


def test_search_refusals_are_one_line(workdir):
    single = trends("gnn", "--smoke", "hparams_search=optuna", cwd=workdir)
    assert single.returncode == 2 and "add -m" in single.stderr
    ladder = trends("scaling", "--smoke", "-m", "hydra/sweeper=optuna", cwd=workdir)
    assert ladder.returncode == 2 and "is a sweep of its own" in ladder.stderr
    assert not (workdir / "outputs").exists() or not any((workdir / "outputs").rglob("summary.json"))


def test_a_search_without_the_plugin_names_the_extra(workdir):
    # The plugin made absent the way Python itself blocks an import (a None entry in sys.modules): what a machine
    # without `pip install 'trends-lab[search]'` sees.
    absent = ("import sys; sys.modules['hydra_plugins.hydra_optuna_sweeper'] = None; "
              "sys.argv = ['trends', *sys.argv[1:]]; from trends.cli.main import main; main()")
    result = subprocess.run([TRENDS[0], "-c", absent, "gnn", "--smoke", "-m", "hparams_search=optuna"], cwd=workdir,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "pip install 'trends-lab[search]'" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert "Traceback" not in result.stderr and not (workdir / "outputs").exists()


SEARCH_SPACES = REPO.glob("trends/conf/*/hparams_search/optuna.yaml")


@pytest.mark.parametrize("demo", sorted(p.parent.parent.name for p in SEARCH_SPACES))
def test_every_search_space_names_keys_its_demo_has(demo):
    # A misspelt key in a search space would only fail at the first trial, minutes into a search.
    with initialize_config_module(config_module="trends.conf", version_base="1.3"):
        cfg = compose(demo.replace("-", "_"), overrides=["hparams_search=optuna"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params and cfg.hydra.sweeper.sampler.seed is not None
    missing = [key for key in params if OmegaConf.select(cfg, key, default="<missing>") == "<missing>"]
    assert not missing, f"{demo}'s search space names keys its config lacks: {missing}"

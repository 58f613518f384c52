"""Hyperparameter search through a sampler-driven Hydra sweeper (Optuna's: `pip install 'trends-lab[search]'`).

What each trial hands the sweeper (one float: the optimised metric, or an exception that it records as a failed
trial), which way a metric improves, how many trials a stored study still owes, and the search's history for the
sweep table and report. Torch-free: the CLI and the sweep table's Hydra callback import it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trends.errors import UserError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"  # Hydra's grid: no search
INSTALL = "pip install 'trends-lab[search]'"


class TrialFailed(Exception):
    """A trial that failed, diverged or stopped: raised from the Hydra task, so the sweeper records a failed trial
    and goes on within its failure budget (hydra.sweeper.max_failure_rate)."""


def lower_is_better(metric: str) -> bool:
    """Losses, errors and bits per character fall as a model improves; accuracies and scores rise."""
    return any(word in metric for word in ("loss", "error", "bpc", "perplexity"))


def direction(metric: str) -> str:
    """The sweeper's direction for a metric: minimize for losses, maximize for accuracies and scores."""
    return "minimize" if lower_is_better(metric) else "maximize"


def is_search(sweeper_target: str | None) -> bool:
    """A sweeper other than Hydra's grid proposes the trials itself and wants one float from each."""
    return sweeper_target is not None and sweeper_target != BASIC_SWEEPER


def trial_value(summary: dict, metric: str | None) -> float:
    """What a finished job returns to a search: its `metric` (default: its headline) as a float. A job that did not
    complete raises TrialFailed."""
    if summary.get("status") != "completed":
        error = (summary.get("error") or "").strip().splitlines()
        raise TrialFailed(f"the trial {summary.get('status')}" + (f": {error[-1]}" if error else ""))
    name = metric or summary.get("headline")
    value = summary.get("metrics", {}).get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        known = ", ".join(k for k, v in summary.get("metrics", {}).items() if isinstance(v, (int, float)))
        raise UserError(f"optimized_metric={name} is not a metric of this run; its metrics: {known}")
    return float(value)


def require_plugin() -> None:
    """The one line a missing sweeper plugin gets."""
    import importlib.util

    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        raise UserError(f"the Optuna sweeper is not installed: {INSTALL}")


def trials_still_owed(storage: str, study_name: str, n_trials: int) -> int:
    """`n_trials` counts a stored study's trials in all: the ones an earlier, interrupted search finished (completed
    or failed) are not run again. A trial it left running is marked failed (it never reported), and is run again."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet: a new search
        return n_trials
    finished = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state.is_finished():
            finished += 1
        else:
            study._storage.set_trial_state(trial._trial_id, optuna.trial.TrialState.FAIL)
    return max(0, n_trials - finished)


def saved_search(sweep_dir: Path) -> DictConfig | None:
    """The sweep's recorded config (multirun.yaml) when a search made it, else None (a grid, or no record)."""
    saved = Path(sweep_dir) / "multirun.yaml"
    cfg = OmegaConf.load(saved) if saved.is_file() else None
    return cfg if cfg is not None and is_search(OmegaConf.select(cfg, "hydra.sweeper._target_")) else None


@dataclass
class Objective:
    """What a sweep's jobs are judged by: the optimised metric of a search, else the jobs' headline."""
    metric: str | None  # None: each job's own headline
    lower_is_better: bool | None  # None: by the metric's name
    search: bool

    @classmethod
    def of_sweep(cls, sweep_dir: Path) -> Objective:
        cfg = saved_search(sweep_dir)
        if cfg is None:
            return cls(None, None, False)
        chosen = OmegaConf.select(cfg, "hydra.sweeper.direction")
        return cls(OmegaConf.select(cfg, "optimized_metric"), None if chosen is None else chosen == "minimize", True)

    def metric_of(self, headline: str | None) -> str | None:
        return self.metric or headline

    def lower(self, metric: str) -> bool:
        return lower_is_better(metric) if self.lower_is_better is None else self.lower_is_better


def score(status: str | None, value) -> float | None:
    """A job's value of the metric it is judged by: None unless it completed with a number there."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if status == "completed" and numeric else None


def best_index(values: list[float | None], lower: bool) -> int | None:
    """Where the best of the scores is (the lowest where `lower`), None if no job has one."""
    scored = [(v, i) for i, v in enumerate(values) if v is not None]
    if not scored:
        return None
    return (min if lower else max)(scored, key=lambda vi: vi[0])[1]


def history(values: list[float | None], lower: bool) -> list[float | None]:
    """The best value so far after each trial (None until one completes): a search's optimisation history."""
    best, out = None, []
    for value in values:
        if value is not None and (best is None or (value < best if lower else value > best)):
            best = value
        out.append(best)
    return out

"""Hyperparameter search through a sampler-driven Hydra sweeper (Optuna's: `pip install 'trends-lab[search]'`).

What each trial hands the sweeper (one float: the optimised metric, or an exception that it records as a failed
trial), which way a metric improves, how many trials a stored study still owes and the heartbeat that tells a
running trial from one whose process is gone, and the search's history for the sweep table and report. Torch-free:
the CLI and the sweep table's Hydra callback import it.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trends.errors import UserError

log = logging.getLogger(__name__)

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


# A stored study may be shared by several searches at once. The process that asks the study for a trial records the
# trial's heartbeat while it runs (Optuna's RDBStorage heartbeat); a running trial not heard from for GRACE_S has
# lost its process. Generous on purpose: a live trial failed by mistake would crash its search when it reports.
HEARTBEAT_S = 10
GRACE_S = 120
KEEP_ALIVE = "trends.records.search.keep_alive"  # the sweeper's custom_search_space hook, set by trends


def trials_still_owed(storage: str, study_name: str, n_trials: int, grace_s: int = GRACE_S) -> int:
    """`n_trials` counts a stored study's trials in all, whoever ran them: finished ones (completed or failed) and
    those still running in a live process (another search sharing the study) are not run again. A trial whose
    process is gone (killed: its heartbeat older than `grace_s`; stopped by Ctrl-C: failed by its process as it
    exited) is failed and queued to run again with the same settings (Optuna's RetryFailedTrialCallback); the retry
    is owed, and the sweeper asks for queued trials first."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    HEART.stop()  # trials an earlier search of this process left running are over: queued again
    with _experimental_allowed():
        retry = optuna.storages.RetryFailedTrialCallback()
    heartbeats = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=grace_s,
                                            failed_trial_callback=retry)
    try:
        study = optuna.load_study(study_name=study_name, storage=heartbeats)
    except KeyError:  # no such study yet: a new search
        return n_trials
    with _experimental_allowed():
        optuna.storages.fail_stale_trials(study)
        attempts: dict[int, list] = {}  # each trial with its retries, under the first one's number
        for trial in study.get_trials(deepcopy=False):
            first = optuna.storages.RetryFailedTrialCallback.retried_trial_number(trial)
            attempts.setdefault(trial.number if first is None else first, []).append(trial.state)
    taken = sum(optuna.trial.TrialState.WAITING not in states for states in attempts.values())
    return max(0, n_trials - taken)


def keep_alive(cfg: DictConfig, trial) -> None:
    """The Optuna sweeper's `custom_search_space` hook (trends sets it for a stored study): called in the launching
    process for each trial as it is asked for, it hands the trial to this process's heartbeat. Hydra's sweeper asks
    and tells; Optuna's own heartbeat thread only runs in study.optimize."""
    HEART.add(str(cfg.hydra.sweeper.storage), trial.study.study_name, trial.number)


class Heartbeat:
    """Records every `interval` seconds, in a daemon thread, that this process still runs the trials it asked a
    stored study for, until each is finished. A killed process records nothing more, and its trials go stale; one
    that exits (Ctrl-C, an error) fails the trials it still runs and queues them again at once (`stop`)."""

    def __init__(self, interval: float = HEARTBEAT_S):
        self.interval = interval
        self.trials: dict[tuple[str, str, int], tuple] = {}  # (storage, study, number) -> (RDBStorage, trial id)
        self.backends: dict[str, object] = {}  # one RDBStorage per database, opened once
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, storage: str, study_name: str, number: int) -> None:
        import optuna

        if storage not in self.backends:
            self.backends[storage] = optuna.storages.RDBStorage(storage)
        backend = self.backends[storage]
        trial_id = backend.get_trial_id_from_study_id_trial_number(backend.get_study_id_from_name(study_name), number)
        backend.record_heartbeat(trial_id)
        with self.lock:
            self.trials[(storage, study_name, number)] = (backend, trial_id)
            if self.thread is None:
                self.thread = threading.Thread(target=self._beat, name="trial-heartbeat", daemon=True)
                self.thread.start()
                atexit.register(self.stop)

    def _beat(self) -> None:
        while True:
            time.sleep(self.interval)
            with self.lock:
                for key, (backend, trial_id) in list(self.trials.items()):
                    try:
                        if backend.get_trial(trial_id).state.is_finished():
                            del self.trials[key]
                        else:
                            backend.record_heartbeat(trial_id)
                    except Exception as err:  # a busy or vanished database: try again at the next beat
                        log.debug("no heartbeat for trial %s: %s", key, err)

    def stop(self) -> None:
        """The trials this process still runs are over (it exits, or starts another search): each is failed and
        queued to run again, as a stale one would be, without waiting for the grace period."""
        import optuna

        with self.lock:
            trials, self.trials = self.trials, {}
        for (storage, study_name, number), (backend, trial_id) in trials.items():
            try:
                if backend.get_trial(trial_id).state.is_finished():
                    continue
                study = optuna.load_study(study_name=study_name, storage=storage)
                study.tell(number, state=optuna.trial.TrialState.FAIL)
                with _experimental_allowed():
                    optuna.storages.RetryFailedTrialCallback()(study, study.get_trials(deepcopy=False)[number])
            except Exception as err:  # at exit, a study that is gone: its heartbeat has stopped anyway
                log.debug("trial %s left running: %s", number, err)


HEART = Heartbeat()


@contextmanager
def _experimental_allowed():
    """Optuna 2 calls its heartbeat and retry API experimental and warns at each call."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


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

"""Searches (`hparams_search=optuna`, `hydra/sweeper=optuna`): what is refused, what the sweeper needs from trends,
and how an interrupted search goes on."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trends.errors import UserError

from .registry import Demo

if TYPE_CHECKING:
    from omegaconf import DictConfig


def check_search(demo: Demo, args: list[str], *, multirun: bool) -> None:
    """A search (`hparams_search=optuna`, `hydra/sweeper=optuna`) tries many settings of one run: refused for a
    command that is a sweep of its own, without -m, or without the plugin."""
    from trends.records.search import require_plugin

    chosen = [a.split("=", 1)[1] for a in args if a.startswith(("hparams_search=", "hydra/sweeper="))]
    if not chosen or all(c in ("null", "basic") for c in chosen):
        return
    if demo.sweep:
        raise UserError(f"`trends {demo.command}` is a sweep of its own; search the settings of its runs with the "
                        "command that trains one (e.g. trends lm -m hparams_search=optuna)")
    if not multirun:
        raise UserError(f"a search runs many trials: add -m (trends {demo.command} -m {' '.join(args[:1])} …)")
    require_plugin()


def search_settings(demo: Demo, args: list[str], cfg: DictConfig) -> list[str]:
    """What a search's sweeper needs from trends, given the sweep's composed config: the direction of the optimised
    metric (unless given), and for a study stored in a database the trials it still owes, so that the same command
    again continues an interrupted search, and the hook that records the heartbeat of each trial it runs (so that
    a search sharing the study fails only the trials whose process is gone). None for Hydra's grid."""
    from trends.records.search import KEEP_ALIVE, direction, is_search, trials_still_owed

    sweeper = cfg.hydra.sweeper
    if not is_search(sweeper.get("_target_")):
        return []
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna's database layer: a line per plugin it loads
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # optuna 2 uses SQLAlchemy 1.4's older API
    added = []
    if not any(a.startswith("hydra.sweeper.direction=") for a in args):
        added.append(f"hydra.sweeper.direction={direction(cfg.optimized_metric or demo.headline)}")
    if sweeper.get("storage"):
        if not sweeper.get("study_name"):
            raise UserError("a stored study needs a name to be found again: add hydra.sweeper.study_name=NAME")
        if str(sweeper.storage).startswith("sqlite:///"):  # SQLite makes the file, not its folder
            Path(str(sweeper.storage)[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if sweeper.get("custom_search_space") not in (None, KEEP_ALIVE):
            raise UserError("hydra.sweeper.custom_search_space is taken for a stored study: trends records each "
                            "trial's heartbeat there; leave it unset")
        added.append(f"hydra.sweeper.custom_search_space={KEEP_ALIVE}")
        owed = trials_still_owed(str(sweeper.storage), sweeper.study_name, sweeper.n_trials)
        if owed < sweeper.n_trials:
            print(f"study {sweeper.study_name} in {sweeper.storage}: {sweeper.n_trials - owed} of its "
                  f"{sweeper.n_trials} trials are done or running, {owed} to go", file=sys.stderr)
            added.append(f"hydra.sweeper.n_trials={owed}")
    return added


def search_resume_hint(sweep_dir: Path) -> str | None:
    """How an interrupted search goes on (`--resume` cannot: it replays a grid, not a sampler's choices)."""
    from omegaconf import OmegaConf

    from trends.records.search import saved_search

    cfg = saved_search(sweep_dir)
    if cfg is None:
        return None
    storage, name = OmegaConf.select(cfg, "hydra.sweeper.storage"), OmegaConf.select(cfg, "hydra.sweeper.study_name")
    if storage:
        return f"the same command again continues study {name} in {storage}"
    return ("this search was kept in memory, so a new one starts from scratch; to make it resumable, add "
            "hydra.sweeper.storage=sqlite:///outputs/search.db hydra.sweeper.study_name=NAME")

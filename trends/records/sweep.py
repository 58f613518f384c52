"""Hydra callbacks of a sweep (trends/conf/common.yaml, and the sweep demos' configs): the table and report once all
jobs are done, and a demo's own analysis of the whole sweep. Hydra loads them in the launching process, so they stay
free of torch imports. And the check every such analysis starts with: that a folder is a sweep of its demo."""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from trends.errors import UserError

from .files import write_json_atomic
from .layout import SUMMARY, job_folders, read_summary
from .report import write_report_safely
from .tables import write_tables

log = logging.getLogger("trends")


class SweepTable(Callback):
    """Hydra callback: write and print the sweep table, and the sweep's report.html, once all jobs are done."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Hydra's grid sweeper records the sweep's config as multirun.yaml; other sweepers (Optuna's) do not, and
        `--resume`, the report and the search's objective read it: written here for every sweeper."""
        record = Path(config.hydra.sweep.dir) / "multirun.yaml"
        if not record.exists():
            record.parent.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(config, record)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_tables(Path(config.hydra.sweep.dir))
        write_report_safely(Path(config.hydra.sweep.dir))


class SweepAnalysis(Callback):
    """Hydra callback: a demo's own analysis of the whole sweep once its last job has ended, in the launching process,
    so every launcher gets it (`trends scaling`'s fit, `trends distill`'s comparison). `analysis` names a function
    `(sweep_dir, config)`, imported only when the sweep ends (it may need torch). Hydra only warns when a callback
    raises: the error is written as the sweep's failed summary.json instead, and the CLI reports it."""

    def __init__(self, analysis: str, command: str):
        self.analysis, self.command = analysis, command

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            analysis_function(self.analysis)(sweep_dir, config)
        except Exception as err:  # noqa: BLE001 — whatever it was, the sweep's summary says so
            if not isinstance(err, UserError):
                log.exception("the analysis of %s failed", sweep_dir)
            reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            write_json_atomic(sweep_dir / SUMMARY, {"status": "failed", "command": self.command,
                                                   "error": f"the analysis: {reason}"})


def analysis_function(name: str):
    """The function a sweep's config names as its analysis: only one of trends' own (a config, or a folder's record
    of one, must never make trends import whatever callable it names)."""
    module, _, attr = str(name).rpartition(".")
    if not module.startswith("trends.") or not attr.isidentifier():
        raise UserError(f"analysis={name} is not one of trends' analyses (trends.<demo>.analysis.<function>)")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise UserError(f"analysis={name} does not exist in this version of trends") from None


def jobs_of(sweep_dir: Path, command: str, example: str) -> list[Path]:
    """The job folders of a `trends <command>` sweep, in job order, or a UserError that says what the folder is
    instead (a demo's `--from` takes any path). `example` names a few of its job folders, for the message."""
    fix = f"pass the folder of a `trends {command}` sweep, e.g. outputs/{command}/multirun/<stamp>"
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} {'is a file' if sweep_dir.exists() else 'does not exist'}; {fix}")
    jobs = job_folders(sweep_dir)
    if not jobs:
        raise UserError(f"{sweep_dir} is not a sweep folder (no job folders {example}, …); {fix}")
    other = next((c for c in (read_summary(j).get("command") for j in jobs) if c not in (None, command)), None)
    if other:
        raise UserError(f"{sweep_dir} is a `trends {other}` sweep; {fix}")
    return jobs

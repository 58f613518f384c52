"""Starting a plan in this process: a single run on its composed config through hydra.core.utils.run_job (which
writes .hydra/ and the job log as Hydra's `run` does), a sweep through Hydra's multirun; each job's end recorded by
trends.core.execute."""
from __future__ import annotations

import importlib
import sys
from contextlib import nullcontext
from pathlib import Path

from trends.records import layout, lock

from .compose import checks, hydra_session, user_errors
from .folders import discard_unused, torchrun_rank
from .plan import Plan
from .registry import Demo


def start(plan: Plan, quiet: bool = True) -> None:
    """Run the plan in this process: a single run on its composed config, a sweep through Hydra's multirun (its
    launchers, sweepers and callbacks). Where it fails before any job recorded anything, its folder goes (a resumed
    one stays). Its folder is locked meanwhile (by rank 0 under torchrun): a second writer is refused.
    quiet: drop Hydra's "Error executing job with overrides" line (written straight to sys.stderr by
    hydra.core.utils.JobReturn, no logger to configure): the caller's own message follows it anyway."""
    stderr = sys.stderr
    if quiet:
        sys.stderr = _Unprefixed(stderr, "Error executing job with overrides:")
    writer = lock.hold(plan.folder, plan.demo.command) if not torchrun_rank() else nullcontext()
    try:
        with writer, hydra_session() as hydra, user_errors(plan.demo, plan.overrides):
            if plan.config is None:
                hydra.multirun(plan.demo.config, _task(plan.demo), plan.overrides, with_log_configuration=True)
            else:
                _run(hydra, plan)
    except Exception:
        if not plan.resumed:
            discard_unused(plan.folder)
        raise
    finally:  # in-process callers (tests, notebooks) get their stream back
        sys.stderr = stderr


def _run(hydra, plan: Plan) -> None:
    """Hydra's own `run` (hydra._internal.hydra.Hydra.run), less its composition: the callbacks, the job (its
    .hydra/ records, its log, the task) and the job's error, raised."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.utils import run_job
    from hydra.types import HydraContext

    cfg, name = plan.config, plan.demo.config
    callbacks = Callbacks(cfg)
    callbacks.on_run_start(config=cfg, config_name=name)
    ret = run_job(hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
                  task_function=_task(plan.demo), config=cfg, job_dir_key="hydra.run.dir", job_subdir_key=None)
    callbacks.on_run_end(config=cfg, config_name=name, job_return=ret)
    _ = ret.return_value  # raises what the job raised


def _task(demo: Demo):
    """The Hydra task: one job of the demo, its end recorded by trends.core.execute."""
    def task(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        from omegaconf import OmegaConf

        from trends.core.config import check_complete, check_override_types, check_values
        from trends.core.execute import execute
        from trends.records.search import is_search, trial_value

        hc = HydraConfig.get()
        # How the run was started, not how it was continued (the summary counts resumes): a job that `--resume`
        # finished must read as the same job in every table, the sweep's and the demos' own.
        overrides = [o for o in hc.overrides.task if not o.startswith("resume=")]
        train = importlib.import_module(demo.entry).main
        out_dir = Path(hc.runtime.output_dir)
        if hc.mode != RunMode.MULTIRUN:  # a single run's config was checked before its folder was made
            return execute(train, cfg, out_dir, command=demo.command, overrides=overrides, multirun=False)
        check_complete(cfg)
        check_override_types(cfg, demo.config, overrides, dict(hc.runtime.choices))
        if cfg.resume:  # `--resume SWEEP`: keep what completed, continue what has a checkpoint
            done = layout.read_summary(out_dir)
            if done.get("status") == "completed":
                return done
            if not layout.checkpoint_of(out_dir).is_file():
                (out_dir / layout.METRICS).unlink(missing_ok=True)  # a start without a checkpoint: from scratch
                cfg.resume = False

        def checked_train(cfg, run):  # inside execute: a job whose swept values cannot work fails alone
            check_values(cfg, checks(demo))
            return train(cfg, run)

        summary = execute(checked_train, cfg, out_dir, command=demo.command, overrides=overrides, multirun=True)
        if is_search(OmegaConf.select(hc.sweeper, "_target_")):
            return trial_value(summary, cfg.optimized_metric)  # a search's sweeper wants one number from each trial
        return summary

    return task


class _Unprefixed:
    """A stream that drops the writes starting with `prefix` and passes everything else on."""

    def __init__(self, stream, prefix: str):
        self._stream, self._prefix = stream, prefix

    def write(self, text: str) -> int:
        return len(text) if text.startswith(self._prefix) else self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def failed_sweep_analysis(sweep_dir: Path) -> str | None:
    """The error a sweep's own analysis recorded in its summary.json (Hydra only warns when a callback raises)."""
    summary = layout.read_summary(sweep_dir)
    return summary.get("error") if summary.get("status") == "failed" else None

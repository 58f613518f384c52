"""The plan of a launch: everything that happens before a run starts, in the order that leaves nothing behind bad
input — the demo's hook, the overrides a resume or the options add, the torchrun rules, the search's settings, the
composition and its checks, then the folder."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trends.errors import UserError

from .compose import check, compose_config, fixed_overrides, hydra_session, job_part, settle
from .folders import is_sweep_folder, new_run_dir, resume_overrides, sweep_resume_overrides, torchrun_rank
from .registry import Demo, imported
from .searches import check_search, search_settings

if TYPE_CHECKING:
    from omegaconf import DictConfig


def before_launch(demo: Demo, overrides: list[str], *, smoke: bool, train: Callable[[str, list[str]], None],
                  say: Callable[[str], None]) -> list[str]:
    """The overrides, completed by the demo's own pre-launch hook where it has one (distill: `teacher=RUN`). The
    hook may compose the config these overrides make, `train(command, overrides)` a run it needs first, and `say`
    what it chose."""
    if demo.before_launch is None:
        return overrides

    def compose() -> DictConfig:
        with hydra_session():
            return compose_config(demo, [*(["experiment=smoke"] if smoke else []), *fixed_overrides(overrides)])

    return imported(demo.before_launch)(overrides, compose=compose, train=train, say=say)


@dataclass
class Plan:
    """A launch ready to start: Hydra's overrides, its folder (made), and a single run's config, composed and
    checked (None for a sweep: Hydra composes each job)."""
    demo: Demo
    overrides: list[str]
    folder: Path
    resumed: bool = False
    config: DictConfig | None = None


def prepare(demo: Demo, overrides: list[str], *, epochs: float | None = None, smoke: bool = False,
            multirun: bool = False, resume: Path | None = None) -> Plan:
    """Turn the options and overrides into a Plan, in the order that leaves nothing behind bad input: the overrides a
    resume or the options add, the torchrun rules, the search's settings, the composition and its checks, then the
    folder."""
    rank = torchrun_rank()
    # A command that is a sweep runs as one, except under torchrun: there its processes train one job together
    # (the config's own values, e.g. one distill student), since a sweep cannot share one process group.
    multirun = multirun or (demo.sweep and rank is None)
    job_name = f"hydra.job.name={demo.config}"
    if resume is not None and is_sweep_folder(resume):
        # Every job again in the same folder: completed ones are kept, the others continue or start (_task).
        args = [*sweep_resume_overrides(demo, resume), job_name, "resume=true"]
        return Plan(demo, [*args, f"hydra.sweep.dir={resume}", "hydra.mode=MULTIRUN"], resume, resumed=True)
    args = [*_given(demo, overrides, epochs=epochs, smoke=smoke, resume=resume), job_name]
    if resume is None:
        check_search(demo, args, multirun=multirun)
    if multirun and resume is None:
        if rank is not None:
            raise UserError("a sweep under torchrun is not supported: run the sweep with a launcher instead")
        with hydra_session():
            shared = compose_config(demo, fixed_overrides(args))  # what every job gets wrong is refused once, here
            check(demo, shared)
            args += search_settings(demo, args, shared)
        sweep_dir = new_run_dir(demo.command, multirun=True)
        return Plan(demo, [*args, f"hydra.sweep.dir={sweep_dir}", "hydra.mode=MULTIRUN"], sweep_dir)
    if resume is not None:
        args.append("resume=true")
    with hydra_session():
        cfg = compose_config(demo, args, configure_logging=True)
        check(demo, cfg)
    run_dir = resume if resume is not None else new_run_dir(demo.command)
    settings = [f"hydra.run.dir={run_dir}", "hydra.mode=RUN"]
    if rank:  # ranks > 0 share rank 0's folder: they leave Hydra's record and the terminal to rank 0
        settings[:0] = ["hydra.output_subdir=null", "hydra.job_logging.root.handlers=[file]",
                        f"hydra.job_logging.handlers.file.filename={run_dir}/{demo.config}.rank{rank}.log"]
    settle(cfg, settings)
    return Plan(demo, [*args, *settings], run_dir, resumed=resume is not None, config=cfg)


def _given(demo: Demo, overrides: list[str], *, epochs: float | None, smoke: bool, resume: Path | None) -> list[str]:
    """A launch's own overrides: a resumed run's first, then what the options stand for, then those typed."""
    given = resume_overrides(demo, resume) if resume is not None else []
    if smoke:
        given.append("experiment=smoke")
    if epochs is not None:
        given.append(f"train.epochs={int(epochs) if float(epochs).is_integer() else epochs}")
    return [*given, *overrides]


def composed_yaml(demo: Demo, overrides: list[str], *, epochs: float | None = None, smoke: bool = False,
                  resume: Path | None = None) -> str:
    """`--cfg`: the config a run would get, as Hydra's `--cfg job` prints it (nothing is checked or made)."""
    from omegaconf import OmegaConf

    with hydra_session():
        cfg = compose_config(demo, [*_given(demo, overrides, epochs=epochs, smoke=smoke, resume=resume),
                              f"hydra.job.name={demo.config}"])
    return OmegaConf.to_yaml(job_part(cfg))


def analyse(demo: Demo, sweep_dir: Path, overrides: list[str]) -> None:
    """`--from SWEEP`: the demo's own analysis of a finished sweep (its hydra.callbacks' `analysis`, as when its own
    sweep ends), with the demo's settings and these overrides, training nothing."""
    from trends.records.sweep import analysis_function

    with hydra_session():
        cfg = compose_config(demo, overrides)
    for callback in cfg.hydra.callbacks.values():
        if "analysis" in callback:
            analysis_function(callback.analysis)(Path(sweep_dir), cfg)

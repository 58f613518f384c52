"""From a demo and its overrides to a Hydra run, below both entries (the `trends` command and `trends.run(...)`): the
demo registry, each demo's pre-launch hook, the checks before any folder exists, resume of a run or a sweep, the
torchrun rules, searches, and Hydra's run itself.

A single run's config is composed once, here, with Hydra's own node (as Hydra's `run` composes it), checked once, and
only then is its folder made; the job runs on that very config through hydra.core.utils.run_job, which writes .hydra/
and the job log as Hydra's `run` does. A sweep is Hydra's multirun: what its jobs share is composed and checked once
before the sweep folder, and each job checks its own config, so a bad swept value fails alone.

Bad input, whatever finds it, is a UserError of at most two lines, and the folder it would have used is gone. This
module imports no hydra, omegaconf or torch when it is imported (the CLI reads the registry for `trends --help`), and
no demo: a demo's hook and its value checks are named by import strings, imported when that demo launches.
"""
from __future__ import annotations

import copy
import importlib
import importlib.resources
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from trends.errors import UserError
from trends.ranks import Dist
from trends.records import layout

if TYPE_CHECKING:
    from omegaconf import DictConfig

CONFIGS = "trends.conf"  # trends/conf/: Hydra reads it as pkg://trends.conf, installed or editable


def config_files():
    """trends/conf/ as importlib.resources sees it (a folder, or files inside an installed wheel)."""
    return importlib.resources.files(CONFIGS)


@dataclass(frozen=True)
class Demo:
    command: str  # what users type: `trends vit-vs-cnn`
    config: str  # primary config: trends/conf/<config>.yaml
    entry: str  # module with main(cfg, run)
    help: str
    issue: int  # where it is specified, for the "not built yet" message
    sweep: bool = False  # the command is itself a sweep (its config lists the jobs): every run is a multirun
    headline: str = ""  # the summary metric a run is judged by (a search's default objective; its name says which
    #                     way is better: trends.records.search.direction)
    checks: str | None = None  # "module:name" of the trends.core.config.Checks its own keys need, beyond the shared
    before_launch: str | None = None  # "module:function" that completes the overrides before a launch:
    #                                   (overrides, *, compose, train, say) -> overrides (distill finds its teacher)

    @property
    def available(self) -> bool:
        return config_files().joinpath(f"{self.config}.yaml").is_file()

    def group_options(self) -> list[str]:
        """`group=option` for every group the primary config's defaults list names, read from the folders its Hydra
        search path adds (`pkg://trends.conf.<name>`: trends/conf/<demo>/ and shared ones such as
        trends/conf/vision/)."""
        from omegaconf import OmegaConf

        primary = OmegaConf.create(config_files().joinpath(f"{self.config}.yaml").read_text())
        chosen = {key for entry in primary.defaults if not isinstance(entry, str) for key in entry}
        prefix = f"pkg://{CONFIGS}."
        folders = [config_files().joinpath(*p[len(prefix):].split(".")) for p in primary.hydra.searchpath
                   if p.startswith(prefix)]
        groups = sorted((g for folder in folders for g in folder.iterdir() if g.is_dir() and g.name in chosen),
                        key=lambda g: g.name)
        return [f"{g.name}={o.name[:-5]}" for g in groups for o in sorted(g.iterdir(), key=lambda o: o.name)
                if o.name.endswith(".yaml")]


DEMOS = [
    Demo("contrastive", "contrastive", "trends.contrastive.train",
         "SimCLR self-supervised learning, evaluated with kNN and a linear probe.", 4, headline="knn_acc",
         checks="trends.vision.checks:CHECKS"),
    Demo("gnn", "gnn", "trends.gnn.train", "Graph neural networks on citation graphs and molecules.", 3,
         headline="test_acc"),
    Demo("lm", "lm", "trends.lm.train", "A character-level GPT on Tiny Shakespeare (or any text file).", 2,
         headline="best_val_loss", checks="trends.text.checks:CHECKS"),
    Demo("scaling", "scaling", "trends.scaling.train",
         "Language models get bigger: a ladder of GPT sizes and the power law of their losses.", 13, sweep=True,
         checks="trends.text.checks:CHECKS"),
    Demo("distill", "distill", "trends.distill.train",
         "Small distilled language models: students of a `trends lm` teacher, from scratch, soft targets, DistilBERT.",
         14, sweep=True, checks="trends.distill.checks:CHECKS", before_launch="trends.distill.launch:with_teacher"),
    Demo("pretext", "pretext", "trends.pretext.train",
         "Self-supervised pretext tasks: where a patch lies, rotation, jigsaw; evaluated like contrastive.", 12,
         headline="knn_acc", checks="trends.pretext.checks:CHECKS"),
    Demo("vit-vs-cnn", "vit_vs_cnn", "trends.vit_vs_cnn.train",
         "Vision Transformer against a CNN on growing fractions of the data.", 5,
         headline="gap",  # gap/<largest fraction>: the CNN's lead
         checks="trends.vit_vs_cnn.checks:CHECKS"),
]


def demo_named(command: str) -> Demo:
    demo = next((d for d in DEMOS if d.command == command), None)
    if demo is None:
        raise UserError(f"no demo called {command!r}; one of: {', '.join(d.command for d in DEMOS)}")
    return demo


def _imported(name: str):
    """The object an import string names: "package.module:attribute"."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def before_launch(demo: Demo, overrides: list[str], *, smoke: bool, train: Callable[[str, list[str]], None],
                  say: Callable[[str], None]) -> list[str]:
    """The overrides, completed by the demo's own pre-launch hook where it has one (distill: `teacher=RUN`). The
    hook may compose the config these overrides make, `train(command, overrides)` a run it needs first, and `say`
    what it chose."""
    if demo.before_launch is None:
        return overrides

    def compose() -> DictConfig:
        with _hydra():
            return _compose(demo, [*(["experiment=smoke"] if smoke else []), *fixed_overrides(overrides)])

    return _imported(demo.before_launch)(overrides, compose=compose, train=train, say=say)


# -- the plan: everything before the run starts ---------------------------------------------------------------------
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
        with _hydra():
            shared = _compose(demo, fixed_overrides(args))  # what every job gets wrong is refused once, here
            _check(demo, shared)
            args += search_settings(demo, args, shared)
        sweep_dir = new_run_dir(demo.command, multirun=True)
        return Plan(demo, [*args, f"hydra.sweep.dir={sweep_dir}", "hydra.mode=MULTIRUN"], sweep_dir)
    if resume is not None:
        args.append("resume=true")
    with _hydra():
        cfg = _compose(demo, args, configure_logging=True)
        _check(demo, cfg)
    run_dir = resume if resume is not None else new_run_dir(demo.command)
    settings = [f"hydra.run.dir={run_dir}", "hydra.mode=RUN"]
    if rank:  # ranks > 0 share rank 0's folder: they leave Hydra's record and the terminal to rank 0
        settings[:0] = ["hydra.output_subdir=null", "hydra.job_logging.root.handlers=[file]",
                        f"hydra.job_logging.handlers.file.filename={run_dir}/{demo.config}.rank{rank}.log"]
    _settle(cfg, settings)
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

    with _hydra():
        cfg = _compose(demo, [*_given(demo, overrides, epochs=epochs, smoke=smoke, resume=resume),
                              f"hydra.job.name={demo.config}"])
    return OmegaConf.to_yaml(_job_part(cfg))


def analyse(demo: Demo, sweep_dir: Path, overrides: list[str]) -> None:
    """`--from SWEEP`: the demo's own analysis of a finished sweep (its hydra.callbacks' `analysis`, as when its own
    sweep ends), with the demo's settings and these overrides, training nothing."""
    with _hydra():
        cfg = _compose(demo, overrides)
    for callback in cfg.hydra.callbacks.values():
        if "analysis" in callback:
            module, _, name = callback.analysis.rpartition(".")
            getattr(importlib.import_module(module), name)(Path(sweep_dir), cfg)


# -- starting it ----------------------------------------------------------------------------------------------------
def start(plan: Plan, quiet: bool = True) -> None:
    """Run the plan in this process: a single run on its composed config, a sweep through Hydra's multirun (its
    launchers, sweepers and callbacks). Where it fails before any job recorded anything, its folder goes (a resumed
    one stays). quiet: drop Hydra's "Error executing job with overrides" line (written straight to sys.stderr by
    hydra.core.utils.JobReturn, no logger to configure): the caller's own message follows it anyway."""
    stderr = sys.stderr
    if quiet:
        sys.stderr = _Unprefixed(stderr, "Error executing job with overrides:")
    try:
        with _hydra() as hydra, _user_errors(plan.demo, plan.overrides):
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
        overrides = list(hc.overrides.task)
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


# -- composing and checking -----------------------------------------------------------------------------------------
@contextmanager
def _hydra():
    """Hydra initialised on trends' configs, as `hydra.main(config_path="pkg://trends.conf")` initialises it; yields
    Hydra itself (hydra._internal.hydra.Hydra: its composition, its multirun)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    import trends.core  # noqa: F401 — registers the configs' resolvers (${mul:…})

    with initialize_config_module(config_module=CONFIGS, version_base="1.3"):
        yield GlobalHydra.instance().hydra


def _compose(demo: Demo, overrides: list[str], *, configure_logging: bool = False) -> DictConfig:
    """The demo's config with these overrides and Hydra's own node, composed as Hydra's `run` composes it (inside
    _hydra); `configure_logging` also sets up Hydra's own logging, as a run does."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with _user_errors(demo, overrides):
        return GlobalHydra.instance().hydra.compose_config(demo.config, overrides, run_mode=RunMode.RUN,
                                                           with_log_configuration=configure_logging)


def _job_part(cfg: DictConfig) -> DictConfig:
    """The config the job sees: a copy without Hydra's node."""
    from omegaconf import open_dict, read_write

    job = copy.deepcopy(cfg)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def _check(demo: Demo, cfg: DictConfig) -> None:
    """Refuse a composed config (Hydra's node included) that cannot run: a `???` not given, an overridden value not
    of its default's kind or appended where the config has no key, a value the core or the demo cannot work with."""
    from trends.core.config import check_complete, check_override_types, check_values

    job = _job_part(cfg)
    check_complete(job)
    check_override_types(job, demo.config, list(cfg.hydra.overrides.task), dict(cfg.hydra.runtime.choices))
    check_values(job, checks(demo))


def checks(demo: Demo):
    """The value checks of a demo's config: the core's shared ones and the demo's own."""
    from trends.core.config import SHARED

    return SHARED + _imported(demo.checks) if demo.checks else SHARED


def _settle(cfg: DictConfig, settings: list[str]) -> None:
    """Apply Hydra settings known only once the folder exists to a composed config, as Hydra applies them from the
    command line (hydra.yaml lists them among its overrides, as it would have)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(settings), cfg)
    cfg.hydra.overrides.hydra += settings


@contextmanager
def _user_errors(demo: Demo, overrides: list[str]):
    """What Hydra or OmegaConf refuse, as a UserError in at most two lines (an unknown key with the closest keys)."""
    from hydra.errors import ConfigCompositionException, HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except (HydraException, OmegaConfBaseException) as err:
        unknown = re.match(r"Could not override '([^']+)'", str(err))
        if isinstance(err, ConfigCompositionException) and unknown:
            raise UserError(_unknown_key(demo, unknown.group(1), overrides)) from err
        raise UserError(hydra_message(err)) from err


def hydra_message(err: Exception) -> str:
    """Hydra's own words, plus OmegaConf's reason, in at most two lines: no traceback, no config search path."""
    text = str(err).split("Config search path:")[0].strip()
    missing = re.match(r"In '[^']*': Could not (?:find|load) '(.+)/([^/']+)'\s+Available options in '[^']+':(.*)",
                       text, re.DOTALL)
    if missing:
        group, option, options = missing.groups()
        return f"{group}={option} is not an option; available options of {group}: {', '.join(options.split())}"
    cause = err.__cause__
    if cause is not None and str(cause).split("\n")[0] not in text:
        text += "\n" + str(cause).split("\n")[0]
    return "\n".join([line for line in text.splitlines() if line.strip()][:2])  # the rest only repeats or links


def _unknown_key(demo: Demo, key: str, overrides: list[str]) -> str:
    """The message for a key Hydra could not override, with the closest keys of the config the user's group choices
    compose (the first value of a swept group stands for the sweep)."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from trends.core.config import unknown_key

    choices = compose(demo.config, return_hydra_config=True).hydra.runtime.choices
    groups = []
    for o in OverridesParser.create().parse_overrides([a for a in overrides if "=" in a]):
        if o.key_or_group in choices and not o.key_or_group.startswith("hydra"):
            value = next(o.sweep_string_iterator()) if o.is_sweep_override() else o.get_value_element_as_str()
            groups.append(f"{o.key_or_group}={value}")
    return unknown_key(key, compose(demo.config, overrides=groups), demo.config)


def fixed_overrides(args: list[str]) -> list[str]:
    """The overrides that are the same in every job of a sweep (`seed=0,1` and `range(…)` sweeps left out)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    fixed = []
    for arg in args:
        try:
            if not parser.parse_override(arg).is_sweep_override():
                fixed.append(arg)
        except HydraException:
            fixed.append(arg)  # unparsable: composing them says so in Hydra's terms
    return fixed


# -- searches -------------------------------------------------------------------------------------------------------
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
    again continues an interrupted search. None for Hydra's grid."""
    from trends.records.search import direction, is_search, trials_still_owed

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
        owed = trials_still_owed(str(sweeper.storage), sweeper.study_name, sweeper.n_trials)
        if owed < sweeper.n_trials:
            print(f"study {sweeper.study_name} in {sweeper.storage}: {sweeper.n_trials - owed} of its "
                  f"{sweeper.n_trials} trials are done, {owed} to go", file=sys.stderr)
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


# -- resume ---------------------------------------------------------------------------------------------------------
def is_sweep_folder(path: Path) -> bool:
    return (Path(path) / "multirun.yaml").is_file()


def sweep_resume_overrides(demo: Demo, sweep_dir: Path) -> list[str]:
    """The overrides a sweep was started with, so `--resume SWEEP` re-launches exactly its jobs (same numbers)."""
    from omegaconf import OmegaConf

    saved = OmegaConf.load(sweep_dir / "multirun.yaml")
    if OmegaConf.select(saved, "hydra.job.name") != demo.config:
        raise UserError(f"{sweep_dir} is not a `trends {demo.command}` sweep")
    search = search_resume_hint(sweep_dir)
    if search:
        raise UserError(f"{sweep_dir} is a search: {search}")
    return [o for o in OmegaConf.select(saved, "hydra.overrides.task", default=[])
            if not o.startswith(("resume=", "hydra.job.name="))]


def resume_overrides(demo: Demo, run_dir: Path) -> list[str]:
    """The overrides a run was started with, so `--resume` rebuilds exactly its config."""
    from omegaconf import OmegaConf

    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise UserError(f"{run_dir} is not a run folder (no .hydra/overrides.yaml); "
                        f"pass a folder under {layout.outputs_root() / demo.command}")
    hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml")
    if OmegaConf.select(hydra_cfg, "hydra.job.name") != demo.config:
        raise UserError(f"{run_dir} is not a `trends {demo.command}` run")
    if not layout.checkpoint_of(run_dir).is_file():
        raise UserError(f"{run_dir} has no checkpoint to resume from ({layout.CHECKPOINT}); start a new run")
    return [o for o in OmegaConf.load(saved) if not o.startswith("resume=")]


# -- folders --------------------------------------------------------------------------------------------------------
def torchrun_rank() -> int | None:
    """This process's rank when torchrun started several (None for a plain single-process run)."""
    ranks = Dist.from_env()
    return ranks.rank if ranks.active else None


def new_run_dir(command: str, multirun: bool = False) -> Path:
    """`outputs/<command>[/multirun]/<timestamp>`, created here so two runs started in one second never share it.

    Under torchrun every rank must land in one folder: it is named after torchrun's run id instead.
    """
    base = layout.outputs_root() / command / ("multirun" if multirun else "")
    if torchrun_rank() is not None:
        if "TORCHELASTIC_RUN_ID" not in os.environ:
            raise UserError("several processes (WORLD_SIZE > 1) need one shared run folder: launch them with "
                            "torchrun --standalone --nproc-per-node=N -m trends ...")
        path = base / f"torchrun_{os.environ['TORCHELASTIC_RUN_ID']}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the run folder {path} ({err.strerror})") from None
        return path
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for attempt in range(1000):
        path = base / (stamp if attempt == 0 else f"{stamp}_{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise UserError(f"cannot create the run folder {path} ({err.strerror}); run from a writable folder "
                            "or set TRENDS_OUTPUTS to one") from None
    raise UserError(f"could not find a free run folder name under {base}")


def discard_unused(run_dir: Path | None) -> None:
    """Remove a run or sweep folder where no job got a summary (bad input stopped it): nothing half-written stays."""
    if run_dir is not None and run_dir.is_dir() and not any(run_dir.glob("**/summary.json")):
        shutil.rmtree(run_dir, ignore_errors=True)
        root = layout.outputs_root().resolve()
        for parent in run_dir.resolve().parents:  # the folders made for it go too, up to outputs/ itself
            if parent != root and root not in parent.parents:
                break
            try:
                parent.rmdir()  # fails while not empty: another run lives there
            except OSError:
                break

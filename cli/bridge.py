"""From typed CLI options to a Hydra run: run folders, the Hydra entry, and errors turned into short messages."""
from __future__ import annotations

import importlib
import importlib.resources
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from trends.errors import UserError
from trends.ranks import Dist
from trends.records import layout

CONFIGS = "trends.conf"  # the package that holds conf/: Hydra reads it as pkg://trends.conf, installed or editable


def config_files():
    """conf/ as importlib.resources sees it (a folder, or files inside an installed wheel)."""
    return importlib.resources.files(CONFIGS)


@dataclass(frozen=True)
class Demo:
    command: str  # what users type: `trends vit-vs-cnn`
    config: str  # primary config: conf/<config>.yaml
    entry: str  # module with main(cfg, run)
    help: str
    issue: int  # where it is specified, for the "not built yet" message
    sweep: bool = False  # the command is itself a sweep (its config lists the jobs): every run is a multirun
    teacher: str | None = None  # the command learns from a finished run of this command (`teacher=RUN`)
    headline: str = ""  # the summary metric a run is judged by (a search's default objective; its name says which
    #                     way is better: trends.records.search.direction)

    @property
    def available(self) -> bool:
        return config_files().joinpath(f"{self.config}.yaml").is_file()

    def group_options(self) -> list[str]:
        """`group=option` for every group the primary config's defaults list names, read from the folders its Hydra
        search path adds (`pkg://trends.conf.<name>`: conf/<demo>/ and shared ones such as conf/vision/)."""
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


def outputs_root() -> Path:
    return Path(os.environ.get("TRENDS_OUTPUTS", "outputs"))


def torchrun_rank() -> int | None:
    """This process's rank when torchrun started several (None for a plain single-process run)."""
    ranks = Dist.from_env()
    return ranks.rank if ranks.active else None


def new_run_dir(command: str, multirun: bool = False) -> Path:
    """`outputs/<command>[/multirun]/<timestamp>`, created here so two runs started in one second never share it.

    Under torchrun every rank must land in one folder: it is named after torchrun's run id instead.
    """
    base = outputs_root() / command / ("multirun" if multirun else "")
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


def latest_completed_run(command: str, overrides: list[str]) -> Path | None:
    """The newest completed single run of `trends <command>` started with exactly these overrides, if any."""
    def matches(run: Path) -> bool:
        summary = layout.read_summary(run)
        given = [o for o in summary.get("overrides", []) if not o.startswith("hydra.")]
        return summary.get("status") == "completed" and given == overrides
    root = outputs_root() / command
    runs = [p for p in root.iterdir() if p.is_dir() and p.name != "multirun" and matches(p)] if root.is_dir() else []
    return max(runs, key=lambda p: (p / layout.SUMMARY).stat().st_mtime, default=None)


def with_teacher(demo: Demo, overrides: list[str], *, smoke: bool, train, say) -> list[str]:
    """The overrides with a checked `teacher=RUN` (a UserError where it is not a finished run of the teacher's
    command): the one given, else the newest completed run of the teacher's command made with the overrides the
    config names (`teacher_overrides`: none by default, its smoke or GPU preset under the student's), else one
    trained first by `train(command, overrides)`. `say` tells the user which."""
    from trends.distill.teacher import check_teacher

    given = [o.split("=", 1)[1] for o in overrides if o.startswith("teacher=")]
    for path in given[-1].split(",") if given else []:  # a sweep over teachers: each must be one
        check_teacher(path)
    if given:
        return overrides
    if torchrun_rank() is not None:  # every process would look for, or train, a teacher of its own
        raise UserError(f"under torchrun, name the teacher: teacher=outputs/{demo.teacher}/<run>")
    try:
        cfg = compose_config(demo, [*(["experiment=smoke"] if smoke else []), *fixed_overrides(overrides)])
    except UserError:
        return overrides  # the config does not compose: the launch says why, in Hydra's terms
    wanted = list(cfg.teacher_overrides)
    command = " ".join(["trends", demo.teacher, *wanted])
    teacher = latest_completed_run(demo.teacher, wanted)
    if teacher is None:
        say(f"no teacher= given and no finished `{command}` run: training one first")
        train(demo.teacher, wanted)
        teacher = latest_completed_run(demo.teacher, wanted)
    say(f"teacher: {teacher} (the newest `{command}` run; choose another with teacher=RUN)")
    return [*overrides, f"teacher={teacher.resolve()}"]  # absolute: jobs may run elsewhere (submitit, --resume)


def is_sweep_folder(path: Path) -> bool:
    return (Path(path) / "multirun.yaml").is_file()


def search_resume_hint(sweep_dir: Path) -> str | None:
    """How an interrupted search goes on (`--resume` cannot: it replays a grid, not a sampler's choices)."""
    from trends.records.search import saved_search

    cfg = saved_search(sweep_dir)
    if cfg is None:
        return None
    storage, name = OmegaConf.select(cfg, "hydra.sweeper.storage"), OmegaConf.select(cfg, "hydra.sweeper.study_name")
    if storage:
        return f"the same command again continues study {name} in {storage}"
    return ("this search was kept in memory, so a new one starts from scratch; to make it resumable, add "
            "hydra.sweeper.storage=sqlite:///outputs/search.db hydra.sweeper.study_name=NAME")


def sweep_resume_overrides(demo: Demo, sweep_dir: Path) -> list[str]:
    """The overrides a sweep was started with, so `--resume SWEEP` re-launches exactly its jobs (same numbers)."""
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
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise UserError(f"{run_dir} is not a run folder (no .hydra/overrides.yaml); "
                        f"pass a folder under {outputs_root() / demo.command}")
    hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml")
    if OmegaConf.select(hydra_cfg, "hydra.job.name") != demo.config:
        raise UserError(f"{run_dir} is not a `trends {demo.command}` run")
    if not layout.checkpoint_of(run_dir).is_file():
        raise UserError(f"{run_dir} has no checkpoint to resume from ({layout.CHECKPOINT}); start a new run")
    return [o for o in OmegaConf.load(saved) if not o.startswith("resume=")]


def hydra_argv(demo: Demo, overrides: list[str], *, epochs: float | None, smoke: bool, multirun: bool,
               print_cfg: bool, resume: Path | None) -> tuple[list[str], Path | None]:
    """Hydra's argv for the options a user typed, and the run folder it will use."""
    args: list[str] = []
    if resume is not None and is_sweep_folder(resume):
        # Every job again in the same folder: completed ones are kept, the others continue or start (bridge._task).
        args = [*sweep_resume_overrides(demo, resume), f"hydra.job.name={demo.config}", "resume=true"]
        return ["--multirun", *args, f"hydra.sweep.dir={resume}"], resume
    if resume is not None:
        args += resume_overrides(demo, resume)
    if smoke:
        args.append("experiment=smoke")
    if epochs is not None:
        args.append(f"train.epochs={int(epochs) if float(epochs).is_integer() else epochs}")
    args += overrides
    args.append(f"hydra.job.name={demo.config}")
    if print_cfg:
        return ["--cfg", "job", *args], None
    args = search_overrides(demo, args, multirun=multirun) if resume is None else args
    if multirun and resume is None:
        if torchrun_rank() is not None:
            raise UserError("a sweep under torchrun is not supported: run the sweep with a launcher instead")
        check_before_the_folder(demo, fixed_overrides(args))  # what every job would get wrong, refused once
        sweep_dir = new_run_dir(demo.command, multirun=True)
        return ["--multirun", *args, f"hydra.sweep.dir={sweep_dir}"], sweep_dir
    if resume is None:
        check_before_the_folder(demo, args)
    run_dir = resume if resume is not None else new_run_dir(demo.command)
    if torchrun_rank():  # ranks > 0 share rank 0's folder: they leave Hydra's record and the terminal to rank 0
        args += ["hydra.output_subdir=null", "hydra.job_logging.root.handlers=[file]",
                 f"hydra.job_logging.handlers.file.filename={run_dir}/{demo.config}.rank{torchrun_rank()}.log"]
    if resume is not None:
        args.append("resume=true")
    return [*args, f"hydra.run.dir={run_dir}"], run_dir


def search_overrides(demo: Demo, args: list[str], *, multirun: bool) -> list[str]:
    """For a search (`hparams_search=optuna`, `hydra/sweeper=optuna`): check it can run, and add what the sweeper
    needs from trends — the direction of the optimised metric (unless given), and for a study stored in a database
    the trials it still owes, so that the same command again continues an interrupted search."""
    from trends.records.search import direction, require_plugin, trials_still_owed

    chosen = [a.split("=", 1)[1] for a in args if a.startswith(("hparams_search=", "hydra/sweeper="))]
    if not chosen or all(c in ("null", "basic") for c in chosen):
        return args
    if demo.sweep:
        raise UserError(f"`trends {demo.command}` is a sweep of its own; search the settings of its runs with the "
                        "command that trains one (e.g. trends lm -m hparams_search=optuna)")
    if not multirun:
        raise UserError(f"a search runs many trials: add -m (trends {demo.command} -m {' '.join(args[:1])} …)")
    require_plugin()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna's database layer: a line per plugin it loads
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # optuna 2 uses SQLAlchemy 1.4's older API
    cfg = compose_config(demo, [a for a in fixed_overrides(args) if not a.startswith("hydra.job.")], hydra=True)
    sweeper = cfg.hydra.sweeper
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
    return [*args, *added]


def check_before_the_folder(demo: Demo, args: list[str]) -> None:
    """Compose the config a single run will get (for a sweep: its fixed overrides) and check its values, before its
    folder is made or any data read (a swept value is checked inside its own job, where a bad one fails alone). What
    Hydra itself refuses (an unknown key or group option) is left to the run, which says it in Hydra's terms."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    from trends.core.config import check_complete, check_values

    with initialize_config_module(config_module=CONFIGS, version_base="1.3"):
        try:
            cfg = compose(demo.config, overrides=[a for a in args if not a.startswith("hydra.")])
        except HydraException:
            return
    check_complete(cfg)
    check_values(cfg)


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
            fixed.append(arg)  # unparsable: Hydra says so in its own terms when the sweep starts
    return fixed


def compose_config(demo: Demo, overrides: list[str], hydra: bool = False):
    """The demo's config with these overrides, composed without a run (for work that trains nothing); `hydra`: with
    Hydra's own config (its sweeper, say) under `hydra`."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    with initialize_config_module(config_module=CONFIGS, version_base="1.3"):
        try:
            return compose(demo.config, overrides=overrides, return_hydra_config=hydra)
        except HydraException as err:
            raise UserError(str(err).splitlines()[0]) from None


def discard_unused(run_dir: Path | None) -> None:
    """Remove a run or sweep folder where no job got a summary (bad input stopped it): nothing half-written stays."""
    if run_dir is not None and run_dir.is_dir() and not any(run_dir.glob("**/summary.json")):
        shutil.rmtree(run_dir, ignore_errors=True)
        root = outputs_root().resolve()
        for parent in run_dir.resolve().parents:  # the folders made for it go too, up to outputs/ itself
            if parent != root and root not in parent.parents:
                break
            try:
                parent.rmdir()  # fails while not empty: another run lives there
            except OSError:
                break


def run_hydra(demo: Demo, argv: list[str], quiet: bool = True) -> None:
    """Hand over to Hydra's own entry, so multirun, launchers, sweepers and .hydra/ records all work.

    quiet: drop Hydra's "Error executing job with overrides" line (written straight to sys.stderr by
    hydra.core.utils.JobReturn, no logger to configure): the CLI's own message follows it anyway."""
    import hydra
    from hydra.errors import ConfigCompositionException

    saved = os.environ.get("HYDRA_FULL_ERROR"), sys.argv, sys.stderr
    os.environ["HYDRA_FULL_ERROR"] = "1"  # errors reach trends.cli.main, which decides how much of them to show
    sys.argv = [f"trends {demo.command}", *argv]
    if quiet:
        sys.stderr = _Unprefixed(sys.stderr, "Error executing job with overrides:")
    try:
        hydra.main(config_path=f"pkg://{CONFIGS}", config_name=demo.config, version_base="1.3")(_task(demo))()
    except ConfigCompositionException as err:
        unknown = re.match(r"Could not override '([^']+)'", str(err))
        if unknown is None:
            raise
        raise UserError(_unknown_key(demo, unknown.group(1), argv)) from err
    finally:  # in-process callers (tests, notebooks) get their environment back
        if saved[0] is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved[0]
        sys.argv, sys.stderr = saved[1], saved[2]


class _Unprefixed:
    """A stream that drops the writes starting with `prefix` and passes everything else on."""

    def __init__(self, stream, prefix: str):
        self._stream, self._prefix = stream, prefix

    def write(self, text: str) -> int:
        return len(text) if text.startswith(self._prefix) else self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _unknown_key(demo: Demo, key: str, argv: list[str]) -> str:
    """The message for a key Hydra could not override, with the closest keys of the config the user's group choices
    compose (the first value of a swept group stands for the sweep)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from trends.core.config import unknown_key

    GlobalHydra.instance().clear()  # the failed run may have left Hydra initialised
    with initialize_config_module(config_module=CONFIGS, version_base="1.3"):
        choices = compose(demo.config, return_hydra_config=True).hydra.runtime.choices
        groups = []
        for o in OverridesParser.create().parse_overrides([a for a in argv if "=" in a and not a.startswith("-")]):
            if o.key_or_group in choices and not o.key_or_group.startswith("hydra"):
                value = next(o.sweep_string_iterator()) if o.is_sweep_override() else o.get_value_element_as_str()
                groups.append(f"{o.key_or_group}={value}")
        return unknown_key(key, compose(demo.config, overrides=groups), demo.config)


def _task(demo: Demo):
    def task(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from trends.core.config import check_complete, check_override_types, check_values
        from trends.core.execute import execute
        from trends.records.search import is_search, trial_value

        hc = HydraConfig.get()
        overrides = list(hc.overrides.task)
        check_complete(cfg)
        check_override_types(cfg, demo.config, overrides, dict(hc.runtime.choices))
        train = importlib.import_module(demo.entry).main
        out_dir = Path(hc.runtime.output_dir)
        multirun = hc.mode == RunMode.MULTIRUN
        if multirun and cfg.resume:  # `--resume SWEEP`: keep what completed, continue what has a checkpoint
            done = layout.read_summary(out_dir)
            if done.get("status") == "completed":
                return done
            if not layout.checkpoint_of(out_dir).is_file():
                (out_dir / layout.METRICS).unlink(missing_ok=True)  # a start without a checkpoint: from scratch
                cfg.resume = False

        def checked_train(cfg, run):  # inside execute: in a sweep a job whose values cannot work fails alone
            check_values(cfg)
            return train(cfg, run)

        summary = execute(checked_train, cfg, out_dir, command=demo.command, overrides=overrides, multirun=multirun)
        if multirun and is_search(OmegaConf.select(hc.sweeper, "_target_")):
            return trial_value(summary, cfg.optimized_metric)  # a search's sweeper wants one number from each trial
        return summary

    return task


def failed_sweep_analysis(sweep_dir: Path | None) -> str | None:
    """The error a sweep's own analysis recorded in its summary.json (Hydra only warns when a callback raises)."""
    summary = layout.read_summary(sweep_dir) if sweep_dir is not None else {}
    return summary.get("error") if summary.get("status") == "failed" else None

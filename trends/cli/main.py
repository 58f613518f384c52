"""`trends`: one subcommand per demo (trends.launch.DEMOS), plus `sample`, `report`, `tour` and `runs`.

Demo options (`--epochs`, `--smoke`, `-m`, `--cfg`, `--resume`) become Hydra overrides; everything else on the line
is a Hydra override itself (`model.n_layer=6`, `data=text`, `seed=0,1`). The launch (trends.launch) does the rest;
this module parses, prints and sets exit codes.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

from trends import launch
from trends.launch import DEMOS, Demo

app = typer.Typer(help="Run the deep-learning trends of recent years on your own machine.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _complete_overrides(demo: Demo):
    """Offer `group=option` for each config group of the demo (read from trends/conf/, no composition needed)."""
    def complete(incomplete: str) -> list[str]:
        return [o for o in demo.group_options() if o.startswith(incomplete)]
    return complete


def _add_demo(demo: Demo) -> None:
    def command(
        overrides: Optional[List[str]] = typer.Argument(
            None, metavar="[OVERRIDES]...", help="Hydra overrides: key=value, group=option, sweeps a=1,2 with -m.",
            autocompletion=_complete_overrides(demo), show_default=False),
        epochs: Optional[float] = typer.Option(None, "--epochs", help="Training epochs (train.epochs)."),
        smoke: bool = typer.Option(False, "--smoke", help="Tiny offline data and model: seconds (experiment=smoke)."),
        multirun: bool = typer.Option(False, "-m", "--multirun", help="Sweep: one job per combination of values."),
        cfg: bool = typer.Option(False, "--cfg", help="Print the composed config and exit."),
        resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder."),
        debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
        source: Optional[Path] = typer.Option(None, "--from", hidden=not demo.sweep,
                                              help=f"Analyse this finished sweep instead of training: `trends "
                                                   f"{demo.command}`'s own analysis, as at the end of its sweep."),
    ) -> None:
        if not demo.available:
            _fail(f"`trends {demo.command}` is not built yet (see issue #{demo.issue}); try `trends lm`.")
        if resume is not None and multirun:
            _fail("--resume continues a run or a whole sweep from its folder; drop -m")
        if source is not None:
            if not demo.sweep:
                *others, last = [f"`trends {d.command}`" for d in DEMOS if d.sweep]
                sweeps = f"{', '.join(others)} and {last}" if others else last
                _fail(f"--from is an option of {sweeps}, not of `trends {demo.command}`")
            raise typer.Exit(_analyse(demo, source, list(overrides or []), debug=debug))
        overrides = list(overrides or [])
        if resume is None and not cfg:
            overrides = _before_launch(demo, overrides, smoke=smoke, debug=debug)
        code = _launch(demo, overrides, epochs=epochs, smoke=smoke, multirun=multirun, print_cfg=cfg, resume=resume,
                       debug=debug)
        raise typer.Exit(code)

    app.command(name=demo.command, help=demo.help)(command)


def _launch(demo: Demo, overrides: list[str], *, epochs: float | None, smoke: bool, multirun: bool, print_cfg: bool,
            resume: Path | None, debug: bool) -> int:
    """Launch (trends.launch); map every way it can end to an exit code and at most two lines of explanation."""
    from trends.errors import Diverged, RunInterrupted, UserError
    from trends.ranks import Dist
    from trends.records.search import TrialFailed

    show_traceback = debug or os.environ.get("HYDRA_FULL_ERROR") == "1"
    rank = launch.torchrun_rank()

    def say(text: str) -> None:  # under torchrun every rank has the same story: rank 0 tells it
        if not rank:
            typer.echo(text, err=True)

    run_dir = None
    try:
        if print_cfg:
            typer.echo(launch.composed_yaml(demo, overrides, epochs=epochs, smoke=smoke, resume=resume), nl=False)
            return 0
        plan = launch.prepare(demo, overrides, epochs=epochs, smoke=smoke, multirun=multirun, resume=resume)
        run_dir = plan.folder
        launch.start(plan, quiet=not show_traceback)
        failed = launch.failed_sweep_analysis(run_dir) if demo.sweep else None
        if failed:
            say(f"error: {failed}")
            return 1
        return 0
    except (RunInterrupted, KeyboardInterrupt):
        again = f"trends {demo.command}" if rank is None else \
            f"torchrun --standalone --nproc-per-node={Dist.from_env().world} -m trends {demo.command}"
        search = launch.search_resume_hint(run_dir) if run_dir else None
        say(f"interrupted; {search}" if search else
            f"interrupted; continue with: {again} --resume {run_dir}" if run_dir else "interrupted")
        return 130
    except Exception as err:
        if show_traceback:
            raise
        if isinstance(err, UserError):
            say(f"error: {err}")
            return 2
        if isinstance(err, Diverged):
            say(f"diverged: {err} (run folder: {run_dir})")
            return 1
        if isinstance(err, TrialFailed):  # the sweeper's failure budget is spent
            say(f"error: {err}; the search stops there (hydra.sweeper.max_failure_rate); run folder: {run_dir}")
            return 1
        if isinstance(err, ValueError) and "No trials are completed" in str(err):
            say(f"error: no trial of the search completed; each trial's summary.json under {run_dir} says why")
            return 1
        if isinstance(err, OSError) and err.strerror:  # a full disk, a lost mount: the folder keeps what it saved
            say(f"error: {err.strerror}" + (f" writing {err.filename}" if err.filename else ""))
            say(_what_is_kept(run_dir, f"trends {demo.command}"))
            return 1
        typer.echo(f"error: {type(err).__name__}: {err}\n(run folder: {run_dir}; add --debug for the traceback)",
                   err=True)
        return 1


def _what_is_kept(run_dir: Path | None, again: str) -> str:
    """The second line after a run failed writing: what its folder still holds, and how it goes on."""
    from trends.records import layout

    if run_dir is None or not run_dir.is_dir():
        return "nothing was recorded"
    step = layout.read_summary(run_dir).get("checkpoint", {}).get("step")
    if step is None or not layout.checkpoint_of(run_dir).is_file():
        return f"run folder: {run_dir} (no checkpoint yet)"
    return f"{run_dir} keeps its metrics and its checkpoint of step {step}; once fixed: {again} --resume {run_dir}"


def _before_launch(demo: Demo, overrides: list[str], *, smoke: bool, debug: bool) -> list[str]:
    """launch.before_launch, with what it must train first (distill's teacher) trained through this CLI."""
    from trends.errors import UserError

    def train(command: str, needed: list[str]) -> None:
        code = _launch(launch.demo_named(command), needed, epochs=None, smoke=False, multirun=False,
                       print_cfg=False, resume=None, debug=debug)
        if code:
            raise typer.Exit(code)

    try:
        return launch.before_launch(demo, overrides, smoke=smoke, train=train, say=lambda t: typer.echo(t, err=True))
    except UserError as err:
        if launch.torchrun_rank():
            raise typer.Exit(2)  # rank 0 says why
        _fail(str(err))


def _analyse(demo: Demo, sweep_dir: Path, overrides: list[str], debug: bool) -> int:
    """`trends scaling --from SWEEP [scaling.…=…]` (or distill's): the demo's analysis alone, with the demo's
    settings (and overrides), on a sweep it checks first."""
    with _reading(sweep_dir, debug=debug):
        launch.analyse(demo, sweep_dir, overrides)
    return 0


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def _reading(*folders: Path, debug: bool = False):
    """Around a command that reads folders the user named (`sample`, `report`, `runs show`, `runs compare`, a sweep's
    `--from`): what they check and refuse (a UserError) is one line and exit code 2; anything else a folder's content
    breaks is two lines and exit code 1, not a traceback (`--debug` or HYDRA_FULL_ERROR=1 shows it)."""
    from trends.errors import UserError

    try:
        yield
    except typer.Exit:
        raise
    except Exception as err:
        if debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(err, UserError):
            _fail(str(err))
        first = (str(err).strip().splitlines() or [""])[0]
        typer.echo(f"error: {type(err).__name__}: {first}\n(reading {', '.join(map(str, folders))}; "
                   "HYDRA_FULL_ERROR=1 shows the traceback)", err=True)
        raise typer.Exit(1)


for _demo in DEMOS:
    _add_demo(_demo)


@app.command()
def sample(
    run_dir: Path = typer.Argument(..., help="Folder of a trained `trends lm` run."),
    prompt: str = typer.Option("\n", "--prompt", help="Text to continue."),
    tokens: int = typer.Option(500, "--tokens", min=1, help="Characters to generate."),
    temperature: float = typer.Option(0.8, "--temperature", min=1e-3, help="Below 1: safer; above 1: wilder."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Sample only from the k likeliest."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Generate text from a trained `trends lm` run."""
    with _reading(run_dir):
        from trends.text.sample import sample_from_run

        text = sample_from_run(run_dir, prompt=prompt, tokens=tokens, temperature=temperature, top_k=top_k,
                               seed=seed, device=device)
    typer.echo(text)


@app.command()
def report(
    paths: List[Path] = typer.Argument(..., help="A run or sweep folder; several run folders: a comparison."),
    out: Optional[Path] = typer.Option(None, "-o", "--output",
                                       help="Where to write (default: FOLDER/report.html; for several: compare.html)."),
) -> None:
    """One self-contained HTML page of a run, a sweep (mean ± std over seeds), or runs side by side."""
    from trends.records.report import write_report

    with _reading(*paths):
        written = write_report(paths, out)
    typer.echo(f"report: {written}")


@app.command()
def tour(
    quick: bool = typer.Option(False, "--quick", help="Short budgets on the real data: minutes, not the full hour."),
    smoke: bool = typer.Option(False, "--smoke", help="Every demo on its offline smoke data: seconds (CI)."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated stages, e.g. lm,distill,gnn."),
    extra: List[str] = typer.Option([], "--set", help="STAGE:key=value, an override for one stage (repeatable)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of continuing the last tour."),
) -> None:
    """Every trend at its CPU default (or --quick), then one page: the lecture, live (outputs/tour/tour.html)."""
    import shutil

    from trends.cli.tour import run_tour
    from trends.errors import UserError
    from trends.records.layout import outputs_root

    mode = "smoke" if smoke else "quick" if quick else "full"
    folder = outputs_root() / ("tour" if mode == "full" else f"tour-{mode}")
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        code = run_tour(mode, folder, only=only.split(",") if only else None, extra=extra)
    except UserError as err:
        _fail(str(err))
    raise typer.Exit(code)


runs_app = typer.Typer(help="Recent runs: what ran, how it ended, what it reached.")
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context,
         root: Path = typer.Option(None, "--root", help="Outputs folder (default: ./outputs or $TRENDS_OUTPUTS)."),
         limit: int = typer.Option(20, "--limit", min=1)) -> None:
    """Table of recent runs: command, status, key overrides, headline metric, time."""
    if ctx.invoked_subcommand is None:
        from trends.cli.runs import print_runs
        from trends.records.layout import outputs_root

        print_runs(root or outputs_root(), limit)


@runs_app.command("show")
def runs_show(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
    """Everything a run recorded: summary, config, files."""
    from trends.cli.runs import show_run

    with _reading(run_dir):
        show_run(run_dir)


@runs_app.command("compare")
def runs_compare(run_dirs: List[Path] = typer.Argument(..., help="Two or more run folders.")) -> None:
    """The runs side by side in the terminal: headlines, the config keys that differ, every metric."""
    from trends.cli.runs import compare_runs

    if len(run_dirs) < 2:
        _fail("compare needs two or more run folders")
    with _reading(*run_dirs):
        compare_runs(run_dirs)


def main() -> None:
    app(prog_name="trends")


if __name__ == "__main__":
    sys.exit(main())

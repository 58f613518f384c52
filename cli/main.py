"""`trends`: one subcommand per demo, plus `sample` and `runs`.

Demo options (`--epochs`, `--smoke`, `-m`, `--cfg`, `--resume`) become Hydra overrides; everything else on the line
is a Hydra override itself (`model.n_layer=6`, `data=text`, `seed=0,1`).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer

from trends.cli import bridge
from trends.cli.bridge import Demo

DEMOS = [
    Demo("contrastive", "contrastive", "trends.contrastive.train",
         "SimCLR self-supervised learning, evaluated with kNN and a linear probe.", 4, headline="knn_acc"),
    Demo("gnn", "gnn", "trends.gnn.train", "Graph neural networks on citation graphs and molecules.", 3,
         headline="test_acc"),
    Demo("lm", "lm", "trends.lm.train", "A character-level GPT on Tiny Shakespeare (or any text file).", 2,
         headline="best_val_loss"),
    Demo("scaling", "scaling", "trends.scaling.train",
         "Language models get bigger: a ladder of GPT sizes and the power law of their losses.", 13, sweep=True),
    Demo("distill", "distill", "trends.distill.train",
         "Small distilled language models: students of a `trends lm` teacher, from scratch, soft targets, DistilBERT.",
         14, sweep=True, teacher="lm"),
    Demo("pretext", "pretext", "trends.pretext.train",
         "Self-supervised pretext tasks: where a patch lies, rotation, jigsaw; evaluated like contrastive.", 12,
         headline="knn_acc"),
    Demo("vit-vs-cnn", "vit_vs_cnn", "trends.vit_vs_cnn.train",
         "Vision Transformer against a CNN on growing fractions of the data.", 5,
         headline="gap"),  # gap/<largest fraction>: the CNN's lead
]

app = typer.Typer(help="Run the deep-learning trends of recent years on your own machine.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _complete_overrides(demo: Demo):
    """Offer `group=option` for each config group of the demo (read from conf/, no composition needed)."""
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
                                              help="Analyse this finished sweep (e.g. outputs/lm/multirun/<stamp>) "
                                                   "instead of training: fit, plots, table, samples."),
    ) -> None:
        if not demo.available:
            _fail(f"`trends {demo.command}` is not built yet (see issue #{demo.issue}); try `trends lm`.")
        if resume is not None and multirun:
            _fail("--resume continues a run or a whole sweep from its folder; drop -m")
        if source is not None:
            if not demo.sweep:
                _fail(f"--from is an option of `trends scaling`, not of `trends {demo.command}`")
            raise typer.Exit(_analyse(demo, source, list(overrides or []), debug=debug))
        overrides = list(overrides or [])
        if demo.teacher and resume is None and not cfg:
            overrides = _with_teacher(demo, overrides, smoke=smoke, debug=debug)
        # A command that is a sweep runs as one, except under torchrun: there its processes train one job together
        # (the config's own values, e.g. one distill student), since a sweep cannot share one process group.
        whole_sweep = demo.sweep and bridge.torchrun_rank() is None
        code = _launch(demo, overrides, epochs=epochs, smoke=smoke, multirun=multirun or whole_sweep,
                       print_cfg=cfg, resume=resume, debug=debug)
        raise typer.Exit(code)

    app.command(name=demo.command, help=demo.help)(command)


def _launch(demo: Demo, overrides: list[str], *, debug: bool, **options) -> int:
    """Run through Hydra; map every way it can end to an exit code and at most two lines of explanation."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from trends.errors import Diverged, RunInterrupted, UserError
    from trends.ranks import Dist
    from trends.records.search import TrialFailed

    show_traceback = debug or os.environ.get("HYDRA_FULL_ERROR") == "1"
    rank = bridge.torchrun_rank()

    def say(text: str) -> None:  # under torchrun every rank has the same story: rank 0 tells it
        if not rank:
            typer.echo(text, err=True)

    run_dir = None
    try:
        argv, run_dir = bridge.hydra_argv(demo, overrides, **options)
        bridge.run_hydra(demo, argv, quiet=not show_traceback)
        failed = bridge.failed_sweep_analysis(run_dir) if demo.sweep else None
        if failed:
            say(f"error: {failed}")
            return 1
        return 0
    except (RunInterrupted, KeyboardInterrupt):
        again = f"trends {demo.command}" if rank is None else \
            f"torchrun --standalone --nproc-per-node={Dist.from_env().world} -m trends {demo.command}"
        search = bridge.search_resume_hint(run_dir) if run_dir else None
        say(f"interrupted; {search}" if search else
            f"interrupted; continue with: {again} --resume {run_dir}" if run_dir else "interrupted")
        return 130
    except Exception as err:
        if not options["resume"]:
            bridge.discard_unused(run_dir)
        if show_traceback:
            raise
        if isinstance(err, UserError):
            say(f"error: {err}")
            return 2
        if isinstance(err, (HydraException, OmegaConfBaseException)):
            say(f"error: {_hydra_message(err)}")
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
        typer.echo(f"error: {type(err).__name__}: {err}\n(run folder: {run_dir}; add --debug for the traceback)",
                   err=True)
        return 1


def _with_teacher(demo: Demo, overrides: list[str], *, smoke: bool, debug: bool) -> list[str]:
    """bridge.with_teacher, with a teacher trained through this CLI (progress, messages) where one is needed."""
    from trends.errors import UserError

    def train(command: str, teacher_overrides: list[str]) -> None:
        code = _launch(demo_named(command), teacher_overrides, epochs=None, smoke=False, multirun=False,
                       print_cfg=False, resume=None, debug=debug)
        if code:
            raise typer.Exit(code)

    try:
        return bridge.with_teacher(demo, overrides, smoke=smoke, train=train, say=lambda t: typer.echo(t, err=True))
    except UserError as err:
        if bridge.torchrun_rank():
            raise typer.Exit(2)  # rank 0 says why
        _fail(str(err))


def demo_named(command: str) -> Demo:
    return next(d for d in DEMOS if d.command == command)


def _analyse(demo: Demo, sweep_dir: Path, overrides: list[str], debug: bool) -> int:
    """`trends scaling --from SWEEP [scaling.…=…]`: the analysis alone, with the demo's settings (and overrides)."""
    from trends.errors import UserError

    try:
        settings = bridge.compose_config(demo, overrides).scaling
        from trends.scaling.analysis import analyse

        analyse(sweep_dir, settings)
        return 0
    except UserError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        return 2


def _hydra_message(err: Exception) -> str:
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


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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
    from trends.errors import UserError

    try:
        from trends.text.sample import sample_from_run

        text = sample_from_run(run_dir, prompt=prompt, tokens=tokens, temperature=temperature, top_k=top_k,
                               seed=seed, device=device)
    except UserError as err:
        _fail(str(err))
    typer.echo(text)


@app.command()
def report(
    paths: List[Path] = typer.Argument(..., help="A run or sweep folder; several run folders: a comparison."),
    out: Optional[Path] = typer.Option(None, "-o", "--output",
                                       help="Where to write (default: FOLDER/report.html; for several: compare.html)."),
) -> None:
    """One self-contained HTML page of a run, a sweep (mean ± std over seeds), or runs side by side."""
    from trends.errors import UserError
    from trends.records.report import write_report

    try:
        written = write_report(paths, out)
    except UserError as err:
        _fail(str(err))
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

    mode = "smoke" if smoke else "quick" if quick else "full"
    folder = bridge.outputs_root() / ("tour" if mode == "full" else f"tour-{mode}")
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

        print_runs(root or bridge.outputs_root(), limit)


@runs_app.command("show")
def runs_show(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
    """Everything a run recorded: summary, config, files."""
    from trends.cli.runs import show_run

    try:
        show_run(run_dir)
    except FileNotFoundError as err:
        _fail(str(err))


@runs_app.command("compare")
def runs_compare(run_dirs: List[Path] = typer.Argument(..., help="Two or more run folders.")) -> None:
    """The runs side by side in the terminal: headlines, the config keys that differ, every metric."""
    from trends.cli.runs import compare_runs

    if len(run_dirs) < 2:
        _fail("compare needs two or more run folders")
    try:
        compare_runs(run_dirs)
    except FileNotFoundError as err:
        _fail(str(err))


def main() -> None:
    app(prog_name="trends")


if __name__ == "__main__":
    sys.exit(main())

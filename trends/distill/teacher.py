"""The teacher: a finished char-GPT run (`trends lm`, or a rung of `trends scaling`) read back from its folder — the
config it was trained with, its vocabulary and its weights, frozen."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trends.errors import UserError
from trends.records import layout
from trends.text.model import GPT
from trends.text.sample import load_gpt_run

TEACHER_COMMANDS = ("lm", "scaling")  # the demos whose runs are one char-GPT with a vocabulary in the checkpoint


@dataclass
class Teacher:
    run_dir: Path
    config: DictConfig  # the teacher run's composed config (its data, model and budget)
    vocab: list[str]
    model: GPT  # frozen, in eval mode

    @property
    def n_layer(self) -> int:
        return self.model.cfg.n_layer


def check_teacher(run_dir: Path | str | None) -> Path:
    """The folder of a finished char-GPT run, or a one-line UserError saying what it is instead."""
    if run_dir is None:
        raise UserError("teacher= must name a finished `trends lm` run, e.g. teacher=outputs/lm/<run>")
    run_dir = Path(run_dir).expanduser()
    fix = "pass the folder of a finished `trends lm` run, e.g. teacher=outputs/lm/<run>"
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise UserError(f"teacher={run_dir} is not a run folder; {fix}")
    summary = layout.read_summary(run_dir)
    if summary.get("command") not in TEACHER_COMMANDS:
        raise UserError(f"teacher={run_dir} is a `trends {summary.get('command', '?')}` run, not a char-GPT; {fix}")
    if summary.get("status") != "completed":
        raise UserError(f"teacher={run_dir} has not finished (status: {summary.get('status', 'unknown')}); "
                        f"continue it with `trends lm --resume {run_dir}` or {fix}")
    if not layout.checkpoint_of(run_dir).is_file():
        raise UserError(f"teacher={run_dir} has no checkpoint ({layout.CHECKPOINT}); {fix}")
    return run_dir


def load_teacher(run_dir: Path | str | None) -> Teacher:
    run_dir = check_teacher(run_dir)
    model, vocab = load_gpt_run(run_dir)
    model.requires_grad_(False)
    return Teacher(run_dir, OmegaConf.load(run_dir / ".hydra" / "config.yaml"), vocab, model)

"""`trends sample RUN`: text from a trained `trends lm` run's checkpoint; how fast a model generates it."""
from __future__ import annotations

import statistics
from pathlib import Path

import torch

from trends.clock import Stopwatch
from trends.core.checkpoint import load_checkpoint
from trends.core.device import resolve_device, synchronize
from trends.errors import UserError
from trends.records import layout
from trends.text.data import Corpus
from trends.text.model import GPT, GPTConfig

CHAR_GPT_COMMANDS = ("lm", "scaling", "distill")  # the demos whose runs (or jobs) train one char-GPT
USE = "pass a `trends lm` run (or a job of a `trends scaling` or `trends distill` sweep)"


def load_gpt_run(run_dir: Path, device: torch.device | str = "cpu") -> tuple[GPT, list[str]]:
    """The trained GPT of a run folder (in eval mode, on `device`) and its vocabulary, from its checkpoint. A
    checkpoint of another kind (another demo's, another version's) is a UserError that says what it lacks: what a
    checkpoint holds is data, checked before it is used."""
    ckpt = load_checkpoint(layout.checkpoint_of(run_dir))
    if not isinstance(ckpt, dict) or "vocab" not in ckpt or "model_config" not in ckpt:
        raise UserError(f"{run_dir}'s checkpoint holds no char-GPT (no vocabulary or model config); {USE}")
    parts = ckpt.get("parts")
    weights = parts.get("model") if isinstance(parts, dict) else None
    if not isinstance(weights, dict):
        raise UserError(f"{run_dir}'s checkpoint holds no model weights (no parts.model); {USE}")
    try:
        model = GPT(GPTConfig(vocab_size=len(ckpt["vocab"]), **ckpt["model_config"]))
        model.load_state_dict(weights)
    except (TypeError, ValueError, RuntimeError) as err:  # keys this GPT does not have, tensors of other shapes
        reason = " ".join(str(err).split()) or type(err).__name__  # torch's message runs over many lines
        reason = reason if len(reason) <= 160 else reason[:159] + "…"
        raise UserError(f"{run_dir}'s checkpoint does not fit this version's char-GPT ({reason}); {USE}") from None
    return model.to(device).eval(), ckpt["vocab"]


def sample_from_run(run_dir: Path, prompt: str, tokens: int, temperature: float, top_k: int | None,
                    seed: int, device: str) -> str:
    run_dir = Path(run_dir)
    check_run(run_dir)
    dev = resolve_device(device)
    model, vocab = load_gpt_run(run_dir, dev)
    corpus = Corpus(train=None, val=None, vocab=vocab)  # for its encode and decode alone
    idx = corpus.encode(prompt or "\n")[None].to(dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    out = model.generate(idx, tokens, temperature=temperature, top_k=top_k, generator=generator)
    return corpus.decode(out[0].tolist())


def check_run(run_dir: Path) -> None:
    """A UserError unless `run_dir` is the folder of a run that trains a char-GPT, saying what it is instead: a
    missing path, a file, a sweep, a folder that is no run, another demo's run."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} {'is a file' if run_dir.exists() else 'does not exist'}; {USE}")
    if (run_dir / "multirun.yaml").is_file():
        jobs = layout.job_folders(run_dir)
        raise UserError(f"{run_dir} is a sweep; pass one of its jobs, e.g. {jobs[0] if jobs else run_dir / '0'}")
    if not (run_dir / ".hydra").is_dir():
        raise UserError(f"{run_dir} is not a run folder; {USE}")
    summary = layout.read_summary(run_dir)
    command = summary.get("command") if isinstance(summary, dict) else None
    if command is not None and command not in CHAR_GPT_COMMANDS:
        raise UserError(f"{run_dir} is a `trends {command}` run, which trains no char-GPT; {USE}")


@torch.no_grad()
def generation_speed(model: GPT, chars: int, cache: bool = True, repeats: int = 5) -> float:
    """Characters/s of `trends sample`'s decoding (one sequence, from a one-character prompt): the median of
    `repeats` timings after a warm-up."""
    return decoding_rates({"model": model}, chars, cache, repeats)["model"]


def decoding_rates(models: dict, chars: int, cache: bool = True, repeats: int = 7) -> dict:
    """Characters/s of each model's decoding, timed in turns — each round times every model once, so that the
    machine's drift (20–40 % within minutes on a laptop) touches them alike — and the median of `repeats` rounds,
    after a warm-up each (first-call allocations, kernel selection)."""
    prompts, was_training = {}, {}
    for key, model in models.items():
        device = next(model.parameters()).device
        prompts[key] = torch.zeros(1, 1, dtype=torch.long, device=device)
        was_training[key] = model.training
        model.eval()
        model.generate(prompts[key], 20, cache=cache)
    times: dict = {key: [] for key in models}
    for _ in range(repeats):
        for key, model in models.items():
            device = prompts[key].device
            synchronize(device)
            with Stopwatch() as watch:
                model.generate(prompts[key], chars, generator=torch.Generator(device=device).manual_seed(0),
                               cache=cache)
                synchronize(device)
            times[key].append(watch.seconds)
    for key, model in models.items():
        model.train(was_training[key])
    return {key: chars / statistics.median(seconds) for key, seconds in times.items()}

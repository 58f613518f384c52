"""`trends sample RUN`: text from a trained `trends lm` run's checkpoint; how fast a model generates it."""
from __future__ import annotations

from pathlib import Path

import torch

from trends.clock import Stopwatch
from trends.core.checkpoint import load_checkpoint
from trends.core.device import resolve_device, synchronize
from trends.errors import UserError
from trends.records import layout
from trends.text.data import Corpus
from trends.text.model import GPT, GPTConfig


def load_gpt_run(run_dir: Path, device: torch.device | str = "cpu") -> tuple[GPT, list[str]]:
    """The trained GPT of a run folder (in eval mode, on `device`) and its vocabulary, from its checkpoint."""
    ckpt = load_checkpoint(layout.checkpoint_of(run_dir))
    if "vocab" not in ckpt or "model_config" not in ckpt:
        raise UserError(f"{run_dir}'s checkpoint holds no char-GPT (no vocabulary or model config); "
                        "pass a `trends lm` run")
    model = GPT(GPTConfig(vocab_size=len(ckpt["vocab"]), **ckpt["model_config"]))
    model.load_state_dict(ckpt["parts"]["model"])
    return model.to(device).eval(), ckpt["vocab"]


def sample_from_run(run_dir: Path, prompt: str, tokens: int, temperature: float, top_k: int | None,
                    seed: int, device: str) -> str:
    run_dir = Path(run_dir)
    if not (run_dir / ".hydra").is_dir():
        raise UserError(f"{run_dir} is not a run folder; pass one under outputs/lm/")
    dev = resolve_device(device)
    model, vocab = load_gpt_run(run_dir, dev)
    corpus = Corpus(train=None, val=None, vocab=vocab)  # for its encode and decode alone
    idx = corpus.encode(prompt or "\n")[None].to(dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    out = model.generate(idx, tokens, temperature=temperature, top_k=top_k, generator=generator)
    return corpus.decode(out[0].tolist())


@torch.no_grad()
def generation_speed(model: GPT, chars: int, cache: bool = True, repeats: int = 3) -> float:
    """Characters/s of `trends sample`'s decoding (one sequence, from a one-character prompt): the best of `repeats`
    timings after a warm-up (the machine's other work only ever slows a run down)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    prompt = torch.zeros(1, 1, dtype=torch.long, device=device)
    model.generate(prompt, 20, cache=cache)  # warm-up: first-call allocations, kernel selection
    best = 0.0
    for _ in range(repeats):
        synchronize(device)
        with Stopwatch() as watch:
            model.generate(prompt, chars, generator=torch.Generator(device=device).manual_seed(0), cache=cache)
            synchronize(device)
        best = max(best, chars / watch.seconds)
    model.train(was_training)
    return best

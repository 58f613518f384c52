"""`trends sample RUN`: text from a trained `trends lm` run's checkpoint."""
from __future__ import annotations

from pathlib import Path

import torch

from trends.core import layout
from trends.core.checkpoint import load_checkpoint
from trends.core.device import resolve_device
from trends.core.errors import UserError
from trends.text.data import Corpus
from trends.text.model import GPT, GPTConfig


def sample_from_run(run_dir: Path, prompt: str, tokens: int, temperature: float, top_k: int | None,
                    seed: int, device: str) -> str:
    run_dir = Path(run_dir)
    if not (run_dir / ".hydra").is_dir():
        raise UserError(f"{run_dir} is not a run folder; pass one under outputs/lm/")
    ckpt = load_checkpoint(layout.checkpoint_of(run_dir))
    if "vocab" not in ckpt:
        raise UserError(f"{run_dir} is not a `trends lm` run")
    dev = resolve_device(device)
    vocab = ckpt["vocab"]
    model = GPT(GPTConfig(vocab_size=len(vocab), **ckpt["model_config"]))
    model.load_state_dict(ckpt["parts"]["model"])
    model.to(dev).eval()
    corpus = Corpus(train=torch.empty(0), val=torch.empty(0), vocab=vocab)
    idx = corpus.encode(prompt or "\n")[None].to(dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    out = model.generate(idx, tokens, temperature=temperature, top_k=top_k, generator=generator)
    return corpus.decode(out[0].tolist())

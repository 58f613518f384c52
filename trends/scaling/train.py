"""One rung of `trends scaling`: the shared char-GPT trainer at this job's size, for the ladder's token budget
(train.steps) or, in mode=isoflop, for the tokens its compute budget buys: tokens = C / (6·N)."""
from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from trends.errors import UserError
from trends.records.run import Run
from trends.text.model import GPT, GPTConfig
from trends.text.training import train_gpt


def main(cfg: DictConfig, run: Run) -> None:
    budget = cfg.scaling.budget
    if budget is None:
        train_gpt(cfg, run)
        return
    tokens_per_step = cfg.train.batch_size * cfg.train.grad_accum * cfg.model.block_size
    steps = round(budget / (6 * meta_model(cfg.model).non_embedding_params() * tokens_per_step))
    if steps < 10:
        raise UserError(f"scaling.budget={budget:g} buys {steps} steps of n_layer={cfg.model.n_layer}: "
                        "raise scaling.budgets or drop the largest scaling.depths")
    # The smallest budgets train the largest sizes for a few dozen steps: warm up over at most a tenth of them.
    train_gpt(cfg, run, steps=steps, warmup_steps=min(cfg.optim.warmup_steps, steps // 10))


def meta_model(model_cfg: DictConfig, vocab_size: int = 1) -> GPT:
    """The GPT of a model config on the meta device, to count its parameters and FLOPs without memory or time (the
    vocabulary changes neither N nor anything but the head's FLOPs)."""
    with torch.device("meta"):
        return GPT(GPTConfig(vocab_size=vocab_size, **OmegaConf.to_container(model_cfg, resolve=True)))

"""`trends lm`: train the character-level GPT, estimate losses, checkpoint, plot, sample.

Reads top-down: setup → (resume) → the loop → the end of the run.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time

import torch
from omegaconf import DictConfig, OmegaConf

from trends.core import plots
from trends.core.checkpoint import load_checkpoint, load_state_dicts, save_checkpoint, state_dicts
from trends.core.device import autocast, describe, measure_peak_flops, resolve_device
from trends.core.distributed import (Dist, any_rank, gather_objects, init_distributed, mean_across_ranks, rank_entry,
                                     shutdown, sum_across_ranks)
from trends.core.errors import Diverged, RunInterrupted, UserError
from trends.core.progress import Progress
from trends.core.run import Run
from trends.core.seed import capture_rng, restore_rng, seed_everything
from trends.lm.data import Corpus, load_corpus, random_windows
from trends.lm.model import GPT, GPTConfig

log = logging.getLogger("trends.lm")


def run(cfg: DictConfig, run: Run) -> None:
    dist, device = init_distributed(resolve_device(cfg.device))
    seed_everything(cfg.seed + dist.rank, cfg.deterministic)  # DDP copies rank 0's initial weights to all ranks
    t = cfg.train
    corpus = load_corpus(cfg.data, cfg.model.block_size)
    model = GPT(GPTConfig(vocab_size=len(corpus.vocab), **OmegaConf.to_container(cfg.model))).to(device)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  betas=tuple(cfg.optim.betas), fused=device.type == "cuda")
    share = dist.per_rank_batch(t.batch_size)  # train.batch_size is global: each rank draws its share of windows
    tokens_per_step = t.batch_size * cfg.model.block_size * t.grad_accum
    total_steps = _total_steps(t, len(corpus.train), tokens_per_step)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(cfg.optim, total_steps))
    batches = torch.Generator().manual_seed(cfg.seed + dist.rank)  # training windows, saved for resume
    state = {"step": 0, "best_val_loss": math.inf}

    if cfg.resume:
        ckpt = load_checkpoint(run.checkpoint_path)
        load_state_dicts(ckpt, model=model, optimizer=optimizer, scheduler=scheduler)
        batches.set_state(rank_entry(ckpt["batches_rng"], dist))
        restore_rng(rank_entry(ckpt["rng"], dist))
        state = {"step": ckpt["step"], "best_val_loss": ckpt["best_val_loss"]}
        run.rewind(ckpt["step"], ckpt["elapsed"])
        log.info("resumed at step %d of %d", state["step"], total_steps)

    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.active else model
    forward = torch.compile(ddp) if t.compile and device.type == "cuda" else ddp
    peak = cfg.peak_flops or measure_peak_flops(device)
    flops_per_step = model.flops_per_token() * tokens_per_step
    run.update(params=model.num_params(), device=describe(device), total_steps=total_steps,
               tokens_per_step=tokens_per_step, peak_flops=peak, vocab_size=len(corpus.vocab),
               train_chars=len(corpus.train), headline="best_val_loss")
    log.info("GPT %.2fM params on %s, %d steps of %d tokens (%.2f epochs)", model.num_params() / 1e6,
             describe(device), total_steps, tokens_per_step, total_steps * tokens_per_step / len(corpus.train))

    def checkpoint() -> None:
        rank_states = gather_objects((batches.get_state(), capture_rng()))  # every rank's own RNG streams
        if not run.is_main:
            return
        save_checkpoint(run.checkpoint_path, {
            **state_dicts(model=model, optimizer=optimizer, scheduler=scheduler),
            "step": state["step"], "best_val_loss": state["best_val_loss"], "elapsed": run.elapsed,
            "batches_rng": [b for b, _ in rank_states], "rng": [r for _, r in rank_states],
            "model_config": OmegaConf.to_container(cfg.model), "vocab": corpus.vocab})

    train_time, train_tokens, recent = 0.0, 0, []
    with Progress(total_steps, "lm", completed=state["step"], unit="tok") as progress:
        while state["step"] < total_steps:
            tic = time.perf_counter()
            model.train()
            for micro in range(t.grad_accum):
                x, y = random_windows(corpus.train, share, cfg.model.block_size, batches, device)
                last = micro == t.grad_accum - 1
                with autocast(device, t.amp), (contextlib.nullcontext() if last or not dist.active else ddp.no_sync()):
                    _, loss = forward(x, y)
                    (loss / t.grad_accum).backward()  # gradients are all-reduced on the last micro-batch only
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = mean_across_ranks(loss.item(), device)  # a sync point, so the timing is honest on GPUs
            state["step"] += 1
            step = state["step"]
            if not math.isfinite(loss_value):
                raise Diverged(step, loss_value)
            train_time += time.perf_counter() - tic
            train_tokens += tokens_per_step
            recent.append(loss_value)
            progress.advance(rate=train_tokens / train_time)

            epoch = step * tokens_per_step / len(corpus.train)
            if step % t.log_every == 0 or step == total_steps:
                tokens_per_s = train_tokens / train_time
                run.log(step, "step", epoch=round(epoch, 4), loss=sum(recent) / len(recent),
                        lr=scheduler.get_last_lr()[0], tokens_per_s=round(tokens_per_s),
                        mfu=round(flops_per_step / tokens_per_step * tokens_per_s / peak, 4))
                recent.clear()
            if step % t.eval_every == 0 or step == total_steps:
                losses = estimate_losses(model, corpus, t.eval_batches, t.batch_size, device, t.amp, dist)
                state["best_val_loss"] = min(state["best_val_loss"], losses["val"])
                for split, value in losses.items():
                    run.log(step, split, epoch=round(epoch, 4), loss=value, bpc=value / math.log(2))
                progress.note(f"step {step}: train {losses['train']:.3f}  val {losses['val']:.3f}  "
                              f"best {state['best_val_loss']:.3f}")
                checkpoint()
            if any_rank(run.stop_requested, device):
                checkpoint()
                raise RunInterrupted(step)

    if run.is_main:
        finish(run, model, corpus, cfg, device, state, train_tokens, train_time, flops_per_step / tokens_per_step,
               peak)
    shutdown()


def _total_steps(t: DictConfig, train_chars: int, tokens_per_step: int) -> int:
    if t.steps is not None:
        return int(t.steps)
    if t.epochs is None or t.epochs <= 0:
        raise UserError("set train.epochs (passes over the text) or train.steps to a positive number")
    return max(1, math.ceil(t.epochs * train_chars / tokens_per_step))


def _warmup_cosine(optim: DictConfig, total_steps: int):
    """LR multiplier: linear warmup, then cosine from lr down to min_lr at the last step."""
    floor = optim.min_lr / optim.lr

    def factor(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        progress = (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def estimate_losses(model: GPT, corpus: Corpus, n_batches: int, batch_size: int, device, amp: bool,
                    dist: Dist = Dist()) -> dict:
    """Mean loss over the same `n_batches` random windows of each split every time (its own RNG: the
    training order is untouched, so a resumed run sees exactly the batches an uninterrupted one would).
    Under torchrun every rank draws every batch's windows but evaluates only every world-th batch."""
    model.eval()
    out = {}
    for split, ids in (("train", corpus.train), ("val", corpus.val)):
        windows = torch.Generator().manual_seed(1234)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch in range(n_batches):
            x, y = random_windows(ids, batch_size, model.cfg.block_size, windows, device)
            if batch % dist.world == dist.rank:
                with autocast(device, amp):
                    total += model(x, y)[1].double()
        out[split] = sum_across_ranks(total).item() / n_batches
    model.train()
    return out


def finish(run: Run, model: GPT, corpus: Corpus, cfg: DictConfig, device, state: dict, tokens: int,
           seconds: float, flops_per_token: float, peak: float) -> None:
    """Samples, plots and the summary's metrics."""
    val = run.history("val")
    train = run.history("train")
    tokens_per_s = tokens / seconds if seconds else 0.0
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    prompt = corpus.encode("\n")[None].to(device)
    model.eval()
    text = corpus.decode(model.generate(prompt, cfg.train.sample_tokens, cfg.train.temperature,
                                        generator=generator)[0].tolist())
    (run.dir / "samples.txt").write_text(text)
    log.info("sample:\n%s", text)
    plots.learning_curves(run.plots_dir / "loss.png", [r for r in run.history() if r["split"] != "step"],
                          "loss", title=f"char-GPT ({model.num_params() / 1e6:.2f}M params)")
    plots.learning_curves(run.plots_dir / "step_loss.png", run.history("step"), "loss", title="training loss")
    run.update(metrics={
        "best_val_loss": round(state["best_val_loss"], 4),
        "final_val_loss": round(val[-1]["loss"], 4),
        "final_train_loss": round(train[-1]["loss"], 4),
        "best_val_bpc": round(state["best_val_loss"] / math.log(2), 4),
        "tokens_per_s": round(tokens_per_s),
        "mfu": round(flops_per_token * tokens_per_s / peak, 4),
    })
    log.info("best val loss %.4f (%.3f bits/char), %.0f tokens/s", state["best_val_loss"],
             state["best_val_loss"] / math.log(2), tokens_per_s)

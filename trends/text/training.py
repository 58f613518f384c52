"""Train the character-level GPT: estimate losses, checkpoint, plot, sample. One run of `trends lm`, one rung of
`trends scaling`'s ladder, and one student of `trends distill` (which brings its own Objective: a teacher).

Reads top-down: data → model → the step → evaluation → the end of the run; the shared scaffolding (resume,
checkpoints, the NaN guard, Ctrl-C) is trends.core.loop's, the measuring (tokens/s and MFU of training alone, the
mean loss between records, progress, the record cadence) its meter's.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from trends.core.device import describe, measure_peak_flops
from trends.core.distributed import Dist, sum_across_ranks
from trends.core.loop import Loop, TrainState
from trends.core.meter import Meter
from trends.core.precision import Precision
from trends.core.schedule import optimizer_step, total_steps
from trends.core.seed import seed_everything
from trends.records import plots
from trends.records.files import write_atomic
from trends.records.run import Run
from trends.text.data import Corpus, load_corpus, random_windows
from trends.text.findings import gpt_finding
from trends.text.model import GPT, GPTConfig
from trends.text.optim import build_optimizer, build_schedule

log = logging.getLogger("trends.text")


@dataclass
class LMState(TrainState):
    best_val_loss: float = math.inf


class Objective:
    """What a run optimises, and what it adds to the summary: next-character cross-entropy by default."""

    def prepare(self, model: GPT, corpus: Corpus, precision: Precision, dist: Dist) -> None:
        """Once, on every rank, after the model is built and seeded and before the optimizer sees it (a resumed
        run's weights replace whatever it set)."""

    def loss(self, forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch; `forward` is the model as trained (DDP-wrapped or compiled)."""
        return forward(x, y)[1]

    def report(self, model: GPT, corpus: Corpus, device: torch.device) -> dict:
        """Metrics for the summary at the end of the run, on rank 0 alone (so no collective operations)."""
        return {}


def train_gpt(cfg: DictConfig, run: Run, steps: int | None = None, warmup_steps: int | None = None,
              objective: Objective | None = None) -> None:
    """Train `cfg.model` on `cfg.data` for `steps` optimizer steps (default: the budget in cfg.train) with
    `warmup_steps` of warmup (default: cfg.optim.warmup_steps), minimising `objective`'s loss (default: the
    cross-entropy of the next character)."""
    objective = objective or Objective()
    loop = Loop(run, cfg.device, LMState(), cfg.train.amp)
    dist, device, precision, t = loop.dist, loop.device, loop.precision, cfg.train
    seed_everything(cfg.seed + dist.rank, cfg.deterministic)  # DDP copies rank 0's initial weights to all ranks
    corpus = load_corpus(cfg.data, cfg.model.block_size)
    model_config = OmegaConf.to_container(cfg.model, resolve=True)  # a size may follow a rule (trends scaling)
    model = GPT(GPTConfig(vocab_size=len(corpus.vocab), **model_config)).to(device)
    objective.prepare(model, corpus, precision, dist)
    optimizer = build_optimizer(model, cfg.optim, fused=device.type == "cuda")
    share = dist.per_rank_batch(t.batch_size)  # train.batch_size is global: each rank draws its share of windows
    tokens_per_step = t.batch_size * cfg.model.block_size * t.grad_accum
    steps = steps or total_steps(t, len(corpus.train) / tokens_per_step)
    warmup_steps = cfg.optim.warmup_steps if warmup_steps is None else warmup_steps
    scheduler = build_schedule(optimizer, warmup_steps, steps, floor=cfg.optim.min_lr / cfg.optim.lr)
    batches = torch.Generator().manual_seed(cfg.seed + dist.rank)  # this rank's training windows
    meter = loop.meter(steps, per_step=tokens_per_step, log_every=t.log_every)  # tokens/s of training alone
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"batches": batches, "meter": meter})
    loop.keep(model_config=model_config, vocab=corpus.vocab)  # for `trends sample`
    if cfg.resume:
        loop.resume()

    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.active else model
    forward = loop.compile(ddp, t.compile)
    peak = cfg.peak_flops or measure_peak_flops(device, precision.dtype)
    flops_per_token = model.flops_per_token()
    run.update(params=model.num_params(), non_embedding_params=model.non_embedding_params(), lr=cfg.optim.lr,
               flops_per_token=flops_per_token, device=describe(device), total_steps=steps,
               tokens_per_step=tokens_per_step, peak_flops=peak, vocab_size=len(corpus.vocab),
               train_chars=len(corpus.train), headline="best_val_loss")
    log.info("GPT %.2fM params on %s, %d steps of %d tokens (%.2f epochs)", model.num_params() / 1e6,
             describe(device), steps, tokens_per_step, steps * tokens_per_step / len(corpus.train))

    state = loop.state
    with loop.progress(steps, unit="tok") as progress:
        for step in meter.steps():
            model.train()
            for micro in range(t.grad_accum):
                x, y = random_windows(corpus.train, share, cfg.model.block_size, batches, device)
                last = micro == t.grad_accum - 1
                with precision.autocast(), (contextlib.nullcontext() if last or not dist.active else ddp.no_sync()):
                    loss = objective.loss(forward, x, y)
                    (loss / t.grad_accum).backward()  # gradients are all-reduced on the last micro-batch only
            optimizer_step(optimizer, scheduler, model.parameters(), cfg.optim.grad_clip)
            loss_value = meter.trained(loss)

            epoch = round(step * tokens_per_step / len(corpus.train), 4)
            if meter.recording:
                run.log(step, "step", epoch=epoch, **meter.means, lr=scheduler.get_last_lr()[0],
                        tokens_per_s=round(meter.rate), mfu=round(flops_per_token * meter.rate / peak, 4))
            if meter.due(t.eval_every):
                losses = estimate_losses(model, corpus, t.eval_batches, t.batch_size, precision, dist)
                state.best_val_loss = min(state.best_val_loss, losses["val"])
                for split, value in losses.items():
                    run.log(step, split, epoch=epoch, loss=value, bpc=value / math.log(2))
                progress.note(f"step {step}: train {losses['train']:.3f}  val {losses['val']:.3f}  "
                              f"best {state.best_val_loss:.3f}  (last batch {loss_value:.3f})")
                loop.checkpoint()

    loop.finish(lambda: finish(run, model, corpus, cfg, device, state, meter, flops_per_token, peak, objective))


@torch.no_grad()
def estimate_losses(model: GPT, corpus: Corpus, n_batches: int, batch_size: int, precision: Precision,
                    dist: Dist = Dist()) -> dict:
    """Mean loss over the same `n_batches` random windows of each split every time (its own RNG: the
    training order is untouched, so a resumed run sees exactly the batches an uninterrupted one would).
    Under torchrun every rank draws every batch's windows but evaluates only every world-th batch."""
    model.eval()
    device, out = precision.device, {}
    for split, ids in (("train", corpus.train), ("val", corpus.val)):
        windows = torch.Generator().manual_seed(1234)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch in range(n_batches):
            x, y = random_windows(ids, batch_size, model.cfg.block_size, windows, device)
            if batch % dist.world == dist.rank:
                with precision.autocast():
                    total += model(x, y)[1].double()
        out[split] = sum_across_ranks(total).item() / n_batches
    model.train()
    return out


def finish(run: Run, model: GPT, corpus: Corpus, cfg: DictConfig, device, state: LMState, meter: Meter,
           flops_per_token: float, peak: float, objective: Objective) -> None:
    """Samples, plots and the summary's metrics."""
    val = run.history("val")
    train = run.history("train")
    tokens_per_s = meter.rate
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    prompt = corpus.encode("\n")[None].to(device)
    model.eval()
    text = corpus.decode(model.generate(prompt, cfg.train.sample_tokens, cfg.train.temperature,
                                        generator=generator)[0].tolist())
    write_atomic(run.dir / "samples.txt", text)
    log.info("sample:\n%s", text)
    plots.learning_curves(run.plots_dir / "loss.png", [r for r in run.history() if r["split"] != "step"],
                          "loss", title=f"char-GPT ({model.num_params() / 1e6:.2f}M params)")
    plots.learning_curves(run.plots_dir / "step_loss.png", run.history("step"), "loss", title="training loss")
    run.update(metrics={
        "best_val_loss": round(state.best_val_loss, 4),
        "final_val_loss": round(val[-1]["loss"], 4),
        "final_train_loss": round(train[-1]["loss"], 4),
        "best_val_bpc": round(state.best_val_loss / math.log(2), 4),
        "tokens_per_s": round(tokens_per_s),
        "train_tokens": meter.items,
        "mfu": round(flops_per_token * tokens_per_s / peak, 4),
        **objective.report(model, corpus, device),
    })
    run.update(finding=gpt_finding(run.summary))
    log.info("best val loss %.4f (%.3f bits/char), %.0f tokens/s", state.best_val_loss,
             state.best_val_loss / math.log(2), tokens_per_s)

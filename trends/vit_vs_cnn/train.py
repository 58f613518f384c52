"""`trends vit-vs-cnn`: train each contender on nested, class-balanced fractions of the training set and measure
test accuracy on the full test set; plot accuracy against the number of training images.

The budget per (model, fraction) cell is fixed: `train.steps` optimisation steps of `train.batch_size` images
(the same compute in every cell, so only the number of distinct images changes along the x-axis), or, when
`train.epochs` is set, that many passes over the cell's own subset.

Under torchrun `train.batch_size` stays the global batch: each rank trains on its share of every batch (DDP
averages the gradients) and evaluates its share of the test set (the counts are summed).

Reads top-down: setup → the grid of cells → one cell (loop, evaluation) → the end of the run.
"""
from __future__ import annotations

import logging
import math
import time
import zlib

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig

from trends.core.checkpoint import load_checkpoint, load_state_dicts, save_checkpoint, state_dicts
from trends.core.device import autocast, describe, measure_peak_flops, resolve_device
from trends.core.distributed import (Dist, any_rank, broadcast_buffers, data_parallel, gather_objects,
                                     init_distributed, mean_across_ranks, rank_entry, shutdown, sum_across_ranks)
from trends.core.errors import Diverged, RunInterrupted, UserError
from trends.core.progress import Progress
from trends.core.run import Run
from trends.core.seed import capture_rng, restore_rng, seed_everything
from trends.vision.augment import random_crop_flip
from trends.vision.data import ImageSet, load_image_sets
from trends.vision.subsets import nested_stratified_subsets
from trends.vit_vs_cnn import report
from trends.vit_vs_cnn.models import build_model, flops_per_image, num_params

log = logging.getLogger("trends.vit_vs_cnn")


def run(cfg: DictConfig, run: Run) -> None:
    dist, device = init_distributed(resolve_device(cfg.device))
    seed_everything(cfg.seed, cfg.deterministic)
    names, fractions = _check_grid(cfg)
    dist.per_rank_batch(cfg.train.batch_size)  # check it before any work
    train_set, test_set = load_image_sets(cfg.data)
    subsets = nested_stratified_subsets(train_set.labels, fractions, seed=cfg.data.subset_seed)
    stats = [s.view(1, 3, 1, 1).to(device) for s in channel_stats(train_set.images)]
    train_set, test_set = train_set.to(device), test_set.to(device)  # once: batches are cut and augmented there
    image_size, num_classes = train_set.images.shape[-1], len(train_set.classes)
    peak = cfg.peak_flops or measure_peak_flops(device)

    cells = [(name, f) for f in fractions for name in names]  # fraction-major: partial grids already compare models
    steps = {(name, f): _cell_steps(cfg.train, len(subsets[f])) for name, f in cells}
    state = {"global_step": 0, "results": {}, "cell": None}
    if cfg.resume:
        ckpt = load_checkpoint(run.checkpoint_path)
        state = {k: ckpt[k] for k in state}
        run.rewind(ckpt["global_step"], ckpt["elapsed"])
        log.info("resumed: %d of %d cells done", len(state["results"]), len(cells))

    contenders = {}
    for name in names:
        model = build_model(name, cfg.model[name], image_size, num_classes)
        contenders[name] = {"params": num_params(model), "flops_per_image": flops_per_image(model, image_size)}
        log.info("%-7s %8.3fM params  %8.2f MFLOPs/image (forward)", name, contenders[name]["params"] / 1e6,
                 contenders[name]["flops_per_image"] / 1e6)
    run.update(device=describe(device), peak_flops=peak, models=contenders, classes=train_set.classes,
               train_images={report.fmt(f): len(subsets[f]) for f in fractions}, test_images=len(test_set),
               budget=_budget_text(cfg.train), headline=report.headline(names, fractions))

    def checkpoint(cell: dict | None) -> None:
        if run.is_main:
            save_checkpoint(run.checkpoint_path, {**state, "cell": cell, "elapsed": run.elapsed})

    done_steps = sum(steps[c] for c in cells if report.key(*c) in state["results"])
    done_steps += state["cell"]["step"] if state["cell"] else 0
    with Progress(sum(steps.values()), "vit-vs-cnn", completed=done_steps) as progress:
        for name, fraction in cells:
            key = report.key(name, fraction)
            if key in state["results"]:
                continue
            resume_from = state["cell"] if state["cell"] and state["cell"]["key"] == key else None
            result = train_cell(cfg, run, dist, device, name, fraction, train_set.subset(subsets[fraction].to(device)),
                                test_set, stats, steps[(name, fraction)], state, checkpoint, progress, resume_from)
            result["mfu"] = 3 * contenders[name]["flops_per_image"] * result["images_per_s"] / peak
            state["results"][key] = result
            state["cell"] = None
            checkpoint(None)
            progress.note(f"{key}: test acc {result['acc']:.2%} ({result['images']} training images)")

    if run.is_main:
        report.finish(run, cfg, names, fractions, state["results"], contenders)
    shutdown()


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (3,) of uint8 images (N, 3, H, W) scaled to [0, 1], summed in chunks so a big set
    is never copied to float at once. Taken from the training images (labels unused), so any ImageFolder works."""
    total, total_sq = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].double() / 255
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = images.numel() / 3
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def _check_grid(cfg: DictConfig) -> tuple[list[str], list[float]]:
    names = list(cfg.models) if isinstance(cfg.models, ListConfig) else [cfg.models]
    unknown = [n for n in names if n not in cfg.model]
    if unknown or not names or len(set(names)) != len(names):
        raise UserError(f"models={names}: give distinct names from {list(cfg.model)}, e.g. models=[resnet,vit]")
    fractions = cfg.data.fractions
    fractions = list(fractions) if isinstance(fractions, ListConfig) else [fractions]
    if not fractions or not all(isinstance(f, (int, float)) and 0 < f <= 1 for f in fractions):
        raise UserError(f"data.fractions={fractions}: give fractions of the training set in (0, 1], "
                        "e.g. data.fractions=[0.1,0.3,1.0]")
    return names, sorted({float(f) for f in fractions})


def _cell_steps(t: DictConfig, n_images: int) -> int:
    if t.epochs is not None:
        if t.epochs <= 0:
            raise UserError(f"train.epochs={t.epochs} must be positive (or null to use train.steps)")
        return max(1, math.ceil(t.epochs * n_images / t.batch_size))
    if t.steps is None or t.steps <= 0:
        raise UserError("set train.steps (optimisation steps per cell) or train.epochs to a positive number")
    return int(t.steps)


def _budget_text(t: DictConfig) -> str:
    if t.epochs is not None:
        return f"{t.epochs:g} epochs over each cell's subset, batch {t.batch_size}"
    return f"{t.steps} steps of batch {t.batch_size} per cell ({t.steps * t.batch_size:,} images seen)"


def _cell_seed(seed: int, *parts) -> int:
    """A seed for one cell, the same whether the cell runs inside a grid or on its own."""
    return seed * 1_000_003 + zlib.crc32("/".join(map(str, parts)).encode())


class Batches:
    """Endless shuffled passes over n items; `indices(step)` is a pure function of (seed, step), so a resumed cell
    draws exactly the batches an uninterrupted one would, with no sampler state to save. Each pass's order is
    drawn on the CPU and moved to `device` once, so a step costs no host-to-device copy."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self._epoch, self._order = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            self._epoch = epoch
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
            self._order = order.to(self.device)
        return self._order

    def indices(self, step: int) -> torch.Tensor:
        start, parts = step * self.batch_size, []
        while sum(len(p) for p in parts) < self.batch_size:
            epoch, offset = divmod(start, self.n)
            part = self._permutation(epoch)[offset:offset + self.batch_size - sum(len(p) for p in parts)]
            parts.append(part)
            start += len(part)
        return torch.cat(parts)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay only weight matrices and conv kernels; biases, norms, position embeddings and the class token not."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.endswith(("pos", "cls"))]
    keep = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.endswith(("pos", "cls")))]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def warmup_cosine(warmup: float, total_steps: int):
    """LR multiplier: linear warmup over the first `warmup` fraction of steps, then cosine down to zero."""
    warmup_steps = max(1, round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(cfg: DictConfig, name: str, model: torch.nn.Module, total_steps: int, device: torch.device):
    o = cfg.optim
    if name not in o.lr or name not in o.weight_decay:
        raise UserError(f"optim.lr and optim.weight_decay need an entry for {name} (e.g. optim.lr.{name}=1e-3)")
    optimizer = torch.optim.AdamW(param_groups(model, o.weight_decay[name]), lr=o.lr[name], betas=tuple(o.betas),
                                  fused=device.type == "cuda")
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(o.warmup, total_steps))


def to_input(images: torch.Tensor, stats: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """uint8 (B, 3, H, W) → standardised float, with `stats` = [mean, std] of shape (1, 3, 1, 1) on the device;
    channels-last on CUDA, where cuDNN's fast convolutions want it."""
    x = (images.float() / 255 - stats[0]) / stats[1]
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def train_step(forward, optimizer, scheduler, images: torch.Tensor, labels: torch.Tensor, stats: list[torch.Tensor],
               cfg: DictConfig, device: torch.device) -> torch.Tensor:
    """One optimisation step on a uint8 batch: crop/flip it where it lies, forward under autocast, clip, step.
    Returns the loss as a device tensor (no sync here: the caller reads it every log_every steps)."""
    x = to_input(random_crop_flip(images, cfg.train.crop_padding), stats, device)
    with autocast(device, cfg.train.amp):
        loss = F.cross_entropy(forward(x).float(), labels, label_smoothing=cfg.optim.label_smoothing)
    loss.backward()
    if cfg.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(forward.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def train_cell(cfg: DictConfig, run: Run, dist: Dist, device: torch.device, name: str, fraction: float,
               data: ImageSet, test: ImageSet, stats: list[torch.Tensor], total_steps: int, state: dict, checkpoint,
               progress: Progress, resume_from: dict | None) -> dict:
    """Train a fresh `name` on `data` for `total_steps` steps, then test it on the full test set."""
    t = cfg.train
    key = report.key(name, fraction)
    seed = _cell_seed(cfg.seed, name, fraction)
    torch.manual_seed(seed)  # init, augmentation and dropout of this cell
    model = build_model(name, cfg.model[name], test.images.shape[-1], len(test.classes)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if dist.rank:
        torch.manual_seed(seed + dist.rank)  # DDP copies rank 0's weights; the other ranks augment their own way
    parallel = data_parallel(model, dist)
    share = dist.per_rank_batch(t.batch_size)
    optimizer, scheduler = make_optimizer(cfg, name, model, total_steps, device)
    # The data order depends on the fraction only: at one fraction every model sees the same batches.
    batches = Batches(len(data), t.batch_size, _cell_seed(cfg.seed, "batches", fraction), device)
    step, window_loss, window_steps = 0, torch.zeros((), device=device), 0  # the losses since the last record
    if resume_from is not None:
        load_state_dicts(resume_from, model=model, optimizer=optimizer, scheduler=scheduler)
        restore_rng(rank_entry(resume_from["rng"], dist))
        window_loss += rank_entry(resume_from["window_loss"], dist)
        step, window_steps = resume_from["step"], resume_from["window_steps"]
        log.info("%s: resumed at step %d of %d", key, step, total_steps)
    forward = torch.compile(parallel) if t.compile and device.type == "cuda" else parallel

    def cell_state() -> dict:
        ranks = gather_objects((capture_rng(), window_loss.item()))  # each rank's RNG and its part of the record
        return {"key": key, "step": step, **state_dicts(model=model, optimizer=optimizer, scheduler=scheduler),
                "rng": [rng for rng, _ in ranks],
                "window_loss": [loss for _, loss in ranks], "window_steps": window_steps}

    forward.train()
    window_start = time.perf_counter()
    timed_images, timed_seconds = 0, 0.0
    while step < total_steps:
        index = batches.indices(step)[dist.rank * share:(dist.rank + 1) * share]  # this rank's share
        window_loss += train_step(forward, optimizer, scheduler, data.images[index], data.labels[index], stats,
                                  cfg, device)
        step += 1
        window_steps += 1
        state["global_step"] += 1
        progress.advance()
        if step % t.log_every == 0 or step == total_steps:
            loss = mean_across_ranks(window_loss.item() / window_steps, device)  # a sync: honest timing on GPUs
            if not math.isfinite(loss):
                raise Diverged(state["global_step"], loss)
            seconds = time.perf_counter() - window_start
            if step > t.log_every or step == total_steps:  # the first window pays for compilation and warm-up
                timed_images, timed_seconds = timed_images + window_steps * t.batch_size, timed_seconds + seconds
            run.log(state["global_step"], "train", epoch=round(step * t.batch_size / len(data), 3), model=name,
                    fraction=fraction, cell_step=step, loss=round(loss, 4), lr=scheduler.get_last_lr()[0],
                    images_per_s=round(window_steps * t.batch_size / seconds, 1))
            window_loss.zero_()
            window_steps, window_start = 0, time.perf_counter()
        if t.eval_every and step % t.eval_every == 0 and step < total_steps:
            acc, loss = evaluate(model, dist, test, stats, t.eval_batch_size, device, t.amp)
            run.log(state["global_step"], "test", model=name, fraction=fraction, cell_step=step, acc=acc, loss=loss)
            window_start = time.perf_counter()  # evaluation is not training time
        stop = any_rank(run.stop_requested, device)
        if stop or (t.checkpoint_every and step % t.checkpoint_every == 0 and step < total_steps):
            checkpoint(cell_state())
            if stop:
                raise RunInterrupted(state["global_step"])
            window_start = time.perf_counter()  # nor is writing a checkpoint

    acc, loss = evaluate(model, dist, test, stats, t.eval_batch_size, device, t.amp)
    run.log(state["global_step"], "test", model=name, fraction=fraction, cell_step=step, acc=acc, loss=loss)
    return {"model": name, "fraction": fraction, "images": len(data), "steps": total_steps,
            "epochs": round(total_steps * t.batch_size / len(data), 2), "acc": acc, "test_loss": loss,
            "images_per_s": timed_images / timed_seconds if timed_seconds else 0.0}


@torch.no_grad()
def evaluate(model: torch.nn.Module, dist: Dist, test: ImageSet, stats: list[torch.Tensor], batch_size: int,
             device: torch.device, amp: bool) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) over the whole test set, unaugmented; each rank takes its share of the
    images with rank 0's BatchNorm statistics, and the counts are summed over the ranks."""
    was_training = model.training
    model.eval()
    broadcast_buffers(model)
    mine = dist.share(len(test))
    images, labels = test.images[mine], test.labels[mine]
    totals = torch.zeros(2, device=device)  # correct, summed loss
    for start in range(0, len(images), batch_size):
        with autocast(device, amp):
            logits = model(to_input(images[start:start + batch_size], stats, device)).float()
        batch_labels = labels[start:start + batch_size]
        totals[0] += (logits.argmax(dim=1) == batch_labels).sum()
        totals[1] += F.cross_entropy(logits, batch_labels, reduction="sum")
    model.train(was_training)
    correct, loss = sum_across_ranks(totals).tolist()
    return correct / len(test), loss / len(test)

"""`trends vit-vs-cnn`: train each contender on nested, class-balanced fractions of the training set and measure
test accuracy on the full test set; plot accuracy against the number of training images.

The budget per (model, fraction) cell is fixed: `train.steps` optimisation steps of `train.batch_size` images
(the same compute in every cell, so only the number of distinct images changes along the x-axis), or, when
`train.epochs` is set, that many passes over the cell's own subset (and at least `train.min_steps` steps).

Under torchrun `train.batch_size` stays the global batch: each rank trains on its share of every batch (DDP
averages the gradients) and evaluates its share of the test set (the counts are summed).

Reads top-down: setup → the grid of cells → one cell (the step, its loop, evaluation) → the end of the run; the
shared scaffolding (resume, checkpoints, the NaN guard, Ctrl-C) is trends.core.loop's, the measuring (images/s of
training alone, the mean loss between records, progress, the record cadence) a meter's per cell.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig

from trends.core.device import describe, measure_peak_flops
from trends.core.distributed import Dist, broadcast_buffers, data_parallel, sum_across_ranks
from trends.core.loop import Loop, TrainState
from trends.core.modules import num_params
from trends.core.precision import Precision
from trends.core.schedule import optimizer_step, total_steps, warmup_cosine
from trends.core.seed import derive_seed, seed_everything
from trends.errors import UserError
from trends.records.run import Run
from trends.vision.augment import random_crop_flip
from trends.vision.data import ImageSet, load_image_sets, skipped_files
from trends.vision.normalize import Normalize
from trends.vision.subsets import nested_stratified_subsets
from trends.vit_vs_cnn import report
from trends.vit_vs_cnn.models import build_model, flops_per_image

log = logging.getLogger("trends.vit_vs_cnn")


@dataclass
class GridState(TrainState):
    """`step` counts the steps of every cell so far (the x of metrics.jsonl); the cell in progress counts its own
    in its meter."""
    results: dict = field(default_factory=dict)  # "model/fraction" → the finished cell's result


def main(cfg: DictConfig, run: Run) -> None:
    loop = Loop(run, cfg.device, GridState(), cfg.train.amp)
    dist, device = loop.dist, loop.device
    seed_everything(cfg.seed, cfg.deterministic)
    names, fractions = _check_grid(cfg)
    dist.per_rank_batch(cfg.train.batch_size)  # check it before any work
    train_set, test_set = load_image_sets(cfg.data)
    subsets = nested_stratified_subsets(train_set.labels, fractions, seed=cfg.data.subset_seed)
    train_set, test_set = train_set.to(device), test_set.to(device)  # once: batches are cut and augmented there
    prep = Normalize.fit(train_set.images, channels_last=cfg.train.channels_last)
    image_size, num_classes = train_set.images.shape[-1], len(train_set.classes)
    peak = cfg.peak_flops or measure_peak_flops(device, loop.precision.dtype)

    cells = [(name, f) for f in fractions for name in names]  # fraction-major: partial grids already compare models
    steps = {(name, f): max(total_steps(cfg.train, len(subsets[f]) / cfg.train.batch_size, prefer="epochs"),
                            cfg.train.min_steps or 0) for name, f in cells}
    if cfg.resume:
        loop.resume()
        log.info("resumed: %d of %d cells done", len(loop.state.results), len(cells))

    contenders = {}
    for name in names:
        model = build_model(name, cfg.model[name], image_size, num_classes)
        contenders[name] = {"params": num_params(model), "flops_per_image": flops_per_image(model, image_size)}
        log.info("%-7s %8.3fM params  %8.2f MFLOPs/image (forward)", name, contenders[name]["params"] / 1e6,
                 contenders[name]["flops_per_image"] / 1e6)
    run.update(device=describe(device), peak_flops=peak, models=contenders, classes=train_set.classes,
               train_images={report.fmt(f): len(subsets[f]) for f in fractions}, test_images=len(test_set),
               budget=_budget_text(cfg.train), headline=report.headline(names, fractions),
               **skipped_files(train_set, test_set))

    state = loop.state
    with loop.progress(sum(steps.values()), unit="img") as progress:
        for name, fraction in cells:
            key = report.key(name, fraction)
            if key in state.results:
                continue
            result = train_cell(loop, cfg, name, fraction, train_set.subset(subsets[fraction].to(device)), test_set,
                                prep, steps[(name, fraction)])
            result["mfu"] = 3 * contenders[name]["flops_per_image"] * result["images_per_s"] / peak
            state.results[key] = result
            loop.track()  # between cells a checkpoint holds the results alone
            loop.checkpoint()
            progress.note(f"{key}: test acc {result['acc']:.2%} ({result['images']} training images)")

    loop.finish(lambda: report.finish(run, cfg, names, fractions, state.results, contenders))


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


def _budget_text(t: DictConfig) -> str:
    if t.epochs is not None:
        floor = f", at least {t.min_steps} steps" if t.min_steps else ""
        return f"{t.epochs:g} epochs over each cell's subset{floor}, batch {t.batch_size}"
    return f"{t.steps} steps of batch {t.batch_size} per cell ({t.steps * t.batch_size:,} images seen)"


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


def make_optimizer(cfg: DictConfig, name: str, model: torch.nn.Module, total: int, device: torch.device):
    """AdamW with `name`'s lr and weight decay; the lr warms up over the first `optim.warmup` fraction of the
    `total` steps, then follows a cosine down to zero."""
    o = cfg.optim
    if name not in o.lr or name not in o.weight_decay:
        raise UserError(f"optim.lr and optim.weight_decay need an entry for {name} (e.g. optim.lr.{name}=1e-3)")
    optimizer = torch.optim.AdamW(param_groups(model, o.weight_decay[name]), lr=o.lr[name], betas=tuple(o.betas),
                                  fused=device.type == "cuda")
    return optimizer, warmup_cosine(optimizer, max(1, round(o.warmup * total)), total)


def train_step(forward, optimizer, scheduler, images: torch.Tensor, labels: torch.Tensor, prep: Normalize,
               precision: Precision, cfg: DictConfig) -> torch.Tensor:
    """One optimisation step on a uint8 batch: crop/flip it where it lies, forward under autocast, clip, step.
    Returns the loss as a device tensor (no sync here: the caller reads it every log_every steps)."""
    x = prep.uint8(random_crop_flip(images, cfg.train.crop_padding))
    with precision.autocast():
        loss = F.cross_entropy(forward(x).float(), labels, label_smoothing=cfg.optim.label_smoothing)
    loss.backward()
    optimizer_step(optimizer, scheduler, forward.parameters(), cfg.optim.grad_clip)
    return loss.detach()


def train_cell(loop: Loop, cfg: DictConfig, name: str, fraction: float, data: ImageSet, test: ImageSet,
               prep: Normalize, total: int) -> dict:
    """Train a fresh `name` on `data` for `total` steps (the rest of them, in the cell a resumed run was stopped
    in), then test it on the full test set. Moves `loop.state.step` on; the cell's own steps are its meter's."""
    run, dist, device, t, state = loop.run, loop.dist, loop.device, cfg.train, loop.state
    key = report.key(name, fraction)
    seed = derive_seed(cfg.seed, name, fraction)  # the same whether the cell runs inside a grid or on its own
    torch.manual_seed(seed)  # init, augmentation and dropout of this cell
    model = build_model(name, cfg.model[name], test.images.shape[-1], len(test.classes)).to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dist.rank:
        torch.manual_seed(seed + dist.rank)  # DDP copies rank 0's weights; the other ranks augment their own way
    parallel = data_parallel(model, dist)
    optimizer, scheduler = make_optimizer(cfg, name, model, total, device)
    # The data order depends on the fraction only: at one fraction every model sees the same batches.
    batches = Batches(len(data), t.batch_size, derive_seed(cfg.seed, "batches", fraction), device)
    # The loss is read at records only (no sync per step: the GPU's queue stays full); the first record's window
    # pays for compilation and warm-up and stays out of the cell's images/s.
    meter = loop.meter(total, per_step=t.batch_size, log_every=t.log_every, warmup=t.log_every,
                       read_every_step=False)
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"meter": meter})
    if meter.step:
        log.info("%s: resumed at step %d of %d", key, meter.step, total)
    forward = loop.compile(parallel, t.compile)

    forward.train()
    for step in meter.steps():
        index = dist.mine(batches.indices(step - 1))  # this rank's share of the global batch
        meter.trained(train_step(forward, optimizer, scheduler, data.images[index], data.labels[index], prep,
                                 loop.precision, cfg))
        if meter.recording:
            run.log(state.step, "train", epoch=round(step * t.batch_size / len(data), 3), model=name,
                    fraction=fraction, cell_step=step, loss=round(meter.means["loss"], 4),
                    lr=scheduler.get_last_lr()[0], images_per_s=round(meter.window_rate, 1))
        if t.eval_every and step % t.eval_every == 0 and step < total:
            meter.pause()  # evaluation is not training time
            acc, loss = evaluate(model, dist, test, prep, t.eval_batch_size, loop.precision)
            run.log(state.step, "test", model=name, fraction=fraction, cell_step=step, acc=acc, loss=loss)
        if t.checkpoint_every and step % t.checkpoint_every == 0 and step < total:
            loop.checkpoint()

    acc, loss = evaluate(model, dist, test, prep, t.eval_batch_size, loop.precision)
    run.log(state.step, "test", model=name, fraction=fraction, cell_step=total, acc=acc, loss=loss)
    return {"model": name, "fraction": fraction, "images": len(data), "steps": total,
            "epochs": round(total * t.batch_size / len(data), 2), "acc": acc, "test_loss": loss,
            "images_per_s": meter.rate}


@torch.no_grad()
def evaluate(model: torch.nn.Module, dist: Dist, test: ImageSet, prep: Normalize, batch_size: int,
             precision: Precision) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) over the whole test set, unaugmented; each rank takes its share of the
    images with rank 0's BatchNorm statistics, and the counts are summed over the ranks."""
    was_training = model.training
    model.eval()
    broadcast_buffers(model)
    mine = dist.share(len(test))
    images, labels = test.images[mine], test.labels[mine]
    totals = torch.zeros(2, device=images.device)  # correct, summed loss
    for start in range(0, len(images), batch_size):
        with precision.autocast():
            logits = model(prep.uint8(images[start:start + batch_size])).float()
        batch_labels = labels[start:start + batch_size]
        totals[0] += (logits.argmax(dim=1) == batch_labels).sum()
        totals[1] += F.cross_entropy(logits, batch_labels, reduction="sum")
    model.train(was_training)
    correct, loss = sum_across_ranks(totals).tolist()
    return correct / len(test), loss / len(test)

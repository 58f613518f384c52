"""`trends contrastive`: SimCLR pretraining with a kNN monitor every epoch, then the honest comparisons.

Reads top-down: data → model → the step → the kNN monitor → the end of the run (linear probe, baselines, plots,
summary); the shared scaffolding (resume, checkpoints, the NaN guard, Ctrl-C, progress) is trends.core.loop's.
The whole dataset sits on the training device as uint8; each step draws a batch, makes two augmented views there
(trends.contrastive.augment) and takes one NT-Xent step on both.

Under torchrun `train.batch_size` stays the global batch: each rank embeds its share, the embeddings are gathered
so that every view still has 2·(batch_size - 1) negatives, and gradients flow back to the rank that made them.
The kNN monitor shards feature extraction over the ranks and gathers the features.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from trends.contrastive import plots as view_plots
from trends.contrastive.augment import two_views
from trends.contrastive.data import SimCLRData, load_data
from trends.contrastive.evaluate import linear_probe, supervised_reference
from trends.contrastive.loss import nt_xent
from trends.contrastive.models import SimCLR, build_encoder
from trends.contrastive.optim import build_optimizer
from trends.core import plots
from trends.core.device import autocast, describe
from trends.core.distributed import broadcast_buffers, data_parallel, gather_rows, gather_with_gradient
from trends.core.errors import UserError
from trends.core.loop import Loop, LossWindow, TrainState
from trends.core.modules import num_params
from trends.core.ranks import Dist
from trends.core.run import Run
from trends.core.schedule import warmup_cosine, whole_epochs
from trends.core.seed import derive_seed, seed_everything
from trends.vision.data import skipped_files
from trends.vision.knn import extract_features, knn_accuracy
from trends.vision.normalize import Normalize

log = logging.getLogger("trends.contrastive")


@dataclass
class SimCLRState(TrainState):
    random_init_knn: float | None = None  # the untrained encoder's kNN accuracy: what self-supervision has to beat
    train_time: float = 0.0  # seconds of training steps alone (no evaluation), for images/s
    eval_time: float = 0.0  # seconds of kNN monitoring


def main(cfg: DictConfig, run: Run) -> None:
    loop = Loop(run, cfg.device, SimCLRState())
    dist, device, t = loop.dist, loop.device, cfg.train
    seed_everything(cfg.seed + dist.rank, cfg.deterministic)  # the initial weights come from fresh_encoder
    if device.type == "cuda" and not cfg.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest kernels once
    epochs = whole_epochs(t.epochs)
    data = load_data(cfg.data).to(device)
    aug = OmegaConf.merge(cfg.aug, {"size": cfg.aug.size or data.pretrain.images.shape[-1]})
    prepare = Normalize.fit(data.pretrain.images, channels_last=t.channels_last)
    model = SimCLR(fresh_encoder(cfg, device), cfg.model.head_hidden, cfg.model.out_dim).to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    parallel = data_parallel(model, dist)  # `model` itself in one process
    share = dist.per_rank_batch(t.batch_size)
    optimizer = build_optimizer(cfg.optim, model, fused=device.type == "cuda")
    steps_per_epoch = len(data.pretrain) // t.batch_size  # full batches only: NT-Xent's negatives scale with it
    if steps_per_epoch == 0:
        raise UserError(f"train.batch_size={t.batch_size} is larger than the {len(data.pretrain)} training images; "
                        "lower it")
    steps = epochs * steps_per_epoch
    scheduler = warmup_cosine(optimizer, round(cfg.optim.warmup_epochs * steps_per_epoch), steps)
    views = torch.Generator(device=device).manual_seed(cfg.seed + dist.rank)  # this rank's augmentations
    window = LossWindow(device)
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"views": views, "loss": window})
    loop.keep(model_config=OmegaConf.to_container(cfg.model))
    if cfg.resume:
        loop.resume()

    forward = loop.compile(parallel, t.compile)
    amp = partial(autocast, device, t.amp)
    knn = partial(knn_eval, model, data, prepare, cfg.eval, amp, dist)
    run.update(params=num_params(model.encoder), head_params=num_params(model.head), device=describe(device),
               total_steps=steps, steps_per_epoch=steps_per_epoch, batch_size=t.batch_size,
               pretrain_images=len(data.pretrain), bank_images=len(data.bank), test_images=len(data.test),
               view_size=aug.size, headline="knn_acc", **skipped_files(data.pretrain, data.test))
    log.info("SimCLR: %s encoder (%.2fM params) on %s%s; %d pretraining images, %d epochs of %d steps × %d images",
             cfg.model.encoder, num_params(model.encoder) / 1e6, describe(device),
             f" × {dist.world} processes" if dist.active else "", len(data.pretrain), epochs, steps_per_epoch,
             t.batch_size)

    state = loop.state
    if state.random_init_knn is None:  # the untrained encoder: what self-supervision has to beat
        state.random_init_knn, _, seconds = knn()
        state.eval_time += seconds
        run.log(0, "knn", epoch=0, knn_acc=state.random_init_knn)
        log.info("random-init encoder: kNN accuracy %.4f", state.random_init_knn)

    final = None  # the last epoch's (kNN accuracy, test features)
    with loop.progress(steps, unit="img") as progress:
        while state.step < steps:
            epoch = state.step // steps_per_epoch
            order = epoch_order(len(data.pretrain), cfg.seed, epoch, device)
            parallel.train()
            for i in range(state.step % steps_per_epoch, steps_per_epoch):
                tic = time.perf_counter()
                mine = dist.mine(order[i * t.batch_size:(i + 1) * t.batch_size])
                first, second = two_views(data.pretrain.images[mine], aug, views)
                with amp():
                    z = forward(prepare(torch.cat([first, second])))
                z1, z2 = gather_with_gradient(z[:share]), gather_with_gradient(z[share:])  # the global batch
                loss = nt_xent(z1, z2, cfg.loss.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                state.step += 1
                window.add(loss)
                loss_value = loop.finite(loss, shared=True)  # NT-Xent over the gathered batch: one value on every rank
                state.train_time += time.perf_counter() - tic
                images_per_s = state.step * t.batch_size / state.train_time
                progress.advance(rate=images_per_s)
                step = state.step
                if step % t.log_every == 0 or step % steps_per_epoch == 0:
                    run.log(step, "train", epoch=round(step / steps_per_epoch, 4), loss=window.mean(),
                            lr=scheduler.get_last_lr()[0], images_per_s=round(images_per_s, 1))
                if step % steps_per_epoch:  # (an epoch's last step stops below, after its kNN point)
                    loop.stop_if_asked()

            done = epoch + 1
            if done % cfg.eval.knn_every == 0 or done == epochs:
                acc, test_features, seconds = knn()
                state.eval_time += seconds
                final = (acc, test_features) if done == epochs else None
                run.log(state.step, "knn", epoch=done, knn_acc=acc)
                progress.note(f"epoch {done}/{epochs}: loss {loss_value:.3f}  "
                              f"kNN {acc:.4f} (random init {state.random_init_knn:.4f})")
            loop.checkpoint()
            loop.stop_if_asked()

    if final is None:  # a run resumed after its last epoch
        acc, test_features, seconds = knn()
        state.eval_time += seconds
        final = acc, test_features
    loop.finish(lambda: finish(run, cfg, model, data, prepare, aug, state, amp, *final, device))


def fresh_encoder(cfg: DictConfig, device) -> nn.Module:
    """The encoder as initialised by `seed`: the starting point of training, and the random-init baseline."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_encoder(cfg.model).to(device)


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """A permutation per (seed, epoch): a resumed run walks exactly the batches an uninterrupted one would."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    return torch.randperm(n, generator=generator).to(device)


def knn_eval(model: SimCLR, data: SimCLRData, prepare: Normalize, cfg: DictConfig, amp, dist: Dist
             ) -> tuple[float, torch.Tensor, float]:
    """kNN accuracy of the current encoder (bank: labelled train images, queries: test), the test features, and
    the seconds it took. Every rank extracts its share of the features, and all of them get the whole set."""
    tic = time.perf_counter()
    broadcast_buffers(model)  # every rank extracts with rank 0's BatchNorm statistics

    def features(images: torch.Tensor) -> torch.Tensor:  # this rank's share, then all of them in order
        mine = images[dist.share(len(images))]
        return gather_rows(extract_features(model.encoder, mine, prepare.uint8, cfg.batch_size, amp))

    bank, queries = features(data.bank.images), features(data.test.images)
    acc = knn_accuracy(bank, data.bank.labels, queries, data.test.labels, len(data.bank.classes), cfg.knn_k,
                       cfg.knn_temperature)
    return acc, queries, time.perf_counter() - tic


def finish(run: Run, cfg: DictConfig, model: SimCLR, data: SimCLRData, prepare: Normalize, aug: DictConfig,
           state: SimCLRState, amp, acc: float, test_features: torch.Tensor, device) -> None:
    """Linear probe, random-init and supervised references, plots and the summary's metrics (acc and
    test_features: the final encoder's kNN accuracy and test features)."""
    e = cfg.eval
    knn = run.history("knn")
    random_init = state.random_init_knn
    metrics = {"knn_acc": round(acc, 4), "random_init_knn_acc": round(random_init, 4),
               "knn_gain_points": round(100 * (acc - random_init), 2),
               "best_knn_acc": round(max(r["knn_acc"] for r in knn[1:]), 4) if len(knn) > 1 else round(acc, 4)}
    references = {f"random init ({random_init:.3f})": random_init}
    if e.probe.epochs > 0:
        metrics["probe_acc"] = round(linear_probe(model.encoder, prepare.uint8, data.bank, data.test, e.probe,
                                                  e.batch_size, cfg.seed, amp), 4)
        metrics["random_init_probe_acc"] = round(linear_probe(fresh_encoder(cfg, device), prepare.uint8, data.bank,
                                                              data.test, e.probe, e.batch_size, cfg.seed, amp), 4)
        log.info("linear probe: %.4f (random-init encoder: %.4f)", metrics["probe_acc"],
                 metrics["random_init_probe_acc"])
        references[f"linear probe ({metrics['probe_acc']:.3f})"] = metrics["probe_acc"]
    if e.supervised.epochs > 0:
        encoder = fresh_encoder(cfg, device)
        if cfg.train.channels_last:
            encoder = encoder.to(memory_format=torch.channels_last)
        metrics["supervised_acc"] = round(supervised_reference(encoder, prepare.uint8, data.bank, data.test,
                                                               e.supervised, cfg.seed, amp), 4)
        log.info("supervised reference (same encoder, labels, %d epochs): %.4f", e.supervised.epochs,
                 metrics["supervised_acc"])
        references[f"supervised ({metrics['supervised_acc']:.3f})"] = metrics["supervised_acc"]
    train = run.history("train")
    metrics.update(final_loss=round(train[-1]["loss"], 4) if train else None,
                   images_per_s=round(state.step * cfg.train.batch_size / max(state.train_time, 1e-9), 1))
    run.update(metrics=metrics, train_s=round(state.train_time, 1), knn_eval_s=round(state.eval_time, 1))

    plots.line_plot(run.plots_dir / "knn.png", {"SimCLR encoder": ([r["epoch"] for r in knn],
                                                                   [r["knn_acc"] for r in knn])},
                    xlabel="epoch", ylabel="kNN accuracy (test)", hlines=references,
                    title=f"kNN (k={e.knn_k}) on frozen features; epoch 0 = random init")
    plots.learning_curves(run.plots_dir / "loss.png", train, "loss", x="epoch",
                          title=f"NT-Xent loss (temperature {cfg.loss.temperature})")
    shown = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(0))[:e.embedding_points]
    shown = shown.to(device)
    # L2-normalised first: the PCA then shows the cosine geometry that NT-Xent and the kNN monitor work in
    plots.scatter_pca(run.plots_dir / "embedding.png", F.normalize(test_features[shown].float(), dim=1),
                      data.test.labels[shown], class_names=data.test.classes,
                      title="test embeddings (PCA of the encoder's features)")
    originals = data.test.images[::max(1, len(data.test) // 8)][:8]  # strided: folders list class by class
    first, second = two_views(originals, aug, torch.Generator(device=device).manual_seed(cfg.seed))
    view_plots.view_pairs(run.plots_dir / "views.png", originals, first, second)
    log.info("kNN accuracy %.4f vs %.4f for the random-init encoder (+%.1f points); %.0f images/s",
             acc, random_init, metrics["knn_gain_points"], metrics["images_per_s"])

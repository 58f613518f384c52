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
from functools import partial

import torch
from omegaconf import DictConfig, OmegaConf

from trends.contrastive import plots as view_plots
from trends.contrastive.augment import two_views
from trends.contrastive.loss import nt_xent
from trends.contrastive.models import SimCLR
from trends.contrastive.optim import build_optimizer
from trends.core.device import describe
from trends.core.distributed import data_parallel, gather_with_gradient
from trends.core.loop import Loop, LossWindow
from trends.core.modules import num_params
from trends.core.schedule import warmup_cosine, whole_epochs
from trends.core.seed import seed_everything
from trends.records import plots
from trends.records.run import Run
from trends.vision.data import skipped_files
from trends.vision.evaluate import embedding_plot, fresh_encoder, frozen_evaluation, knn_eval, knn_plot
from trends.vision.normalize import Normalize
from trends.vision.pretrain_data import PretrainData, load_data
from trends.vision.pretraining import PretrainState, epoch_batches, full_batches

log = logging.getLogger("trends.contrastive")


def main(cfg: DictConfig, run: Run) -> None:
    loop = Loop(run, cfg.device, PretrainState(), cfg.train.amp)
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
    steps_per_epoch = full_batches(len(data.pretrain), t.batch_size)
    steps = epochs * steps_per_epoch
    scheduler = warmup_cosine(optimizer, round(cfg.optim.warmup_epochs * steps_per_epoch), steps)
    views = torch.Generator(device=device).manual_seed(cfg.seed + dist.rank)  # this rank's augmentations
    window = LossWindow(device)
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"views": views, "loss": window})
    loop.keep(model_config=OmegaConf.to_container(cfg.model))
    if cfg.resume:
        loop.resume()

    forward = loop.compile(parallel, t.compile)
    amp = loop.precision.autocast
    knn = partial(knn_eval, model.encoder, data, prepare.uint8, cfg.eval, amp, dist)
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
            parallel.train()
            for mine in epoch_batches(len(data.pretrain), t.batch_size, cfg.seed, epoch, state.step % steps_per_epoch,
                                      steps_per_epoch, dist, device):
                tic = time.perf_counter()
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


def finish(run: Run, cfg: DictConfig, model: SimCLR, data: PretrainData, prepare: Normalize, aug: DictConfig,
           state: PretrainState, amp, acc: float, test_features: torch.Tensor, device) -> None:
    """Linear probe, random-init and supervised references, plots and the summary's metrics (acc and
    test_features: the final encoder's kNN accuracy and test features)."""
    knn = run.history("knn")
    metrics, references = frozen_evaluation(cfg, model.encoder, data, prepare.uint8, amp, device, acc,
                                            state.random_init_knn, knn)
    train = run.history("train")
    metrics.update(final_loss=round(train[-1]["loss"], 4) if train else None,
                   images_per_s=round(state.step * cfg.train.batch_size / max(state.train_time, 1e-9), 1))
    run.update(metrics=metrics, train_s=round(state.train_time, 1), knn_eval_s=round(state.eval_time, 1))

    knn_plot(run.plots_dir / "knn.png", knn, references, "SimCLR encoder", cfg.eval.knn_k)
    plots.learning_curves(run.plots_dir / "loss.png", train, "loss", x="epoch",
                          title=f"NT-Xent loss (temperature {cfg.loss.temperature})")
    embedding_plot(run.plots_dir / "embedding.png", test_features, data.test, cfg.eval.embedding_points)
    originals = data.test.images[::max(1, len(data.test) // 8)][:8]  # strided: folders list class by class
    first, second = two_views(originals, aug, torch.Generator(device=device).manual_seed(cfg.seed))
    view_plots.view_pairs(run.plots_dir / "views.png", originals, first, second)
    log.info("kNN accuracy %.4f vs %.4f for the random-init encoder (+%.1f points); %.0f images/s",
             acc, state.random_init_knn, metrics["knn_gain_points"], metrics["images_per_s"])

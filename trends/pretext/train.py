"""`trends pretext`: train an encoder on a pretext task, with contrastive's kNN monitor every epoch, then the same
honest comparisons (trends.vision.evaluate).

Reads top-down: data → the task and the model → the step → the monitor (kNN on whole images and the task's own
accuracy on held-out images) → the end of the run (linear probe, baselines, plots, summary). The whole dataset sits
on the training device as uint8; each step draws a batch, crops and flips it there, lets the task cut its questions
out of it (patch pairs, rotated copies, shuffled tiles: trends/pretext/<task>.py) and takes one cross-entropy step.

The encoder is fully convolutional with a global average pool, so the one trained on patches is evaluated as it
stands on whole images, exactly like SimCLR's.
"""
from __future__ import annotations

import logging
import time
from functools import partial

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from trends.core.device import describe
from trends.core.distributed import data_parallel
from trends.core.loop import Loop, LossWindow
from trends.core.modules import num_params
from trends.core.schedule import warmup_cosine, whole_epochs
from trends.core.seed import seed_everything
from trends.errors import UserError
from trends.pretext import plots as task_plots
from trends.pretext.grid import Grid
from trends.pretext.jigsaw import Jigsaw
from trends.pretext.model import PretextModel
from trends.pretext.relative_position import RelativePosition
from trends.pretext.rotation import Rotation
from trends.records import plots
from trends.records.run import Run
from trends.vision.augment import random_crop_flip, resized_crop_flip
from trends.vision.data import skipped_files
from trends.vision.evaluate import embedding_plot, fresh_encoder, frozen_evaluation, knn_eval, knn_plot
from trends.vision.normalize import Normalize
from trends.vision.pretrain_data import PretrainData, load_data
from trends.vision.pretraining import PretrainState, epoch_batches, full_batches

log = logging.getLogger("trends.pretext")


def build_task(cfg: DictConfig, height: int, width: int, device):
    """The task named by `task.name`, its patch sizes scaled to the images, its tables on their device."""
    if cfg.name == "rotation":
        return Rotation(height, width)
    grid = Grid.for_images(cfg, min(height, width))
    if cfg.name == "relative_position":
        return RelativePosition(grid, device)
    if cfg.name == "jigsaw":
        return Jigsaw(grid, cfg.permutations, device)
    raise UserError(f"task.name={cfg.name} is not known; use task=relative_position, task=rotation or task=jigsaw")


def main(cfg: DictConfig, run: Run) -> None:
    loop = Loop(run, cfg.device, PretrainState(), cfg.train.amp)
    dist, device, t = loop.dist, loop.device, cfg.train
    seed_everything(cfg.seed + dist.rank, cfg.deterministic)  # the initial weights come from fresh_encoder
    if device.type == "cuda" and not cfg.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest kernels once
    epochs = whole_epochs(t.epochs)
    data = load_data(cfg.data).to(device)
    task = build_task(cfg.task, *data.pretrain.images.shape[-2:], device)
    prepare = Normalize.fit(data.pretrain.images, channels_last=t.channels_last)
    model = PretextModel(fresh_encoder(cfg, device), task.inputs_per_question, task.classes,
                         cfg.model.head_hidden).to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    parallel = data_parallel(model, dist)  # `model` itself in one process
    o = cfg.optim
    optimizer = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                                weight_decay=o.weight_decay)
    steps_per_epoch = full_batches(len(data.pretrain), t.batch_size)
    steps = epochs * steps_per_epoch
    scheduler = warmup_cosine(optimizer, round(o.warmup_epochs * steps_per_epoch), steps)
    questions = torch.Generator(device=device).manual_seed(cfg.seed + dist.rank)  # this rank's crops and questions
    losses, hits = LossWindow(device), LossWindow(device)  # mean loss and pretext accuracy between records
    loop.track(model=model, optimizer=optimizer, scheduler=scheduler,
               streams={"questions": questions, "loss": losses, "hits": hits})
    loop.keep(model_config=OmegaConf.to_container(cfg.model), task_config=OmegaConf.to_container(cfg.task))
    if cfg.resume:
        loop.resume()

    forward = loop.compile(parallel, t.compile)
    amp = loop.precision.autocast
    knn = partial(knn_eval, model.encoder, data, prepare.uint8, cfg.eval, amp, dist)
    asked = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(0))[:cfg.eval.pretext_images]
    held_out = partial(pretext_accuracy, model, task, data.test.images[asked.to(device)], prepare, amp, cfg.seed)
    chance = 1 / task.classes
    run.update(task=task.name, chance=round(chance, 4), params=num_params(model.encoder),
               head_params=num_params(model.head), device=describe(device), total_steps=steps,
               steps_per_epoch=steps_per_epoch, batch_size=t.batch_size, pretrain_images=len(data.pretrain),
               bank_images=len(data.bank), test_images=len(data.test), headline="knn_acc",
               **skipped_files(data.pretrain, data.test))
    log.info("pretext task %s (%d answers, chance %.3f): %s encoder (%.2fM params) on %s%s; %d images, %d epochs of "
             "%d steps × %d images", task.name, task.classes, chance, cfg.model.encoder,
             num_params(model.encoder) / 1e6, describe(device), f" × {dist.world} processes" if dist.active else "",
             len(data.pretrain), epochs, steps_per_epoch, t.batch_size)

    state = loop.state
    if state.random_init_knn is None:  # the untrained encoder: what self-supervision has to beat
        state.random_init_knn, _, seconds = knn()
        state.eval_time += seconds
        run.log(0, "eval", epoch=0, knn_acc=state.random_init_knn, pretext_acc=held_out())
        log.info("random-init encoder: kNN accuracy %.4f", state.random_init_knn)

    final = None  # the last epoch's (kNN accuracy, test features)
    with loop.progress(steps, unit="img") as progress:
        while state.step < steps:
            epoch = state.step // steps_per_epoch
            parallel.train()
            for mine in epoch_batches(len(data.pretrain), t.batch_size, cfg.seed, epoch, state.step % steps_per_epoch,
                                      steps_per_epoch, dist, device):
                tic = time.perf_counter()
                inputs, answers = task.ask(crop_flip(data.pretrain.images[mine], cfg, questions), questions)
                with amp():
                    logits = forward(prepare(inputs))
                loss = F.cross_entropy(logits.float(), answers)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                state.step += 1
                losses.add(loss)
                hits.add((logits.argmax(1) == answers).float().mean())
                loop.finite(loss)
                state.train_time += time.perf_counter() - tic
                images_per_s = state.step * t.batch_size / state.train_time
                progress.advance(rate=images_per_s)
                step = state.step
                if step % t.log_every == 0 or step % steps_per_epoch == 0:
                    run.log(step, "train", epoch=round(step / steps_per_epoch, 4), loss=losses.mean(),
                            pretext_acc=hits.mean(), lr=scheduler.get_last_lr()[0],
                            images_per_s=round(images_per_s, 1))
                if step % steps_per_epoch:  # (an epoch's last step stops below, after its evaluation)
                    loop.stop_if_asked()

            done = epoch + 1
            if done % cfg.eval.knn_every == 0 or done == epochs:
                tic = time.perf_counter()
                acc, test_features, _ = knn()
                task_acc = held_out()
                state.eval_time += time.perf_counter() - tic
                final = (acc, test_features) if done == epochs else None
                run.log(state.step, "eval", epoch=done, knn_acc=acc, pretext_acc=task_acc)
                progress.note(f"epoch {done}/{epochs}: {task.name} {task_acc:.3f} on held-out images (chance "
                              f"{chance:.3f})  kNN {acc:.4f} (random init {state.random_init_knn:.4f})")
            loop.checkpoint()
            loop.stop_if_asked()

    if final is None:  # a run resumed after its last epoch
        acc, test_features, seconds = knn()
        state.eval_time += seconds
        final = acc, test_features
    loop.finish(lambda: finish(run, cfg, model, task, data, prepare, state, amp, *final, device))


def crop_flip(images: torch.Tensor, cfg: DictConfig, generator: torch.Generator) -> torch.Tensor:
    """uint8 images → floats in [0, 1], randomly cropped and flipped before the task cuts its questions: a crop of a
    reflect-padded image (`train.crop_padding`), or, where the task sets `task.crop_scale`, a random resized crop of
    that area range, which moves and rescales the image under the tile grid (jigsaw needs it: without it the network
    most likely places tiles by where the image's borders and JPEG's 8×8 blocks fall, and learns little else)."""
    if cfg.task.get("crop_scale"):
        return resized_crop_flip(images.float().div_(255), images.shape[-1], tuple(cfg.task.crop_scale),
                                 (3 / 4, 4 / 3), 0.5, generator)
    return random_crop_flip(images, cfg.train.crop_padding, generator).float().div_(255)


@torch.no_grad()
def pretext_accuracy(model: PretextModel, task, images: torch.Tensor, prepare: Normalize, amp, seed: int,
                     batch_size: int = 500) -> float:
    """How often the model answers its task right on held-out images (no crop or flip; a fixed random sample of the
    test set, as folders list class by class), with questions drawn by a fixed generator, so every evaluation asks
    the same ones."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    right = total = 0
    for start in range(0, len(images), batch_size):
        inputs, answers = task.ask(images[start:start + batch_size].float() / 255, generator)
        with amp():
            right += (model(prepare(inputs)).argmax(1) == answers).sum().item()
        total += len(answers)
    model.train(was_training)
    return right / max(total, 1)


def finish(run: Run, cfg: DictConfig, model: PretextModel, task, data: PretrainData, prepare: Normalize,
           state: PretrainState, amp, acc: float, test_features: torch.Tensor, device) -> None:
    """Linear probe, random-init and supervised references, plots and the summary's metrics (acc and
    test_features: the final encoder's kNN accuracy and test features)."""
    evals = run.history("eval")
    metrics, references = frozen_evaluation(cfg, model.encoder, data, prepare.uint8, amp, device, acc,
                                            state.random_init_knn, evals)
    train = run.history("train")
    metrics.update(pretext_acc=round(evals[-1]["pretext_acc"], 4), pretext_chance=round(1 / task.classes, 4),
                   final_loss=round(train[-1]["loss"], 4) if train else None,
                   images_per_s=round(state.step * cfg.train.batch_size / max(state.train_time, 1e-9), 1))
    run.update(metrics=metrics, train_s=round(state.train_time, 1), eval_s=round(state.eval_time, 1))

    knn_plot(run.plots_dir / "knn.png", evals, references, f"{task.name} encoder", cfg.eval.knn_k)
    plots.learning_curves(run.plots_dir / "loss.png", train, "loss", x="epoch", title=f"{task.name}: cross-entropy")
    plots.line_plot(run.plots_dir / "pretext_acc.png",
                    {"training batches": ([r["epoch"] for r in train], [r["pretext_acc"] for r in train]),
                     "held-out images": ([r["epoch"] for r in evals], [r["pretext_acc"] for r in evals])},
                    xlabel="epoch", ylabel=f"{task.name} accuracy", hlines={f"chance ({1 / task.classes:.3f})":
                                                                            1 / task.classes},
                    title="the pretext task itself: a network that cannot solve it has learned nothing")
    embedding_plot(run.plots_dir / "embedding.png", test_features, data.test, cfg.eval.embedding_points)
    examples = data.test.images[::max(1, len(data.test) // cfg.eval.task_examples)][:cfg.eval.task_examples]
    task_plots.questions(run.plots_dir / "task.png", model, task, examples, prepare, cfg.seed)
    log.info("%s: %.3f on held-out questions (chance %.3f); kNN accuracy %.4f vs %.4f for the random-init encoder "
             "(%+.1f points); %.0f images/s", task.name, metrics["pretext_acc"], 1 / task.classes, acc,
             state.random_init_knn, metrics["knn_gain_points"], metrics["images_per_s"])

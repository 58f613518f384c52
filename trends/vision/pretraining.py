"""The one self-supervised pretraining loop (SimCLR, the pretext tasks): a method is its step and its loss.

A demo builds on `Pretraining(cfg, run)` — the runtime loop, the seed and the three image sets on the device — its
model (`pre.encoder()` plus its own head) and optimizer, then hands a `Method` to `pre.train`, which does the rest:
full batches of a fresh permutation each epoch, the kNN monitor (epoch 0: the random-init encoder, the baseline),
a checkpoint per epoch, Ctrl-C at step boundaries (an epoch's last step stops after its evaluation), and at the end
the linear probe, the references, the shared plots and the summary's metrics. Timing, loss windows, progress and
the record cadence are the core's meter (trends.core.meter); the evaluation's time is counted in `_evaluate`.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf

from trends.clock import Stopwatch
from trends.core.device import describe
from trends.core.distributed import data_parallel
from trends.core.loop import Loop, TrainState
from trends.core.meter import Meter
from trends.core.modules import num_params
from trends.core.schedule import warmup_cosine, whole_epochs
from trends.core.seed import derive_seed, seed_everything
from trends.errors import UserError
from trends.ranks import Dist
from trends.records import plots
from trends.records.run import Run
from trends.vision.data import skipped_files
from trends.vision.evaluate import embedding_plot, fresh_encoder, frozen_evaluation, knn_eval, knn_plot
from trends.vision.findings import pretrain_finding
from trends.vision.normalize import Normalize
from trends.vision.pretrain_data import load_data

log = logging.getLogger("trends.vision")


class Method(ABC):
    """What a self-supervised method adds to the shared loop: its model and optimizer, the loss of one step, and
    optionally its own evaluation, metrics and plots. A new method (MoCo, BYOL) writes `loss` and sets the
    attributes; the defaults below add nothing (trends.contrastive.methods has seven)."""
    model: nn.Module  # `model.encoder`: what the monitor and the probe measure; `model.head`: the method's own
    optimizer: torch.optim.Optimizer
    label: str  # names the encoder in logs and plots: "SimCLR", "rotation"
    loss_title: str  # plots/loss.png's title
    split = "knn"  # the metrics.jsonl split of the evaluation after each epoch
    shared_loss = False  # the loss is already the same on every rank (computed over the gathered global batch)

    @abstractmethod
    def loss(self, images: torch.Tensor, generator: torch.Generator,
             forward: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step's loss on this rank's share of the batch, uint8 (n, 3, H, W), drawing its randomness from
        `generator` (this rank's, checkpointed); `forward`: floats in [0, 1] → the model's output, standardised and
        under autocast, through DDP and torch.compile. Returns the loss and other values of the step (e.g. its
        accuracy), averaged between train records like the loss."""

    def after_step(self, step: int, total: int) -> None:
        """What moves after the optimiser's step `step` of `total`: momentum targets, queues, centres."""

    def evaluate(self) -> dict[str, float]:
        """Fields of the method's own beside each kNN record (epoch 0 included), e.g. its task on held-out images."""
        return {}

    def describe(self, fields: dict) -> str:
        """Those fields in words, for the progress and the last log line."""
        return ""

    def metrics(self, evaluations: list[dict]) -> dict[str, float]:
        """The method's own summary metrics, from its evaluation records."""
        return {}

    def plots(self, folder: Path, train: list[dict], evaluations: list[dict]) -> None:
        """The method's own figures, beside knn.png, loss.png and embedding.png."""


@dataclass
class PretrainState(TrainState):
    random_init_knn: float | None = None  # the untrained encoder's kNN accuracy: what self-supervision has to beat
    eval_time: float = 0.0  # seconds of evaluation during training (the kNN monitor and the method's own)


class Pretraining:
    """The runtime loop (device, precision, ranks), the seed, the image sets on the device and their normalisation,
    and the training budget: whole epochs of full batches."""

    def __init__(self, cfg: DictConfig, run: Run):
        self.cfg, self.run = cfg, run
        self.loop = Loop(run, cfg.device, PretrainState(), cfg.train.amp)
        self.dist, self.device = self.loop.dist, self.loop.device
        seed_everything(cfg.seed + self.dist.rank, cfg.deterministic)  # the initial weights come from fresh_encoder
        if self.device.type == "cuda" and not cfg.deterministic:
            torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest kernels once
        self.epochs = whole_epochs(cfg.train.epochs)
        self.data = load_data(cfg.data).to(self.device)
        self.steps_per_epoch = full_batches(len(self.data.pretrain), cfg.train.batch_size)
        self.prepare = Normalize.fit(self.data.pretrain.images, channels_last=cfg.train.channels_last)
        self.amp = self.loop.precision.autocast

    def encoder(self) -> nn.Module:
        """The encoder as `seed` initialises it (the random-init baseline is the same one)."""
        return fresh_encoder(self.cfg, self.device)

    def place(self, model: nn.Module) -> nn.Module:
        """`model` on the device, in the memory format `prepare` gives the images."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.cfg.train.channels_last else model

    def train(self, method: Method) -> None:
        """Pretrain with `method`, evaluate, and end the run (see the module's docstring)."""
        cfg, t, run, loop, data = self.cfg, self.cfg.train, self.run, self.loop, self.data
        model, optimizer, steps_per_epoch = method.model, method.optimizer, self.steps_per_epoch
        steps = self.epochs * steps_per_epoch
        parallel = data_parallel(model, self.dist)  # `model` itself in one process; the parameters are kept
        scheduler = warmup_cosine(optimizer, round(cfg.optim.warmup_epochs * steps_per_epoch), steps)
        draws = torch.Generator(device=self.device).manual_seed(cfg.seed + self.dist.rank)  # this rank's randomness
        # images/s of training alone; a train record every log_every steps and at every epoch's end
        meter = loop.meter(steps, per_step=t.batch_size, log_every=t.log_every, epoch=steps_per_epoch)
        loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"draws": draws, "meter": meter})
        loop.keep(model_config=OmegaConf.to_container(cfg.model))
        if cfg.resume:
            loop.resume()
        compiled = loop.compile(parallel, t.compile)

        def forward(x: torch.Tensor) -> torch.Tensor:
            with self.amp():
                return compiled(self.prepare(x))

        self._announce(method, steps)
        state = loop.state
        if state.random_init_knn is None:
            state.random_init_knn, _, fields = self._evaluate(method)
            run.log(0, method.split, epoch=0, knn_acc=state.random_init_knn, **fields)
            log.info("random-init encoder: kNN accuracy %.4f", state.random_init_knn)

        final = None  # the last epoch's (kNN accuracy, test features)
        with loop.progress(steps, unit="img") as progress:
            while meter.step < steps:
                epoch, first = divmod(meter.step, steps_per_epoch)
                parallel.train()
                batches = epoch_batches(len(data.pretrain), t.batch_size, cfg.seed, epoch, first, steps_per_epoch,
                                        self.dist, self.device)
                for step, mine in zip(meter.steps(until=(epoch + 1) * steps_per_epoch), batches):
                    loss, values = method.loss(data.pretrain.images[mine], draws, forward)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    method.after_step(step, steps)
                    loss_value = meter.trained(loss, shared=method.shared_loss, **values)
                    if meter.recording:
                        run.log(step, "train", epoch=round(step / steps_per_epoch, 4), **meter.means,
                                lr=scheduler.get_last_lr()[0], images_per_s=round(meter.rate, 1))

                done = epoch + 1
                if done % cfg.eval.knn_every == 0 or done == self.epochs:
                    acc, test_features, fields = self._evaluate(method)
                    final = (acc, test_features) if done == self.epochs else None
                    run.log(state.step, method.split, epoch=done, knn_acc=acc, **fields)
                    own = method.describe(fields)
                    progress.note(f"epoch {done}/{self.epochs}: loss {loss_value:.3f}  {own + '  ' if own else ''}"
                                  f"kNN {acc:.4f} (random init {state.random_init_knn:.4f})")
                loop.checkpoint()  # Ctrl-C stops at the next step's boundary: after this epoch's evaluation

        if final is None:  # a run resumed after its last epoch
            acc, test_features, _ = self._evaluate(method)
            final = acc, test_features
        loop.finish(lambda: self._finish(method, meter, *final))

    def _announce(self, method: Method, steps: int) -> None:
        data, t, encoder = self.data, self.cfg.train, method.model.encoder
        self.run.update(params=num_params(encoder), head_params=num_params(method.model.head),
                        device=describe(self.device), total_steps=steps, steps_per_epoch=self.steps_per_epoch,
                        batch_size=t.batch_size, pretrain_images=len(data.pretrain), bank_images=len(data.bank),
                        test_images=len(data.test), headline="knn_acc", **skipped_files(data.pretrain, data.test))
        log.info("%s: %s encoder (%.2fM params) on %s%s; %d pretraining images, %d epochs of %d steps × %d images",
                 method.label, self.cfg.model.encoder, num_params(encoder) / 1e6, describe(self.device),
                 f" × {self.dist.world} processes" if self.dist.active else "", len(data.pretrain), self.epochs,
                 self.steps_per_epoch, t.batch_size)

    def _evaluate(self, method: Method) -> tuple[float, torch.Tensor, dict[str, float]]:
        """The kNN accuracy of the encoder as it is now, the test features, and the method's own fields; the time
        it took counts as evaluation."""
        with Stopwatch() as watch:
            acc, test_features = knn_eval(method.model.encoder, self.data, self.prepare.uint8, self.cfg.eval,
                                          self.amp, self.dist)
            fields = method.evaluate()
        self.loop.state.eval_time += watch.seconds
        return acc, test_features, fields

    def _finish(self, method: Method, meter: Meter, acc: float, test_features: torch.Tensor) -> None:
        """Linear probe, random-init and supervised references, plots and the summary's metrics (acc and
        test_features: the final encoder's kNN accuracy and test features)."""
        cfg, run, state = self.cfg, self.run, self.loop.state
        evaluations, train = run.history(method.split), run.history("train")
        metrics, references = frozen_evaluation(cfg, method.model.encoder, self.data, self.prepare.uint8, self.amp,
                                                self.device, acc, state.random_init_knn, evaluations)
        metrics.update(method.metrics(evaluations))
        metrics.update(final_loss=round(train[-1]["loss"], 4) if train else None,
                       images_per_s=round(meter.rate, 1))
        run.update(metrics=metrics, train_s=round(meter.clock.seconds, 1), eval_s=round(state.eval_time, 1))
        run.update(finding=pretrain_finding(metrics, f"the {method.label} encoder"), lead_plot="knn.png")

        knn_plot(run.plots_dir / "knn.png", evaluations, references, f"{method.label} encoder", cfg.eval.knn_k)
        plots.learning_curves(run.plots_dir / "loss.png", train, "loss", x="epoch", title=method.loss_title)
        embedding_plot(run.plots_dir / "embedding.png", test_features, self.data.test, cfg.eval.embedding_points)
        method.plots(run.plots_dir, train, evaluations)
        own = method.describe(evaluations[-1])
        log.info("%skNN accuracy %.4f vs %.4f for the random-init encoder (%+.1f points); %.0f images/s",
                 f"{own}; " if own else "", acc, state.random_init_knn, metrics["knn_gain_points"],
                 metrics["images_per_s"])


def full_batches(n: int, batch_size: int) -> int:
    """Steps per epoch: full batches only (NT-Xent's negatives and BatchNorm's statistics scale with the batch)."""
    if n < batch_size:
        raise UserError(f"train.batch_size={batch_size} is larger than the {n} training images; lower it")
    return n // batch_size


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """A permutation per (seed, epoch): a resumed run walks exactly the batches an uninterrupted one would."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    return torch.randperm(n, generator=generator).to(device)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, first_step: int, steps_per_epoch: int, dist: Dist,
                  device) -> Iterator[torch.Tensor]:
    """This rank's share of each remaining batch of `epoch`, from step `first_step` of the epoch on."""
    order = epoch_order(n, seed, epoch, device)
    for i in range(first_step, steps_per_epoch):
        yield dist.mine(order[i * batch_size:(i + 1) * batch_size])

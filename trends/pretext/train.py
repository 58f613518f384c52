"""`trends pretext`: train an encoder on a pretext task, with contrastive's kNN monitor every epoch, then the same
honest comparisons.

Reads top-down: the task → the model → the method (its step: crop and flip a batch, let the task cut its questions
out of it — patch pairs, rotated copies, shuffled tiles: trends/pretext/<task>.py — and take one cross-entropy
step; its own evaluation: the task's accuracy on held-out images) → the shared pretraining loop
(trends.vision.pretraining: the epochs, the kNN monitor, the linear probe, the baselines, the plots and the summary).

The encoder is fully convolutional with a global average pool, so the one trained on patches is evaluated as it
stands on whole images, exactly like SimCLR's.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

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
from trends.vision.pretraining import Method, Pretraining

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
    pre = Pretraining(cfg, run)  # the loop on its device, the seed, the image sets there
    task = build_task(cfg.task, *pre.data.pretrain.images.shape[-2:], pre.device)
    model = pre.place(PretextModel(pre.encoder(), task.inputs_per_question, task.classes, cfg.model.head_hidden))
    o = cfg.optim
    optimizer = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                                weight_decay=o.weight_decay)
    run.update(task=task.name, chance=round(1 / task.classes, 4))
    pre.loop.keep(task_config=OmegaConf.to_container(cfg.task))
    log.info("pretext task %s: %d answers, chance %.3f", task.name, task.classes, 1 / task.classes)
    pre.train(PretextMethod(model, optimizer, task, cfg, pre))


class PretextMethod(Method):
    """A pretext task's step: crop and flip, ask the task's questions, one cross-entropy step on the answers. Its
    own evaluation, beside kNN: the task on held-out images — a network that cannot solve it has learned nothing."""
    split = "eval"  # its records: kNN and the task's accuracy on held-out images (pretext_acc: on training batches)

    def __init__(self, model: PretextModel, optimizer: torch.optim.Optimizer, task, cfg: DictConfig,
                 pre: Pretraining):
        self.model, self.optimizer, self.task, self.cfg = model, optimizer, task, cfg
        self.label, self.loss_title = task.name, f"{task.name}: cross-entropy"
        self.chance = 1 / task.classes
        self.prepare, self.amp, self.test = pre.prepare, pre.amp, pre.data.test
        asked = torch.randperm(len(self.test), generator=torch.Generator().manual_seed(0))[:cfg.eval.pretext_images]
        self.held_out = self.test.images[asked.to(pre.device)]  # a fixed sample: folders list class by class

    def loss(self, images, generator, forward):
        inputs, answers = self.task.ask(crop_flip(images, self.cfg, generator), generator)
        logits = forward(inputs)
        return F.cross_entropy(logits.float(), answers), {"pretext_acc": (logits.argmax(1) == answers).float().mean()}

    @torch.no_grad()
    def evaluate(self, batch_size: int = 500):
        """How often the model answers its task right on the held-out images (no crop or flip), with questions
        drawn by a fixed generator, so that every evaluation asks the same ones."""
        was_training = self.model.training
        self.model.eval()
        generator = torch.Generator(device=self.held_out.device).manual_seed(self.cfg.seed)
        right = total = 0
        for start in range(0, len(self.held_out), batch_size):
            inputs, answers = self.task.ask(self.held_out[start:start + batch_size].float() / 255, generator)
            with self.amp():
                right += (self.model(self.prepare(inputs)).argmax(1) == answers).sum().item()
            total += len(answers)
        self.model.train(was_training)
        return {"pretext_acc": right / max(total, 1)}

    def describe(self, fields):
        return f"{self.task.name} {fields['pretext_acc']:.3f} on held-out images (chance {self.chance:.3f})"

    def metrics(self, evaluations):
        return {"pretext_acc": round(evaluations[-1]["pretext_acc"], 4), "pretext_chance": round(self.chance, 4)}

    def plots(self, folder, train, evaluations):
        name, e = self.task.name, self.cfg.eval
        plots.line_plot(folder / "pretext_acc.png",
                        {"training batches": ([r["epoch"] for r in train], [r["pretext_acc"] for r in train]),
                         "held-out images": ([r["epoch"] for r in evaluations],
                                             [r["pretext_acc"] for r in evaluations])},
                        xlabel="epoch", ylabel=f"{name} accuracy", hlines={f"chance ({self.chance:.3f})": self.chance},
                        title="the pretext task itself: a network that cannot solve it has learned nothing")
        examples = self.test.images[::max(1, len(self.test) // e.task_examples)][:e.task_examples]
        task_plots.questions(folder / "task.png", self.model, self.task, examples, self.prepare, self.cfg.seed)


def crop_flip(images: torch.Tensor, cfg: DictConfig, generator: torch.Generator) -> torch.Tensor:
    """uint8 images → floats in [0, 1], randomly cropped and flipped before the task cuts its questions: a crop of a
    reflect-padded image (`train.crop_padding`), or, where the task sets `task.crop_scale`, a random resized crop of
    that area range, which moves and rescales the image under the tile grid (jigsaw needs it: without it the network
    most likely places tiles by where the image's borders and JPEG's 8×8 blocks fall, and learns little else)."""
    if cfg.task.get("crop_scale"):
        return resized_crop_flip(images.float().div_(255), images.shape[-1], tuple(cfg.task.crop_scale),
                                 (3 / 4, 4 / 3), 0.5, generator)
    return random_crop_flip(images, cfg.train.crop_padding, generator).float().div_(255)

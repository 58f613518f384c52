"""One student of `trends distill`, trained by the shared char-GPT trainer (trends/text/training.py) with a teacher
in its objective. Reads top-down: the teacher, the student's shape, its initialisation, the loss of a step, and what
the run measures besides the student (the teacher on the same validation windows). Generation speed is timed once
per model when the sweep ends (analysis.py), not inside a job that may share the machine with others.

The three students differ in one thing each, so every difference in the table has one cause:
  scratch       the student's size on the data alone (the baseline)
  soft_targets  the same random init (same seed); loss α·T²·KL(teacher_T ‖ student_T) + (1 − α)·cross-entropy
  distilbert    the teacher's embeddings, every other block and final norm as its init, then soft_targets' loss
"""
from __future__ import annotations

import math

import torch
from omegaconf import DictConfig, open_dict

from trends.core.distributed import Dist
from trends.core.precision import Precision
from trends.distill.findings import student_finding
from trends.distill.loss import distillation_loss
from trends.distill.student import chosen_blocks, init_from_teacher, student_shape
from trends.distill.teacher import Teacher, load_teacher
from trends.errors import UserError
from trends.records.run import Run
from trends.text.data import Corpus
from trends.text.model import GPT
from trends.text.training import Objective, estimate_losses, train_gpt

METHODS = ("scratch", "soft_targets", "distilbert")


def main(cfg: DictConfig, run: Run) -> None:
    method = cfg.distill.method
    if method not in METHODS:
        raise UserError(f"distill.method={method} is not one of {', '.join(METHODS)}")
    teacher = load_teacher(cfg.teacher)
    shape = student_shape(cfg.student, teacher, method)
    blocks = chosen_blocks(teacher.n_layer, shape["n_layer"], cfg.distill.teacher_blocks) \
        if method == "distilbert" else None
    job = cfg.copy()  # the trainer reads model/ and data/: the student's shape, the teacher's data
    with open_dict(job):
        job.model = shape
        job.data = teacher.config.data
    run.update(method=method, student=shape, teacher=str(teacher.run_dir), teacher_params=teacher.model.num_params(),
               teacher_layers=teacher.n_layer, teacher_blocks=blocks)
    train_gpt(job, run, objective=Distillation(teacher, method, cfg, blocks))
    run.update(finding=student_finding(run.summary))  # after the trainer's: against the teacher, not chance


class Distillation(Objective):
    def __init__(self, teacher: Teacher, method: str, cfg: DictConfig, blocks: list[int] | None):
        self.teacher, self.method, self.blocks = teacher, method, blocks
        self.temperature, self.alpha = cfg.distill.temperature, cfg.distill.alpha
        self.train = cfg.train

    def prepare(self, model: GPT, corpus: Corpus, precision: Precision, dist: Dist) -> None:
        if corpus.vocab != self.teacher.vocab:
            raise UserError(f"the teacher's vocabulary ({len(self.teacher.vocab)} characters) is not its data's "
                            f"({len(corpus.vocab)}): was the text at data.path edited since the teacher trained?")
        self.teacher.model.to(precision.device)
        if self.method == "distilbert":
            init_from_teacher(model, self.teacher.model, self.blocks)
        # The teacher's loss on the very windows the student's is estimated on (it never changes: measured once,
        # here, where every rank takes its share).
        t = self.train
        self.teacher_val = estimate_losses(self.teacher.model, corpus, t.eval_batches, t.batch_size, precision,
                                           dist)["val"]
        self.teacher.model.eval()

    def loss(self, forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.method == "scratch":
            return forward(x, y)[1]
        logits, _ = forward(x)
        with torch.no_grad():  # on the fly: the teacher reads the student's very windows
            teacher_logits, _ = self.teacher.model(x)
        return distillation_loss(logits, teacher_logits, y, self.temperature, self.alpha)

    def report(self, model: GPT, corpus: Corpus, device: torch.device) -> dict:
        return {"teacher_val_loss": round(self.teacher_val, 4),
                "teacher_val_bpc": round(self.teacher_val / math.log(2), 4),
                "params_percent": round(100 * model.num_params() / self.teacher.model.num_params(), 1)}

"""The self-supervised methods of `trends contrastive`, each a model and one step on the shared pretraining loop
(trends.vision.pretraining): two augmented views of every image, the method's loss on them, and what moves after
the optimiser's step (momentum targets, the queue, the centre).

Each keeps the features from collapsing its own way, and under torchrun gathers or synchronises what its loss
needs over the global batch:

- simclr: negatives, every other view of the batch. Projections gathered with their gradient: NT-Xent over the
  global batch.
- simclr_multicrop (the default): SimCLR with two small views more per image (SwAV's multi-crop), each paired
  with both large views. Gathered as SimCLR; the large and the small views take two forward passes through DDP
  before the one backward, which sums both into each parameter's gradient before DDP averages it.
- moco: negatives from a queue of keys made by a momentum encoder. Keys gathered (no gradient): every rank keeps
  the same queue.
- byol: a predictor and a slowly moving target network. Nothing beyond DDP: the loss is per image.
- simsiam: a predictor and a stop-gradient alone. Nothing beyond DDP: the loss is per image.
- barlow_twins: the views' cross-correlation pulled to the identity. Projections gathered with their gradient:
  the correlation over the global batch.
- vicreg: a std floor per dimension and decorrelated dimensions. Projections gathered with their gradient: stds
  and covariances over the global batch.
- dino: a momentum teacher, centred and sharpened. The teacher outputs' batch sum, summed over the ranks, moves
  the one centre.

Everywhere: BatchNorm takes global-batch statistics (trends.core.distributed.data_parallel), DDP averages the
gradients, and every momentum target moves by the same update on every rank from the same (synchronised) weights.
Targets, the queue and the centre are buffers or frozen parameters of the model, so the checkpoint holds them and a
resumed run continues exactly.
"""
from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf

from trends.contrastive import plots as view_plots
from trends.contrastive.augment import two_views, view
from trends.contrastive.loss import barlow_twins, dino_loss, info_nce, negative_cosine, nt_xent, vicreg
from trends.contrastive.models import DINOHead, SimCLRModel, mlp
from trends.contrastive.momentum import cosine_momentum, ema_update, frozen_copy
from trends.contrastive.optim import build_optimizer
from trends.core.distributed import gather_rows, gather_with_gradient, sum_across_ranks
from trends.errors import UserError
from trends.vision.pretraining import Method, Pretraining


class TwoViews(Method):
    """What every method here shares: its model on the device, the optimiser, two views of each image, the momentum
    target where it has one, and the figure of a few view pairs. A subclass builds `model` (with `.encoder` and
    `.head`) and writes `step`; one with a momentum target names it and the online modules it follows in
    `follow`, and `after_step` moves it."""
    ema: tuple[nn.Module, nn.Module] | None = None  # (the momentum target, the online modules it averages)

    def __init__(self, model: nn.Module, cfg: DictConfig, pre: Pretraining):
        self.model = pre.place(model)
        self.cfg, self.m, self.pre = cfg, cfg.method, pre
        self.optimizer = build_optimizer(cfg.optim, self.model, fused=pre.device.type == "cuda")
        self.aug = OmegaConf.merge(cfg.aug, {"size": cfg.aug.size or pre.data.pretrain.images.shape[-1]})
        pre.dist.per_rank_batch(cfg.train.batch_size)  # refused here unless the ranks share it evenly

    def follow(self, target: nn.Module, *online: nn.Module) -> None:
        """`target` (a frozen_copy of `online`, chained) moves towards `online` after every step, its momentum rising
        from `method.momentum` to 1 along a half cosine."""
        self.ema = target, nn.Sequential(*online)

    def loss(self, images, generator, forward):
        return self.step(torch.cat(two_views(images, self.aug, generator)), forward)

    @abstractmethod
    def step(self, views: torch.Tensor, forward) -> tuple[torch.Tensor, dict]:
        """The loss on `views`: every image's first view, then every image's second."""

    def after_step(self, step, total):
        if self.ema is not None:
            ema_update(*self.ema, cosine_momentum(step, total, self.m.momentum))

    def target(self, views: torch.Tensor) -> torch.Tensor:
        """The momentum target's output for `views` (floats in [0, 1]), standardised, under autocast, no gradient."""
        with torch.no_grad(), self.pre.amp():
            return self.ema[0](self.pre.prepare(views)).float()

    def plots(self, folder, train, evaluations):
        test = self.pre.data.test
        originals = test.images[::max(1, len(test) // 8)][:8]  # strided: folders list class by class
        generator = torch.Generator(device=originals.device).manual_seed(self.cfg.seed)
        view_plots.view_pairs(folder / "views.png", originals, *two_views(originals, self.aug, generator))


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs of the first views and of the second views, from one forward pass over both."""
    return x[:len(x) // 2], x[len(x) // 2:]


def global_halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """halves(x) of every rank, gathered with their gradient (torchrun): the two views' outputs of the global batch."""
    return tuple(gather_with_gradient(half) for half in halves(x))


class EncoderHead(nn.Module):
    """encoder + head, forward: images → head(encoder(images))."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


# -- negatives ------------------------------------------------------------------------------------------------------
class SimCLR(TwoViews):
    """SimCLR (Chen et al. 2020): two views of each image pulled together by NT-Xent against every other view of
    the global batch."""
    label, shared_loss = "SimCLR", True  # NT-Xent over the gathered global batch: one value on every rank

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        if len(m.projector) != 2:
            raise UserError(f"method.projector={list(m.projector)}: SimCLR's head is [hidden, out], e.g. [512,128]")
        super().__init__(SimCLRModel(encoder, *m.projector), cfg, pre)
        self.loss_title = f"NT-Xent loss (temperature {m.temperature})"
        if m.small_crops:
            self.label = "SimCLR + multi-crop"
            self.loss_title += f", 2 + {m.small_crops} views"
            self.small_aug = OmegaConf.merge(self.aug, {"size": m.small_size, "scale": list(m.small_scale)})

    def step(self, views, forward):
        return nt_xent(*global_halves(forward(views)), self.m.temperature), {}

    def loss(self, images, generator, forward):
        """Two views of each image (step); with `method.small_crops` = k, multi-crop (SwAV, Caron et al. 2020): k
        small views more, each the positive of both large views of its image in its own NT-Xent, all pairs
        averaged."""
        if not self.m.small_crops:
            return super().loss(images, generator, forward)
        large = global_halves(forward(torch.cat(two_views(images, self.aug, generator))))
        x = images.float().div_(255)
        small = forward(torch.cat([view(x, self.small_aug, generator) for _ in range(self.m.small_crops)]))
        pairs = [large] + [(gather_with_gradient(s), z) for s in small.chunk(self.m.small_crops) for z in large]
        return sum(nt_xent(a, b, self.m.temperature) for a, b in pairs) / len(pairs), {}


class MoCoModel(EncoderHead):
    """The query encoder and head, their momentum copy (the key encoder), and the queue of past keys."""

    def __init__(self, encoder: nn.Module, projector: list[int], queue: int):
        super().__init__(encoder, mlp([encoder.dim, *projector]))
        self.key = frozen_copy(nn.Sequential(encoder, self.head))
        self.register_buffer("queue", nn.functional.normalize(torch.randn(queue, projector[-1]), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """The newest keys replace the oldest (a ring buffer)."""
        n, size = len(keys), len(self.queue)
        index = (self.pointer + torch.arange(n, device=keys.device)) % size
        self.queue[index] = keys.to(self.queue.dtype)
        self.pointer.copy_((self.pointer + n) % size)


class MoCo(TwoViews):
    """MoCo v2 (He et al. 2020; Chen et al. 2020), symmetrised: each view's query against the other view's key from
    the momentum encoder, with the queue's keys as negatives; the keys of this step join the queue after it."""
    label = "MoCo"

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        if m.queue < cfg.train.batch_size * 2:
            raise UserError(f"method.queue={m.queue} is smaller than a step's 2 × {cfg.train.batch_size} keys; "
                            "raise it (MoCo: 4096 on CIFAR-10, 65536 on ImageNet)")
        super().__init__(MoCoModel(encoder, list(m.projector), m.queue), cfg, pre)
        self.follow(self.model.key, self.model.encoder, self.model.head)
        self.loss_title = f"InfoNCE loss against {m.queue} queued keys (temperature {m.temperature})"
        self._keys = None

    def step(self, views, forward):
        (q1, q2), keys = halves(forward(views)), self.target(views)
        k1, k2 = halves(keys)
        queue = self.model.queue.clone()  # the step's negatives, untouched by the enqueue after it
        loss = (info_nce(q1, k2, queue, self.m.temperature) + info_nce(q2, k1, queue, self.m.temperature)) / 2
        self._keys = gather_rows(nn.functional.normalize(keys, dim=1))  # every rank's: one queue
        return loss, {}

    def after_step(self, step, total):
        super().after_step(step, total)
        self.model.enqueue(self._keys)


# -- no negatives -----------------------------------------------------------------------------------------------------
class BYOLModel(nn.Module):
    """Online encoder → projector → predictor; the target network is a momentum copy of encoder → projector."""

    def __init__(self, encoder: nn.Module, projector: list[int], predictor: list[int]):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(mlp([encoder.dim, *projector]), mlp([projector[-1], *predictor]))
        self.target = frozen_copy(nn.Sequential(encoder, self.head[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class BYOL(TwoViews):
    """BYOL (Grill et al. 2020): the online network predicts the target network's projection of the other view;
    the target follows the online weights with a momentum rising from `method.momentum` to 1 (cosine)."""
    label = "BYOL"
    loss_title = "BYOL loss: −cos(prediction, target projection)"

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        super().__init__(BYOLModel(encoder, list(m.projector), list(m.predictor)), cfg, pre)
        self.follow(self.model.target, self.model.encoder, self.model.head[0])

    def step(self, views, forward):
        (p1, p2), (z1, z2) = halves(forward(views)), halves(self.target(views))
        return (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2, {}


class SimSiamModel(nn.Module):
    """Encoder → projector (its last layer batch-normalised) → predictor; forward returns the projections and the
    predictions."""

    def __init__(self, encoder: nn.Module, projector: list[int], predictor: list[int]):
        super().__init__()
        self.encoder = encoder
        self.head = nn.ModuleList([mlp([encoder.dim, *projector], last_bn=True), mlp([projector[-1], *predictor])])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.head[0](self.encoder(x))
        return z, self.head[1](z)


class SimSiam(TwoViews):
    """SimSiam (Chen & He 2021): BYOL without the momentum target: the prediction of one view matches the other
    view's projection through a stop-gradient, which alone keeps it from collapsing."""
    label = "SimSiam"
    loss_title = "SimSiam loss: −cos(prediction, stop-gradient projection)"

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        if m.projector[-1] != m.predictor[-1]:
            raise UserError(f"method.predictor={list(m.predictor)} must end at the projection's width "
                            f"{m.projector[-1]}")
        super().__init__(SimSiamModel(encoder, list(m.projector), list(m.predictor)), cfg, pre)

    def step(self, views, forward):
        z, p = forward(views)
        (z1, z2), (p1, p2) = halves(z), halves(p)
        return (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2, {"collapse": _spread(z1)}


def _spread(z: torch.Tensor) -> torch.Tensor:
    """SimSiam's collapse monitor: the std over the batch of the l2-normalised projections, times √D — about 1
    for spread-out features, 0 when they have collapsed to one point."""
    z = nn.functional.normalize(z.detach().float(), dim=1)
    return z.std(dim=0).mean() * z.shape[1] ** 0.5


# -- redundancy reduction ---------------------------------------------------------------------------------------------
class BarlowTwins(TwoViews):
    """Barlow Twins (Zbontar et al. 2021): the cross-correlation of the two views' projections, over the global
    batch, pulled to the identity."""
    label, shared_loss = "Barlow Twins", True

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        super().__init__(EncoderHead(encoder, mlp([encoder.dim, *m.projector])), cfg, pre)
        self.loss_title = f"Barlow Twins loss (λ = {m.lambd:g})"

    def step(self, views, forward):
        return barlow_twins(*global_halves(forward(views)), self.m.lambd), {}


class VICReg(TwoViews):
    """VICReg (Bardes et al. 2022): invariance between the views, a floor on each dimension's std and decorrelated
    dimensions, each branch on its own."""
    label, shared_loss = "VICReg", True
    loss_title = "VICReg loss (invariance + variance + covariance)"

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        super().__init__(EncoderHead(encoder, mlp([encoder.dim, *m.projector])), cfg, pre)

    def step(self, views, forward):
        return vicreg(*global_halves(forward(views)), self.m.invariance, self.m.variance, self.m.covariance)


# -- self-distillation ------------------------------------------------------------------------------------------------
class DINOModel(EncoderHead):
    """Student encoder + DINO head; the teacher is a momentum copy of both; `centre` the running mean of the
    teacher's outputs."""

    def __init__(self, encoder: nn.Module, hidden: int, bottleneck: int, prototypes: int):
        super().__init__(encoder, DINOHead(encoder.dim, hidden, bottleneck, prototypes))
        self.teacher = frozen_copy(nn.Sequential(encoder, self.head))
        self.register_buffer("centre", torch.zeros(prototypes))


class DINO(TwoViews):
    """DINO (Caron et al. 2021): the student matches the teacher's distribution over prototypes for the other view;
    the teacher's is centred (its running mean subtracted: no prototype can take over) and sharpened (a low
    temperature: the uniform distribution is no way out either)."""
    label = "DINO"

    def __init__(self, encoder: nn.Module, cfg: DictConfig, pre: Pretraining):
        m = cfg.method
        super().__init__(DINOModel(encoder, m.hidden, m.bottleneck, m.prototypes), cfg, pre)
        self.follow(self.model.teacher, self.model.encoder, self.model.head)
        self.loss_title = (f"DINO loss (student temperature {m.student_temperature}, teacher "
                           f"{m.teacher_temperature})")
        self._teacher_sum = None

    def step(self, views, forward):
        student, teacher = forward(views), self.target(views)
        loss = dino_loss(list(halves(student)), list(halves(teacher)), self.model.centre,
                         self.m.student_temperature, self.m.teacher_temperature)
        # the batch's sum and count, summed over the ranks after the step: the centre moves by the global mean
        self._teacher_sum = torch.cat([teacher.sum(dim=0), teacher.new_full((1,), len(teacher))])
        return loss, {}

    def after_step(self, step, total):
        super().after_step(step, total)
        total_sum = sum_across_ranks(self._teacher_sum)
        self.model.centre.mul_(self.m.centre_momentum).add_(total_sum[:-1] / total_sum[-1],
                                                            alpha=1 - self.m.centre_momentum)


METHODS = {"simclr": SimCLR, "simclr_multicrop": SimCLR, "moco": MoCo, "byol": BYOL, "simsiam": SimSiam,
           "barlow_twins": BarlowTwins, "vicreg": VICReg, "dino": DINO}


def build_method(cfg: DictConfig, pre: Pretraining) -> TwoViews:
    """`method.name`'s method on the seeded encoder."""
    if cfg.method.name not in METHODS:
        raise UserError(f"method={cfg.method.name} is not known; use one of {', '.join(METHODS)}")
    return METHODS[cfg.method.name](pre.encoder(), cfg, pre)

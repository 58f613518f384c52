"""`trends contrastive`: SimCLR pretraining with a kNN monitor every epoch, then the honest comparisons.

Reads top-down: the data and its views → the model → the method (its step: two augmented views of each image, one
NT-Xent step on both) → the shared pretraining loop (trends.vision.pretraining: the epochs, the kNN monitor, the
linear probe, the baselines, the plots and the summary). The whole dataset sits on the training device as uint8;
the views are made there (trends.contrastive.augment).

Under torchrun `train.batch_size` stays the global batch: each rank embeds its share, the embeddings are gathered
so that every view still has 2·(batch_size - 1) negatives, and gradients flow back to the rank that made them.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from trends.contrastive import plots as view_plots
from trends.contrastive.augment import two_views
from trends.contrastive.loss import nt_xent
from trends.contrastive.models import SimCLR
from trends.contrastive.optim import build_optimizer
from trends.core.distributed import gather_with_gradient
from trends.records.run import Run
from trends.vision.pretraining import Method, Pretraining


def main(cfg: DictConfig, run: Run) -> None:
    pre = Pretraining(cfg, run)  # the loop on its device, the seed, the image sets there
    aug = OmegaConf.merge(cfg.aug, {"size": cfg.aug.size or pre.data.pretrain.images.shape[-1]})
    model = pre.place(SimCLR(pre.encoder(), cfg.model.head_hidden, cfg.model.out_dim))
    optimizer = build_optimizer(cfg.optim, model, fused=pre.device.type == "cuda")
    run.update(view_size=aug.size)
    pre.train(SimCLRMethod(model, optimizer, aug, cfg.loss.temperature, pre))


class SimCLRMethod(Method):
    """SimCLR's step: two random views of each image, pulled together by NT-Xent against every other view of the
    global batch."""
    label, shared_loss = "SimCLR", True  # NT-Xent over the gathered global batch: one value on every rank

    def __init__(self, model: SimCLR, optimizer: torch.optim.Optimizer, aug: DictConfig, temperature: float,
                 pre: Pretraining):
        self.model, self.optimizer, self.aug, self.temperature = model, optimizer, aug, temperature
        self.share = pre.dist.per_rank_batch(pre.cfg.train.batch_size)  # this rank's images of the global batch
        self.test, self.seed = pre.data.test, pre.cfg.seed
        self.loss_title = f"NT-Xent loss (temperature {temperature})"

    def loss(self, images, generator, forward):
        first, second = two_views(images, self.aug, generator)
        z = forward(torch.cat([first, second]))
        z1, z2 = gather_with_gradient(z[:self.share]), gather_with_gradient(z[self.share:])  # the global batch
        return nt_xent(z1, z2, self.temperature), {}

    def plots(self, folder, train, evaluations):
        originals = self.test.images[::max(1, len(self.test) // 8)][:8]  # strided: folders list class by class
        generator = torch.Generator(device=originals.device).manual_seed(self.seed)
        view_plots.view_pairs(folder / "views.png", originals, *two_views(originals, self.aug, generator))

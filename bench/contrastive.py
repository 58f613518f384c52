"""Benchmark `trends contrastive`: training images/s with the augmentation included, for both encoders, and the
same step fed by a torchvision-transforms DataLoader (the usual SimCLR pipeline) for comparison.

    python bench/contrastive.py                    # small_cnn and resnet18, batched views vs DataLoader
    python bench/contrastive.py --steps 5 --no-loader
    python bench/contrastive.py --device cuda      # on a GPU: both encoders at batch 512, bf16
    python bench/contrastive.py --threads 1        # per-core numbers on a shared machine

An "image" is one source image per step (two views each), the unit lightly's benchmarks report.
Random uint8 images stand in for CIFAR-10 (speed does not depend on the pixels).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trends.contrastive.augment import two_views  # noqa: E402
from trends.contrastive.loss import nt_xent  # noqa: E402
from trends.contrastive.models import SimCLRModel  # noqa: E402
from trends.contrastive.optim import build_optimizer  # noqa: E402
from trends.core.device import describe, resolve_device  # noqa: E402
from trends.core.modules import num_params  # noqa: E402
from trends.core.precision import choose_precision  # noqa: E402
from trends.vision.encoders import build_encoder  # noqa: E402
from trends.vision.normalize import Normalize  # noqa: E402


def config(overrides: list[str]):
    with initialize_config_dir(str(REPO / "trends" / "conf"), version_base="1.3"):
        return compose("contrastive", overrides=overrides)


class TwoViews(torch.utils.data.Dataset):
    """The per-image torchvision pipeline with the same SimCLR parameters (what a DataLoader worker runs)."""

    def __init__(self, images: torch.Tensor, aug):
        from torchvision.transforms import v2

        self.images = images
        self.transform = v2.Compose([
            v2.RandomResizedCrop(32, scale=tuple(aug.scale), ratio=tuple(aug.ratio), antialias=True),
            v2.RandomHorizontalFlip(aug.flip),
            v2.RandomApply([v2.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue)], p=aug.jitter_p),
            v2.RandomGrayscale(aug.grayscale_p),
            v2.ToDtype(torch.float32, scale=True)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.transform(self.images[i])


def bench(encoder: str, batch: int, steps: int, device: torch.device, loader_workers: int | None,
          amp="auto") -> dict:
    """images/s of full SimCLR steps; views from trends' batched augmentation, or from a DataLoader."""
    cfg = config([f"model={encoder}", f"train.batch_size={batch}", "aug.size=32"])
    precision = choose_precision(device, amp)
    torch.manual_seed(0)
    images = torch.randint(0, 256, ((steps + 2) * batch, 3, 32, 32), dtype=torch.uint8)
    prepare = Normalize.fit(images, channels_last=True)
    model = SimCLRModel(build_encoder(cfg.model), *cfg.method.projector).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optim, model)
    generator = torch.Generator(device=device).manual_seed(0)

    if loader_workers is None:
        on_device = images.to(device)
        batches = ((two_views(on_device[i * batch:(i + 1) * batch], cfg.aug, generator)) for i in range(steps + 2))
    else:
        loader = torch.utils.data.DataLoader(TwoViews(images, cfg.aug), batch_size=batch, shuffle=True,
                                             num_workers=loader_workers, drop_last=True,
                                             persistent_workers=loader_workers > 0,
                                             pin_memory=device.type == "cuda")
        batches = ((a.to(device, non_blocking=True), b.to(device, non_blocking=True)) for a, b in loader)

    def step(first, second):
        with precision.autocast():
            z = model(prepare(torch.cat([first, second])))
        loss = nt_xent(z[:batch], z[batch:], cfg.method.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    tic = None
    for i, (first, second) in enumerate(batches):
        if i == 2:  # two warm-up steps (allocators, oneDNN/cuDNN kernel choice, worker start-up)
            tic = time.perf_counter()
        step(first, second)
    seconds = time.perf_counter() - tic
    return {"params_M": num_params(model.encoder) / 1e6, "images_per_s": steps * batch / seconds}


def augment_only(batch: int, device: torch.device, steps: int = 10) -> float:
    """images/s (two views each) of the batched augmentation alone."""
    aug = config(["aug.size=32"]).aug  # null in the config means "the images' own size"
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    two_views(images, aug, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    for _ in range(steps):
        two_views(images, aug, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the comparison")
    parser.add_argument("--no-loader", action="store_true", help="skip the DataLoader comparison")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cpu = device.type == "cpu"
    print(f"device: {describe(device)}")
    default_batch = config([]).train.batch_size
    print(f"batched augmentation alone (batch {default_batch}): {augment_only(default_batch, device):,.0f} "
          "images/s (two views each)\n")
    print(f"{'encoder':10s} {'views from':32s} {'batch':>5s} {'params':>8s} {'images/s':>9s}")
    for encoder, batch in (("small_cnn", default_batch), ("resnet18", 64 if cpu else 512)):
        sources = [("batched on " + device.type, None)]
        if not args.no_loader:
            sources.append((f"DataLoader, {args.workers} workers", args.workers))
        for name, workers in sources:
            r = bench(encoder, batch, args.steps if encoder == "small_cnn" or not cpu else 3, device, workers)
            print(f"{encoder:10s} {name:32s} {batch:5d} {r['params_M']:7.2f}M {r['images_per_s']:9,.0f}", flush=True)


if __name__ == "__main__":
    main()

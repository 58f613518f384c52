"""Image datasets as whole uint8 tensors, so a demo can put them on the training device once and augment there
(airbench's recipe: no DataLoader between the reader and the loop).

Sources: CIFAR-10 (torchvision download into the data root), any ImageFolder tree (`train/` and `test/` with one
folder per class; image_folder.py), and a synthetic set for smoke runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from omegaconf import DictConfig

from trends.core.data import cache_dir, data_root, is_writable
from trends.errors import UserError
from trends.vision import image_folder


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, 3, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    classes: list[str]
    skipped: list[str] = field(default_factory=list)  # 'path: reason' of each file the reader could not decode

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> "ImageSet":
        return replace(self, images=self.images[index], labels=self.labels[index])

    def to(self, device) -> "ImageSet":
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))


def skipped_files(*sets: ImageSet, first: int = 5) -> dict:
    """For summary.json: how many files the reader skipped and the first few of them (nothing when none were)."""
    skipped = [s for images in sets for s in images.skipped]
    return {"skipped_files": len(skipped), "skipped_first": skipped[:first]} if skipped else {}


def load_image_sets(cfg: DictConfig) -> tuple[ImageSet, ImageSet]:
    """(train, test) for `data.name` in cifar10 | imagefolder | synthetic."""
    if cfg.name == "cifar10":
        return _cifar10(data_root(cfg.root)), _cifar10(data_root(cfg.root), train=False)
    if cfg.name == "imagefolder":
        root = Path(cfg.path).expanduser() if cfg.path else None
        if root is None or not root.is_dir():
            raise UserError(f"data.path={cfg.path} is not a folder; give a folder with train/ and test/ "
                            "sub-folders of class folders (ImageFolder layout)")
        train, test = image_folder.load(root, cfg.image_size, cfg.max_unreadable)  # (checked in core/config.py)
        return ImageSet(*train), ImageSet(*test)
    if cfg.name == "synthetic":
        return (synthetic(cfg.train_size, cfg.num_classes, cfg.image_size, seed=0),
                synthetic(cfg.test_size, cfg.num_classes, cfg.image_size, seed=1))
    raise UserError(f"data.name={cfg.name} is not known; use cifar10, imagefolder or synthetic")


def torchvision_dataset(cls, root: Path, extracted: str, archive: str, alternative: str, **kwargs):
    """`cls(folder, **kwargs)` for a torchvision dataset: read from the root if it has `extracted/`, download into it
    if writable, else into the cache; offline, one error naming the archive to put where."""
    folder = root if (root / extracted).is_dir() or is_writable(root) else cache_dir() / "data"
    try:
        return cls(str(folder), download=not (folder / extracted).is_dir(), **kwargs)
    except (OSError, RuntimeError) as err:
        raise UserError(f"{cls.__name__} data is not in {folder} and could not be downloaded ({err}).\n"
                        f"Put {archive} (or its extracted {extracted}/) in {folder}, or use {alternative}") from None


def _cifar10(root: Path, train: bool = True) -> ImageSet:
    from torchvision.datasets import CIFAR10

    ds = torchvision_dataset(CIFAR10, root, "cifar-10-batches-py", "cifar-10-python.tar.gz",
                             "data=imagefolder data.path=DIR", train=train)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes))


def synthetic(n: int, num_classes: int, size: int, seed: int) -> ImageSet:
    """Learnable toy images: each class is a colour and a stripe orientation, plus noise and a random shift."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    colours = torch.rand(num_classes, 3, 1, 1, generator=torch.Generator().manual_seed(1234))
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    angles = torch.arange(num_classes) * torch.pi / num_classes
    shift = torch.randint(0, size, (n, 1, 1), generator=g)
    stripes = torch.sin((xx * torch.cos(angles[labels])[:, None, None] + yy * torch.sin(angles[labels])[:, None, None]
                         + shift) * 0.8)
    images = colours[labels] * (0.6 + 0.4 * stripes[:, None]) + 0.15 * torch.randn(n, 3, size, size, generator=g)
    images = (images.clamp(0, 1) * 255).to(torch.uint8)
    return ImageSet(images, labels, [f"class{i}" for i in range(num_classes)])


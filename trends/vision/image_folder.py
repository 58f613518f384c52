"""A user's own ImageFolder tree (`train/<class>/**`, `test/<class>/**`: an image in a sub-folder of a class folder is
of that class, as torchvision reads it) decoded once into uint8 tensors and cached.

Real folders mix sizes, modes and the odd broken file: every image is turned to RGB and, given `data.image_size=N`,
resized on its shorter side to N and centre-cropped to N×N at decode time; files that cannot be decoded are skipped,
named in the log and counted, and only stop the run when a class ends up empty or too many of them are broken.
"""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from trends.core.checkpoint import save_checkpoint
from trends.core.data import cache_dir
from trends.errors import UserError

log = logging.getLogger(__name__)

# torchvision's ImageFolder extensions, so a folder that loads there loads here.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
CACHE_VERSION = 2  # bump when the decoding changes, so caches of the old decoding are not reused


def load(root: Path, image_size: int | None, max_unreadable: float) -> list[tuple]:
    """(images, labels, classes, skipped) of `root`'s train and test splits; `skipped` lists 'path: reason' of
    every file that could not be decoded."""
    listing = {split: _list(root / split) for split in ("train", "test")}
    key = hashlib.sha256(f"v{CACHE_VERSION} size={image_size}\n".encode())
    for classes, files in listing.values():
        key.update("\n".join(f"{f}:{s.st_size}:{s.st_mtime_ns}" for f, _ in files for s in [f.stat()]).encode())
    cached = cache_dir() / "vision" / f"{root.name}-{key.hexdigest()[:16]}.pt"
    saved = _read_cache(cached)
    if saved is None:
        saved = _decode(root, listing, image_size, max_unreadable)
        save_checkpoint(cached, saved)  # atomic: a run killed mid-save never leaves a half-written cache
    for split in ("train", "test"):  # every run, cached or not: the user should not forget what was left out
        if saved[split]["skipped"]:
            log.warning("skipped %d of %d files under %s that are not readable images (first: %s)",
                        len(saved[split]["skipped"]), len(listing[split][1]), root / split, saved[split]["skipped"][0])
    return [(saved[s]["images"], saved[s]["labels"], listing[s][0], list(saved[s]["skipped"]))
            for s in ("train", "test")]


def _list(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and (file, label) pairs, as torchvision's ImageFolder finds them: a class is a sub-folder of
    `folder`, and every image anywhere under it, in sub-folders too, is of that class. Hidden entries (.DS_Store,
    macOS's ._ twins and __MACOSX folders) are not the user's images."""
    if not folder.is_dir():
        raise UserError(f"{folder} is missing; an ImageFolder root needs train/ and test/ sub-folders")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    files = [(f, i) for i, c in enumerate(classes) for f in _images_under(folder / c)]
    if not files:
        raise UserError(f"no images under {folder}/<class>/ (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return classes, files


def _images_under(class_dir: Path) -> list[Path]:
    """Every image file under a class folder, at any depth, in ImageFolder's order (folders by path, then files by
    name); links are followed, as ImageFolder follows them."""
    walked = []
    for root, dirs, names in os.walk(class_dir, followlinks=True):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        walked.append((root, names))
    return [Path(root) / n for root, names in sorted(walked) for n in sorted(names)
            if Path(n).suffix.lower() in IMAGE_SUFFIXES and not _hidden(n) and (Path(root) / n).is_file()]


def _hidden(name: str) -> bool:
    return name.startswith((".", "__MACOSX"))


def _read_cache(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        if all(saved[s]["images"].dtype == torch.uint8 for s in ("train", "test")):
            return saved
    except Exception as err:  # noqa: BLE001 — a truncated or foreign file fails in many ways; all mean "decode again"
        log.warning("image cache %s is unreadable (%s: %s); decoding the images again", path, type(err).__name__, err)
    return None


def _decode(root: Path, listing: dict, image_size: int | None, max_unreadable: float) -> dict:
    log.info("decoding the images under %s (once; cached in %s)", root, cache_dir() / "vision")
    saved, size = {}, image_size and (image_size, image_size)
    for split, (classes, files) in listing.items():
        arrays, labels, skipped = [], [], []
        for path, label in files:
            try:
                array = _read(path, image_size)
            except _Unreadable as err:
                skipped.append(f"{path}: {err}")
                log.warning("skipped %s: %s", path, err)
                continue
            size = size or array.shape[:2]  # no data.image_size: the first image's size is the target
            if array.shape[:2] != size:
                (h, w), (first_h, first_w) = array.shape[:2], size
                raise UserError(f"images under {root} differ in size ({first_w}×{first_h}, then {w}×{h} in "
                                f"{path.relative_to(root)});\nset data.image_size=N to resize and centre-crop them all "
                                "to N×N")
            arrays.append(array)
            labels.append(label)
        _check_skips(root / split, classes, files, labels, skipped, max_unreadable)
        saved[split] = {"images": torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(),
                        "labels": torch.tensor(labels, dtype=torch.long), "skipped": skipped}
    return saved


def _check_skips(folder: Path, classes: list[str], files: list, labels: list[int], skipped: list[str],
                 max_unreadable: float) -> None:
    if len(skipped) > max_unreadable * len(files):
        raise UserError(f"{len(skipped)} of {len(files)} files under {folder} are not readable images (more than "
                        f"data.max_unreadable={max_unreadable}), e.g. {skipped[0]}\nfix or remove them, or raise "
                        "data.max_unreadable")
    found = set(labels)
    empty = [c for i, c in enumerate(classes) if i not in found]
    if empty:
        raise UserError(f"class folder(s) {', '.join(empty)} under {folder} hold no readable image; add images or "
                        "remove the folder")


class _Unreadable(Exception):
    """A file to skip; the message says why."""


def _read(path: Path, image_size: int | None) -> np.ndarray:
    """(H, W, 3) uint8, upright per EXIF, resized on the shorter side to `image_size` and centre-cropped."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if path.stat().st_size == 0:
        raise _Unreadable("empty file (0 bytes)")
    try:
        with Image.open(path) as img, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's palette-transparency and EXIF warnings, once per file: noise
            img.load()  # decode now: a truncated file fails here, not halfway through training
            img = ImageOps.exif_transpose(img)
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")  # PIL's own route for palettes with a transparent colour
            img = img.convert("RGB")  # greyscale, palette, RGBA (alpha dropped), CMYK
            if image_size:
                img = ImageOps.fit(img, (image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(img)
    except UnidentifiedImageError:
        raise _Unreadable(f"not an image, though named {path.suffix}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise _Unreadable(f"unreadable ({err})") from None

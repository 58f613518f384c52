"""A user's own ImageFolder (trends/vision/image_folder.py): mixed sizes and modes load at data.image_size, broken
files are skipped and reported, a corrupted cache is decoded again, and the errors a user can fix say how."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import run_dirs, shared, summary, trends
from omegaconf import OmegaConf
from PIL import Image

from trends.errors import UserError
from trends.vision.data import load_image_sets

# A seconds-long contrastive run on a folder of ~20 images per class (the smoke preset, sized for them).
SMALL_RUN = ("contrastive", "--smoke", "data=imagefolder", "train.batch_size=16", "eval.knn_k=5",
             "eval.embedding_points=16", "eval.probe.epochs=2")


def _noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "CMYK": 4}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def make_folder(root: Path, per_class: int = 20, sizes=((20, 16), (24, 24), (16, 30))) -> Path:
    """train/ and test/ with two classes of noise images cycling through `sizes` and JPEG/PNG."""
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for c in ("cats", "dogs"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                w, h = sizes[i % len(sizes)]
                _noise(w, h, seed=i).save(root / split / c / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


def add_messy_files(folder: Path) -> dict[str, Path]:
    """The files a real folder holds besides good RGB images; returns the three that cannot be read."""
    _noise(18, 22, seed=7, mode="L").save(folder / "grey.png")
    _noise(22, 18, seed=8, mode="RGBA").save(folder / "alpha.png")
    _noise(20, 20, seed=9, mode="RGB").convert("P").save(folder / "palette.png")
    _noise(20, 20, seed=10, mode="CMYK").save(folder / "print.jpg")
    _noise(64, 64, seed=11).save(folder / "whole.jpg", quality=95)
    data = (folder / "whole.jpg").read_bytes()
    (folder / "whole.jpg").unlink()
    bad = {"truncated": folder / "cut.jpg", "empty": folder / "empty.jpg", "text": folder / "notes.jpg"}
    bad["truncated"].write_bytes(data[: len(data) * 2 // 3])
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("not a picture, only a name that says so\n")
    (folder / ".DS_Store").write_bytes(b"\0\1")  # hidden: not counted at all
    return bad


def image_cfg(root: Path, **values) -> OmegaConf:
    return OmegaConf.create({"name": "imagefolder", "path": str(root), "image_size": None, "max_unreadable": 0.1,
                             **values})


def test_messy_folder_trains_and_reports_what_it_skipped(workdir):
    root = make_folder(workdir / "photos")
    bad = add_messy_files(root / "train" / "cats")
    result = trends(*SMALL_RUN, f"data.path={root}", "data.image_size=16", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(workdir, "contrastive")
    report = summary(run)
    assert report["status"] == "completed" and report["view_size"] == 16
    assert report["pretrain_images"] == 2 * 20 + 4 and report["test_images"] == 2 * 10  # grey, RGBA, palette, CMYK
    assert report["skipped_files"] == 3
    assert sorted(s.split(":")[0] for s in report["skipped_first"]) == sorted(str(p) for p in bad.values())
    logged = result.stdout + result.stderr + "".join(p.read_text() for p in run.glob("*.log"))
    assert f"skipped {bad['text']}: not an image" in logged
    assert f"skipped {bad['empty']}: empty file" in logged
    assert f"skipped {bad['truncated']}: unreadable" in logged


def test_vit_vs_cnn_reads_a_mixed_folder_too(workdir):
    root = make_folder(workdir / "photos")
    add_messy_files(root / "train" / "dogs")
    result = trends("vit-vs-cnn", "--smoke", "data=imagefolder", f"data.path={root}", "data.image_size=16",
                    "data.fractions=[1.0]", "train.steps=4", "train.batch_size=8", "train.log_every=2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(workdir, "vit-vs-cnn")
    assert summary(run)["skipped_files"] == 3 and summary(run)["train_images"] == {"1": 44}


def test_corrupted_cache_is_decoded_again(workdir):
    root = make_folder(workdir / "photos", per_class=8)
    args = (*SMALL_RUN, f"data.path={root}", "data.image_size=12", "train.batch_size=4")
    assert trends(*args, cwd=workdir).returncode == 0
    (cached,) = (workdir / "cache" / "trends" / "vision").glob("*.pt")
    cached.write_bytes(cached.read_bytes()[:100])  # as a full disk or a killed copy leaves it
    again = trends(*args, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "decoding the images again" in again.stdout + again.stderr
    assert len(run_dirs(workdir, "contrastive")) == 2 and summary(run_dirs(workdir, "contrastive")[1])["status"] \
        == "completed"
    assert cached.stat().st_size > 1000  # rewritten whole


def test_mixed_sizes_without_image_size_give_the_hint(workdir):
    root = make_folder(workdir / "photos", per_class=4)
    result = trends("contrastive", "data=imagefolder", f"data.path={root}", cwd=workdir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = result.stderr[result.stderr.index("error:"):].strip().splitlines()
    assert len(message) <= 2 and "data.image_size=N" in message[-1] and "differ in size" in message[0]
    assert not list((workdir / "outputs").glob("contrastive/*"))


def test_one_size_loads_as_it_is_without_image_size(workdir):
    root = make_folder(workdir / "photos", per_class=4, sizes=((24, 20),))
    train, test = load_image_sets(image_cfg(root))
    assert train.images.shape == (8, 3, 20, 24) and test.images.shape == (4, 3, 20, 24) and not train.skipped


def test_image_size_resizes_the_shorter_side_and_crops_the_centre(workdir):
    root = workdir / "photos"
    for split in ("train", "test"):
        (root / split / "a").mkdir(parents=True)
        # a wide image: left third black, middle white, right third black; centre crop keeps the white middle
        pixels = np.zeros((10, 30, 3), dtype=np.uint8)
        pixels[:, 10:20] = 255
        Image.fromarray(pixels).save(root / split / "a" / "wide.png")
    train, _ = load_image_sets(image_cfg(root, image_size=5))
    assert train.images.shape == (1, 3, 5, 5) and train.images.min() > 200


def test_cache_key_holds_the_target_size(workdir):
    root = make_folder(workdir / "photos", per_class=4)
    assert load_image_sets(image_cfg(root, image_size=8))[0].images.shape[-1] == 8
    assert load_image_sets(image_cfg(root, image_size=12))[0].images.shape[-1] == 12
    assert len(list((workdir / "cache" / "trends" / "vision").glob("*.pt"))) == 2


def test_too_many_unreadable_files_stop_with_the_key_to_raise(workdir):
    root = make_folder(workdir / "photos", per_class=4)
    add_messy_files(root / "train" / "cats")
    with pytest.raises(UserError, match=r"3 of 15 files .* data\.max_unreadable") as err:
        load_image_sets(image_cfg(root, image_size=8))
    assert len(str(err.value).splitlines()) == 2
    train, _ = load_image_sets(image_cfg(root, image_size=8, max_unreadable=0.5))
    assert len(train) == 12 and len(train.skipped) == 3


def test_a_class_with_no_readable_image_is_an_error(workdir):
    root = make_folder(workdir / "photos", per_class=4)
    for f in (root / "test" / "dogs").iterdir():
        f.write_bytes(b"")
    with pytest.raises(UserError, match="dogs .* no readable image"):
        load_image_sets(image_cfg(root, image_size=8, max_unreadable=1.0))


def test_images_in_sub_folders_of_a_class_belong_to_it_as_torchvision_reads_them(workdir):
    """A class folder sorted into sub-folders (by date, by source) is one class, as torchvision's ImageFolder reads
    it: its images are found at any depth, in ImageFolder's order, and hidden folders are still left out."""
    from torchvision.datasets import ImageFolder

    source = shared("cifar10_jpg", "train")
    root = workdir / "photos"
    layout = {"cat": ["", "2024", "2024/summer", "phone"], "dog": ["scans", "scans/old"]}  # dog: only in sub-folders
    for split in ("train", "test"):
        for name, folders in layout.items():
            images = sorted((source / name).iterdir())
            for i, folder in enumerate(folders):
                (root / split / name / folder).mkdir(parents=True, exist_ok=True)
                for image in images[2 * i:2 * i + 2]:
                    shutil.copy(image, root / split / name / folder / image.name)
    (root / "train" / "cat" / ".thumbnails").mkdir()
    shutil.copy(next((source / "cat").iterdir()), root / "train" / "cat" / ".thumbnails" / "thumb.jpg")
    train, test = load_image_sets(image_cfg(root))
    assert train.classes == ["cat", "dog"] and len(train) == len(test) == 2 * 4 + 2 * 2  # two images a folder
    (root / "train" / "cat" / ".thumbnails" / "thumb.jpg").unlink()  # torchvision would read it: compare without
    expected = ImageFolder(str(root / "train"))
    assert train.classes == expected.classes
    assert train.labels.tolist() == expected.targets  # every image at any depth, labelled by its class, same order
    first_nested = next(i for i, (path, _) in enumerate(expected.samples) if "summer" in path)
    assert np.array_equal(train.images[first_nested].permute(1, 2, 0).numpy(),
                          np.asarray(expected.loader(expected.samples[first_nested][0])))

"""trends contrastive: the loss, the views, the evaluations, and short runs through the CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from helpers import REPO, cifar_sample, run_dirs, trends
from trends.contrastive import augment
from trends.vision.evaluate import linear_probe
from trends.contrastive.loss import nt_xent
from trends.vision.encoders import SmallCNN, resnet18_cifar
from trends.contrastive.optim import LARS, build_optimizer
from trends.vision.data import synthetic
from trends.vision.knn import knn_accuracy, knn_predict

AUG = OmegaConf.create({"size": 16, "scale": [0.2, 1.0], "ratio": [0.75, 1.3333], "flip": 0.5, "brightness": 0.4,
                        "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "jitter_p": 0.8, "grayscale_p": 0.2,
                        "rotation": 0.0})


# -- loss ----------------------------------------------------------------------------------------------------------
def direct_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """The SimCLR paper's formula, one anchor at a time: view i's positive is view i ± N."""
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        positive = (i + n2 // 2) % n2
        numerator = math.exp(float(z[i] @ z[positive]) / temperature)
        denominator = sum(math.exp(float(z[i] @ z[k]) / temperature) for k in range(n2) if k != i)
        total += -math.log(numerator / denominator)
    return total / n2


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_direct_formula(temperature):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    assert nt_xent(z1, z2, temperature).item() == pytest.approx(direct_nt_xent(z1, z2, temperature), rel=1e-5)
    # scale-free (the projections are normalised) and symmetric in the two views
    assert nt_xent(3 * z1, z2, temperature).item() == pytest.approx(nt_xent(z1, z2, temperature).item(), rel=1e-5)
    assert nt_xent(z2, z1, temperature).item() == pytest.approx(nt_xent(z1, z2, temperature).item(), rel=1e-5)


def test_nt_xent_is_low_when_views_agree_and_negatives_differ():
    z = torch.eye(6)
    assert nt_xent(z, z, 0.1).item() < 1e-3  # positive at cos 1, every negative at cos 0
    assert nt_xent(z, torch.roll(z, 1, dims=0), 0.1).item() > 5  # each view matches another image's view


# -- augmentation --------------------------------------------------------------------------------------------------
def test_views_have_per_image_parameters_and_stay_in_range():
    images = synthetic(64, 4, 16, seed=0).images
    same = images[:1].expand(64, -1, -1, -1).contiguous()  # one image 64 times: every view should differ
    first, second = augment.two_views(same, AUG, torch.Generator().manual_seed(0))
    assert first.shape == (64, 3, 16, 16) and first.dtype == torch.float32
    assert 0 <= first.min() and first.max() <= 1
    distinct = {tuple(v.flatten()[:40].tolist()) for v in first}
    assert len(distinct) == 64
    assert not torch.equal(first, second)
    # greyscale picks about grayscale_p of the views: their three channels are equal
    grey = (first.std(dim=1).amax(dim=(1, 2)) < 1e-6).float().mean().item()
    assert 0.05 < grey < 0.45


def test_resized_crop_flip_identity_and_flip():
    x = torch.rand(4, 3, 8, 8)
    full = augment.resized_crop_flip(x, 8, (1.0, 1.0), (1.0, 1.0), 0.0)  # whole image, no flip
    torch.testing.assert_close(full, x, atol=1e-5, rtol=0)
    flipped = augment.resized_crop_flip(x, 8, (1.0, 1.0), (1.0, 1.0), 1.0)
    torch.testing.assert_close(flipped, x.flip(3), atol=1e-5, rtol=0)


def test_color_steps_match_torchvision_where_nothing_clips():
    from torchvision.transforms.v2 import functional as TF

    x = 0.3 + 0.3 * torch.rand(2, 3, 8, 8)  # mid-range pixels: no step saturates
    for kind in ("brightness", "contrast", "saturation"):
        strengths = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, kind: 0.25}
        g = torch.Generator().manual_seed(1)
        out = augment.color_distort(x, **strengths, hue=0.0, jitter_p=1.0, grayscale_p=0.0, generator=g)
        # replay the same draws: jitter choice, then brightness, contrast, saturation, hue factors, greyscale choice
        g = torch.Generator().manual_seed(1)
        torch.rand(2, generator=g)
        draws = {name: 1 - s + 2 * s * torch.rand(2, generator=g) for name, s in strengths.items()}
        adjust = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
                  "saturation": TF.adjust_saturation}[kind]
        expected = torch.stack([adjust(x[i], draws[kind][i].item()) for i in range(2)])
        torch.testing.assert_close(out, expected, atol=2e-3, rtol=0)


def test_hue_rotation_keeps_greys_and_luma():
    angle = torch.tensor([0.0, 1.0, -2.5])
    m = augment.hue_rotation(angle)
    torch.testing.assert_close(m[0], torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(m @ torch.ones(3), torch.ones(3, 3), atol=1e-5, rtol=0)
    luma = torch.tensor(augment.LUMA)
    torch.testing.assert_close(luma @ m, luma.expand(3, 3), atol=1e-5, rtol=0)


def test_quarter_turns_turn_the_asked_fraction_by_whole_quarters():
    x = torch.rand(400, 3, 8, 8)
    assert augment.quarter_turns(x, 0.0) is x  # off: no random numbers drawn, default runs unchanged
    out = augment.quarter_turns(x, 0.5, torch.Generator().manual_seed(0))
    turns = [next(k for k in range(4) if torch.equal(o, torch.rot90(i, k, dims=(1, 2)))) for i, o in zip(x, out)]
    counts = torch.bincount(torch.tensor(turns), minlength=4)
    assert 160 < counts[0] < 240 and all(40 < c < 100 for c in counts[1:]), counts  # ≈ 200, then ≈ 67 each


# -- models --------------------------------------------------------------------------------------------------------
def test_encoders_give_feature_vectors():
    assert SmallCNN(8, [16, 32], 2)(torch.rand(2, 3, 32, 32)).shape == (2, 32)
    net = resnet18_cifar()
    assert net.conv1.stride == (1, 1) and isinstance(net.maxpool, torch.nn.Identity)  # the CIFAR stem
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_lars_moves_each_weight_by_a_fixed_fraction_of_its_norm():
    weight, bias = torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4))
    weight.grad, bias.grad = 100 * torch.randn(4, 3), torch.randn(4)
    before_w, before_b = weight.detach().clone(), bias.detach().clone()
    LARS([{"params": [weight], "weight_decay": 0.0, "lars": True},
          {"params": [bias], "weight_decay": 0.0, "lars": False}], lr=0.5, trust_coefficient=0.01).step()
    step = (weight.detach() - before_w).norm() / before_w.norm()
    assert step.item() == pytest.approx(0.5 * 0.01, rel=1e-4)  # whatever the gradient's scale
    torch.testing.assert_close(bias.detach(), before_b - 0.5 * bias.grad)  # plain SGD for biases


@pytest.mark.parametrize("name", ["sgd", "lars", "adamw"])
def test_every_optimizer_config_builds(name):
    with initialize_config_dir(str(REPO / "trends" / "conf"), version_base="1.3"):
        cfg = compose("contrastive", overrides=[f"optim={name}"])
    optimizer = build_optimizer(cfg.optim, SmallCNN(8, [16], 2))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [cfg.optim.weight_decay, 0.0]


# -- evaluation ----------------------------------------------------------------------------------------------------
def test_knn_on_a_separable_toy_set():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(3, 16, generator=g), dim=1) * 5
    labels = torch.arange(300) % 3
    bank = centres[labels] + 0.3 * torch.randn(300, 16, generator=g)
    query_labels = torch.arange(60) % 3
    queries = centres[query_labels] + 0.3 * torch.randn(60, 16, generator=g)
    assert knn_accuracy(bank, labels, queries, query_labels, 3, k=50, temperature=0.1) == 1.0
    # weighted votes: one very close neighbour of class 1 outvotes many far ones of class 0 at a low temperature
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    near_first = torch.tensor([[1.0, 0.05]])
    assert knn_predict(bank, torch.tensor([1, 0, 0, 0]), near_first, 2, k=4, temperature=0.05).item() == 1
    assert knn_predict(bank, torch.tensor([1, 0, 0, 0]), near_first, 2, k=4, temperature=100.0).item() == 0


def test_linear_probe_leaves_the_encoder_untouched():
    train, test = synthetic(256, 4, 16, seed=0), synthetic(128, 4, 16, seed=1)
    encoder = SmallCNN(8, [16, 32], 2)
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}  # weights and BN running statistics
    probe = OmegaConf.create({"epochs": 20, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.0})
    acc = linear_probe(encoder, lambda u8: u8.float() / 255, train, test, probe, batch_size=100, seed=0)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert encoder.training  # mode restored
    assert acc > 0.5  # 4 classes: chance is 0.25


# -- runs ----------------------------------------------------------------------------------------------------------
def test_smoke_through_the_cli(workdir, cli):
    code, output = cli("contrastive", "--smoke")
    assert code == 0, output
    (run_dir,) = run_dirs(workdir, "contrastive")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["headline"] == "knn_acc"
    metrics = summary["metrics"]
    for key in ("knn_acc", "random_init_knn_acc", "probe_acc", "random_init_probe_acc", "supervised_acc",
                "images_per_s"):
        assert isinstance(metrics[key], float), key
    assert {p.name for p in (run_dir / "plots").iterdir()} == {"knn.png", "loss.png", "embedding.png", "views.png"}
    knn = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in knn if r["split"] == "knn"] == [0, 1, 2]  # epoch 0: the random-init encoder

    # --resume with more epochs continues from the checkpoint instead of starting over
    code, output = cli("contrastive", "--resume", str(run_dir), "--epochs", "3")
    assert code == 0, output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed"] == 1 and summary["total_steps"] == 3 * summary["steps_per_epoch"]
    knn = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in knn if r["split"] == "knn"] == [0, 1, 2, 3]


def test_bad_data_path_is_one_line_and_exit_2(workdir):
    result = trends("contrastive", "data=imagefolder", f"data.path={workdir / 'nowhere'}", cwd=workdir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (message,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "data.path" in message and "ImageFolder" in message
    assert not list((workdir / "outputs").glob("contrastive/*"))  # nothing half-written


def test_short_real_run_beats_the_random_init_encoder(workdir, cli):
    """A few CIFAR-10 images (200 per class to pretrain on, 100 per class as queries), a small encoder, ~12 CPU-s.
    (It measured +9 points over the random-init encoder; the bar here is +3.)"""
    cifar = cifar_sample(workdir / "cifar", train_per_class=200, test_per_class=100)
    code, output = cli("contrastive", "data=imagefolder", f"data.path={cifar}", "--epochs", "4",
                       "train.batch_size=128", "optim=adamw", "optim.lr=3e-3", "model.stem=16",
                       "model.widths=[32,64,128]", "eval.knn_every=4", "eval.probe.epochs=0")
    assert code == 0, output
    (run_dir,) = run_dirs(workdir, "contrastive")
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    assert metrics["knn_acc"] > metrics["random_init_knn_acc"] + 0.03, metrics

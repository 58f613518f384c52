"""`trends contrastive method=…`: each method's loss against a hand computation, the momentum targets, the queue,
and every method through the CLI. Exact resume of a momentum method (BYOL) after Ctrl-C, and two processes against
one, are in test_distributed.py."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import torch.nn as nn

from trends.contrastive.compare import analyse
from trends.contrastive.loss import barlow_twins, dino_loss, info_nce, negative_cosine, vicreg
from trends.contrastive.methods import METHODS, MoCoModel
from trends.contrastive.momentum import cosine_momentum, ema_update, frozen_copy
from trends.records.layout import job_folders

# Four rows whose two columns are ±1 patterns: each column has mean 0 and std 1 over the batch, and the columns are
# orthogonal — standardised, decorrelated features.
ORTHOGONAL = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def test_barlow_twins_is_zero_on_identical_decorrelated_views_and_counts_each_broken_term():
    assert barlow_twins(ORTHOGONAL, ORTHOGONAL, lambd=0.005).item() == pytest.approx(0.0, abs=1e-4)
    # Opposite views: C = −I, each diagonal term (1 − (−1))² = 4, two dimensions.
    assert barlow_twins(ORTHOGONAL, -ORTHOGONAL, lambd=0.005).item() == pytest.approx(8.0, rel=1e-4)
    # Both columns equal: C = [[1, 1], [1, 1]], the diagonal perfect, two off-diagonal terms of 1 each, weighed by λ.
    same = ORTHOGONAL[:, :1].repeat(1, 2)
    assert barlow_twins(same, same, lambd=0.5).item() == pytest.approx(0.5 * 2, rel=1e-4)
    assert barlow_twins(3 * ORTHOGONAL + 7, ORTHOGONAL, lambd=0.005).item() == pytest.approx(0.0, abs=1e-4)


def test_vicreg_variance_term_on_collapsed_features_and_covariance_on_correlated_ones():
    collapsed = torch.ones(8, 4)
    loss, terms = vicreg(collapsed, collapsed, invariance=25, variance=25, covariance=1, eps=1e-4)
    # Every dimension's std is √eps = 0.01: the hinge max(0, 1 − 0.01) = 0.99, half of it per branch; nothing else.
    assert terms["variance"].item() == pytest.approx(0.99, rel=1e-5)
    assert terms["invariance"].item() == 0 and terms["covariance"].item() == 0
    assert loss.item() == pytest.approx(25 * 0.99, rel=1e-5)
    # Two identical columns with (sample) variance v: one off-diagonal pair of v each, squared, over D = 2, per branch.
    same = ORTHOGONAL[:, :1].repeat(1, 2)
    v = 4 / 3
    _, terms = vicreg(same, same, 25, 25, 1, eps=0.0)
    assert terms["covariance"].item() == pytest.approx(2 * (2 * v ** 2 / 2), rel=1e-5)
    assert terms["variance"].item() == 0  # std √(4/3) > 1: no hinge
    _, terms = vicreg(ORTHOGONAL, ORTHOGONAL + 1, 25, 25, 1)
    assert terms["invariance"].item() == pytest.approx(1.0)  # MSE of a shift by 1


def test_dino_centring_and_sharpening_by_hand():
    # The teacher sees the centre itself: after centring its target is uniform, and the student's cross-entropy to
    # a uniform target over K prototypes is log K when the student is uniform too.
    k = 5
    centre = torch.randn(k)
    teacher = [centre.repeat(3, 1), centre.repeat(3, 1)]
    student = [torch.zeros(3, k), torch.zeros(3, k)]
    assert dino_loss(student, teacher, centre, 0.1, 0.04).item() == pytest.approx(math.log(k), rel=1e-5)
    # Centring removes a shift every teacher output shares.
    t = [torch.randn(3, k), torch.randn(3, k)]
    s = [torch.randn(3, k), torch.randn(3, k)]
    shifted = [x + 10 for x in t]
    assert dino_loss(s, shifted, torch.full((k,), 10.0), 0.1, 0.04).item() == pytest.approx(
        dino_loss(s, t, torch.zeros(k), 0.1, 0.04).item(), rel=1e-5)
    # Two prototypes, one pair each way: the teacher's target softmax([2, 0] / 1) against the student's own.
    target = torch.softmax(torch.tensor([2.0, 0.0]), 0)
    log_student = torch.log_softmax(torch.tensor([0.0, 1.0]) / 0.5, 0)
    expected = -(target * log_student).sum().item()
    one = [torch.tensor([[0.0, 1.0]])]
    assert dino_loss(one * 2, [torch.tensor([[2.0, 0.0]])] * 2, torch.zeros(2), 0.5, 1.0).item() == pytest.approx(
        expected, rel=1e-5)


def test_info_nce_by_hand_and_negative_cosine_stops_the_target_gradient():
    q, k, queue = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # logits [cos(q, k), cos(q, n1), cos(q, n2)] / T = [1, 0, −1] / 0.5, the positive first
    logits = torch.tensor([2.0, 0.0, -2.0])
    assert info_nce(q, k, queue, 0.5).item() == pytest.approx(-torch.log_softmax(logits, 0)[0].item(), rel=1e-6)
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    z = torch.tensor([[3.0, 0.0], [1.0, 0.0]], requires_grad=True)
    loss = negative_cosine(p, z)
    assert loss.item() == pytest.approx(-(1.0 + 0.0) / 2)
    loss.backward()
    assert z.grad is None and p.grad is not None


def test_ema_update_and_the_momentum_schedule():
    online = nn.Linear(2, 2)
    target = frozen_copy(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for p in online.parameters():
            p.fill_(1.0)
        for p in target.parameters():
            p.zero_()
    ema_update(target, online, momentum=0.9)
    assert all(torch.allclose(p, torch.full_like(p, 0.1)) for p in target.parameters())
    ema_update(target, online, momentum=0.9)
    assert all(torch.allclose(p, torch.full_like(p, 0.19)) for p in target.parameters())
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)


def test_the_moco_queue_is_a_ring_buffer():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    encoder.dim = 3
    model = MoCoModel(encoder, [8, 2], queue=5)
    model.enqueue(torch.ones(3, 2))
    model.enqueue(2 * torch.ones(3, 2))  # wraps: rows 3, 4, then 0
    assert model.queue[:, 0].tolist() == [2, 1, 1, 2, 2] and int(model.pointer) == 1
    assert {name for name, _ in model.named_buffers()} >= {"queue", "pointer"}  # in the checkpoint


SMOKE = ["--smoke", "train.epochs=1", "eval.probe.epochs=0", "eval.supervised.epochs=0"]


def test_every_method_runs_through_the_cli_and_the_sweep_compares_them(workdir, cli):
    others = [m for m in METHODS if m != "simclr"]  # the smoke preset's SimCLR runs in test_contrastive.py
    code, output = cli("contrastive", *SMOKE, "-m", f"method={','.join(others)}")
    assert code == 0, output
    (sweep,) = (workdir / "outputs" / "contrastive" / "multirun").iterdir()
    summaries = [json.loads((job / "summary.json").read_text()) for job in job_folders(sweep)]
    assert [s["method"] for s in summaries] == others
    for s in summaries:
        assert s["status"] == "completed", s
        assert 0.0 < s["metrics"]["knn_acc"] <= 1.0 and math.isfinite(s["metrics"]["final_loss"])
    # One table and one figure of them all, in the sweep's order, each row the job's own numbers.
    compared = json.loads((sweep / "summary.json").read_text())
    assert [r["method"] for r in compared["methods"]] == others and compared["left_out"] == []
    for row, s in zip(compared["methods"], summaries):
        assert row["knn_acc"] == s["metrics"]["knn_acc"] and row["seeds"] == 1 and row["knn_acc_std"] == 0.0
        assert row["duration_s"] == s["duration_s"] and row["images_per_s"] == s["metrics"]["images_per_s"]
    best = max(compared["methods"], key=lambda r: r["knn_acc"])
    assert compared["finding"].startswith(f"{best['method']} leads with kNN accuracy {best['knn_acc']:.3f}")
    assert (sweep / "plots" / "methods.png").stat().st_size > 10_000 and (sweep / "methods.md").is_file()

    # A second seed of the first method (its job folder copied, its numbers moved): that row becomes the mean ± the
    # sample std of the two, the others stay one seed each.
    first = job_folders(sweep)[0]
    second = sweep / str(len(others))
    shutil.copytree(first, second)
    moved = json.loads((second / "summary.json").read_text())
    a = moved["metrics"]["knn_acc"]
    moved["seed"], moved["metrics"]["knn_acc"] = 1, a + 0.02
    (second / "summary.json").write_text(json.dumps(moved))
    rows = {r["method"]: r for r in analyse(sweep)["methods"]}
    assert list(rows) == others and rows[others[0]]["seeds"] == 2 and rows[others[1]]["seeds"] == 1
    assert rows[others[0]]["knn_acc"] == pytest.approx(a + 0.01, abs=1e-4)
    assert rows[others[0]]["knn_acc_std"] == pytest.approx(0.02 / math.sqrt(2), abs=1e-4)
    assert f"{rows[others[0]]['knn_acc']:.3f} ± 0.014" in (sweep / "methods.md").read_text()

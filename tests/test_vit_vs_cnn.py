"""`trends vit-vs-cnn`: subsets, model costs, a short real run on CIFAR-10 JPEGs, the CLI (smoke, multirun, Ctrl-C)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from helpers import cifar_sample, reference_then_interrupted, run_dirs
from trends.core.modules import num_params
from trends.vision.subsets import nested_stratified_subsets
from trends.vit_vs_cnn.models import CCT, ViT, ResNet, flops_per_image
from trends.vit_vs_cnn.report import closed_share, crossover, gap_trend
from trends.vit_vs_cnn.train import Batches


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are too small to gain from a second thread, and on a machine other jobs load, two OpenMP
    threads waiting on each other make every small op many times slower: keep runs, in- and out-of-process, on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


def test_fractions_are_stratified_and_nested():
    labels = torch.tensor([0] * 500 + [1] * 300 + [2] * 200)[torch.randperm(1000)]
    subsets = nested_stratified_subsets(labels, [0.05, 0.3, 1.0], seed=0)
    for f, index in subsets.items():
        counts = torch.bincount(labels[index], minlength=3).tolist()
        assert counts == [round(f * 500), round(f * 300), round(f * 200)]  # class proportions kept
        assert len(set(index.tolist())) == len(index)
    assert set(subsets[0.05].tolist()) < set(subsets[0.3].tolist()) < set(subsets[1.0].tolist())
    assert subsets[1.0].tolist() == list(range(1000))
    again = nested_stratified_subsets(labels, [0.3], seed=0)[0.3]
    assert torch.equal(again, subsets[0.3])
    assert not torch.equal(nested_stratified_subsets(labels, [0.3], seed=1)[0.3], subsets[0.3])
    with pytest.raises(ValueError):
        nested_stratified_subsets(labels, [0.0], seed=0)


def test_resnet_parameters_and_flops_by_hand():
    model = ResNet(widths=[4, 8], blocks=[1, 1], num_classes=10)
    # stem: 3×3 conv 3→4 (no bias) + BN(4); block 4→4: two 3×3 convs + two BNs; block 4→8 stride 2: 3×3 4→8,
    # 3×3 8→8, 1×1 shortcut 4→8, three BNs(8); linear 8→10.
    params = (27 * 4 + 8) + 2 * (36 * 4 + 8) + (36 * 8 + 72 * 8 + 4 * 8 + 3 * 16) + (8 * 10 + 10)
    assert num_params(model) == params == 1454
    # 2 FLOPs per multiply-add, on an 8×8 image: 64 output positions before the stride, 16 after.
    flops = 2 * (27 * 4 * 64 + 2 * 36 * 4 * 64 + 36 * 8 * 16 + 72 * 8 * 16 + 4 * 8 * 16 + 8 * 10)
    assert flops_per_image(model, 8) == flops == 79520


def test_vit_parameters_and_flops_by_hand():
    model = ViT(image_size=8, patch=4, dim=8, depth=1, heads=2, mlp_ratio=2.0, dropout=0.0, pool="cls",
                num_classes=10)
    tokens = 4 + 1  # a 2×2 grid of patches + the class token
    patch = 48 * 8 + 8
    block = 2 * 16 + (8 * 24 + 24) + (8 * 8 + 8) + (8 * 16 + 16) + (16 * 8 + 8)  # 2 LNs, qkv, proj, MLP
    assert num_params(model) == patch + 8 + tokens * 8 + block + 16 + (8 * 10 + 10) == 1146
    matmuls = 2 * tokens * (8 * 24 + 8 * 8 + 8 * 16 + 16 * 8)  # qkv, proj, MLP
    attention = 2 * 2 * tokens * tokens * 8  # QKᵀ and AV, all heads together
    flops = 2 * 48 * 8 * 4 + matmuls + attention + 2 * 8 * 10
    assert flops_per_image(model, 8) == flops == 9152


def test_cct_parameters_flops_and_tokens_by_hand():
    model = CCT(image_size=8, conv_widths=[4], kernel=3, dim=8, depth=1, heads=2, mlp_ratio=2.0, dropout=0.0,
                pool="seq", num_classes=10)
    # tokenizer: 3×3 conv 3→4 and 4→8 (no biases), each followed by a stride-2 max-pool: 8×8 → 4×4 → 2×2 = 4 tokens
    tokenizer = 27 * 4 + 36 * 8
    block = 2 * 16 + (8 * 24 + 24) + (8 * 8 + 8) + (8 * 16 + 16) + (16 * 8 + 8)  # as the ViT's
    seq_pool = 8 + 1  # one score per token, no class token
    assert model.encoder.cls is None
    assert num_params(model) == tokenizer + 4 * 8 + block + 16 + seq_pool + (8 * 10 + 10) == 1143
    convs = 2 * (27 * 4 * 64 + 36 * 8 * 16)  # at 8×8, then at 4×4 after the first pool
    matmuls = 2 * 4 * (8 * 24 + 8 * 8 + 8 * 16 + 16 * 8)
    flops = convs + matmuls + 2 * 2 * 4 * 4 * 8 + 2 * 4 * 8 + 2 * 8 * 10  # + attention, pooling scores, head
    assert flops_per_image(model, 8) == flops == 27872
    odd = CCT(image_size=10, conv_widths=[4], kernel=3, dim=8, depth=1, heads=2, mlp_ratio=2.0, dropout=0.0,
              pool="seq", num_classes=10)  # 10 → 5 → 3: each pool rounds up
    assert odd.encoder.pos.shape == (1, 9, 8) and odd(torch.zeros(2, 3, 10, 10)).shape == (2, 10)


def test_sequence_pooling_weighs_the_tokens_by_a_softmax():
    encoder = CCT(image_size=8, conv_widths=[], kernel=3, dim=8, depth=0, heads=2, mlp_ratio=2.0, dropout=0.0,
                  pool="seq", num_classes=3).encoder  # 8×8 → one pool → 16 tokens; depth 0: no blocks
    tokens = torch.randn(2, 16, 8)
    with torch.no_grad():
        encoder.pos.zero_()
        normed = encoder.ln(tokens)
        weights = encoder.score(normed).softmax(dim=1)  # (2, 16, 1): one weight per token, summing to 1
        assert torch.allclose(weights.sum(dim=1), torch.ones(2, 1))
        assert torch.allclose(encoder(tokens), encoder.head((weights * normed).sum(dim=1)), atol=1e-6)


def test_closed_share_of_the_vits_gap():
    table = {"resnet": {"1": 0.80}, "vit": {"1": 0.60}, "cct": {"1": 0.75}}
    assert closed_share(table, "cct", "1") == 0.75  # 15 of the 20 points
    assert closed_share({**table, "vit": {"1": 0.85}}, "cct", "1") is None  # the ViT is not behind: nothing to close


def test_batches_cover_every_item_once_per_pass_and_are_pure():
    batches = Batches(n=10, batch_size=4, seed=3)
    stream = torch.cat([batches.indices(s) for s in range(5)]).tolist()  # 20 items: two whole passes
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert Batches(10, 4, seed=3).indices(3).tolist() == batches.indices(3).tolist()


def test_the_gap_trend_names_its_peak_and_how_much_it_narrows_after():
    sizes = [1000, 5000, 10000, 50000]
    assert gap_trend(sizes, [0.16, 0.197, 0.169, 0.127]) == "peaks at 5,000 images, then narrows by 7.0 points"
    assert gap_trend(sizes, [0.20, 0.18, 0.15, 0.12]) == "narrows with more data, by 8.0 points"
    assert gap_trend(sizes, [0.10, 0.12, 0.15, 0.17]) == "widens with more data"
    assert gap_trend(sizes, [0.10, 0.10, 0.10, 0.10]) == "stays the same"
    assert gap_trend(sizes[:1], [0.1]) == "n/a (one fraction)"


def test_crossover_is_interpolated_in_log_size():
    assert crossover([100, 1000, 10000], [0.5, 0.6, 0.7], [0.3, 0.4, 0.5]) is None
    assert math.isclose(crossover([100, 10000], [0.5, 0.6], [0.4, 0.7]), 1000)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One short real grid on CIFAR-10 JPEGs: 300 training and 100 test images per class (symlinked, so only 4000
    images are decoded), tiny contenders, 60 steps of 32 images per cell."""
    from typer.testing import CliRunner

    from trends.cli.main import app

    root = tmp_path_factory.mktemp("vit_vs_cnn_real")
    cifar = cifar_sample(root / "cifar", train_per_class=300, test_per_class=100)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.delenv("TRENDS_OUTPUTS", raising=False)
        result = CliRunner().invoke(app, [
            "vit-vs-cnn", "data=imagefolder", f"data.path={cifar}", "data.fractions=[0.3,1.0]",
            "model.resnet.widths=[8,16,32]", "model.vit.dim=32", "model.vit.depth=2", "model.vit.heads=2",
            "train.steps=60", "train.batch_size=32", "train.log_every=20"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(root, "vit-vs-cnn")
    return run, json.loads((run / "summary.json").read_text())


def test_short_real_run_beats_chance_for_both_models(real_run):
    _, summary = real_run
    assert summary["status"] == "completed"
    for model in ("resnet", "vit"):
        assert summary["metrics"][f"acc/{model}/1"] > 0.15, summary["table"]  # chance: 0.10 ± 0.01 on 1000 images


def test_summary_holds_the_model_by_fraction_table(real_run):
    run, summary = real_run
    assert summary["headline"] == "gap/1"
    assert set(summary["table"]) == {"resnet", "vit"} and set(summary["table"]["vit"]) == {"0.3", "1"}
    for model, row in summary["table"].items():
        for fraction, acc in row.items():
            assert summary["metrics"][f"acc/{model}/{fraction}"] == acc
    assert summary["metrics"]["gap/1"] == pytest.approx(summary["table"]["resnet"]["1"] - summary["table"]["vit"]["1"])
    assert summary["train_images"] == {"0.3": 900, "1": 3000} and summary["test_images"] == 1000
    for model in ("resnet", "vit"):
        assert summary["models"][model]["params"] > 0 and summary["models"][model]["images_per_s"] > 0
    assert (run / "plots" / "accuracy_vs_data.png").stat().st_size > 0


# The data curve's budget on synthetic images: one pass over each cell's subset, but at least 8 steps.
CURVE = ["--smoke", "data.fractions=[0.1,1.0]", "train.steps=null", "train.epochs=1", "train.min_steps=8"]


def test_smoke_grid_then_each_cell_alone_as_a_multirun(workdir, cli):
    code, output = cli("vit-vs-cnn", *CURVE, "models=[resnet,vit,cct,hybrid]")
    assert code == 0, output
    assert "CNN − ViT" in output and "cct closes" in output
    (grid,) = run_dirs(workdir, "vit-vs-cnn")
    summary = json.loads((grid / "summary.json").read_text())
    assert set(summary["table"]) == {"resnet", "vit", "cct", "hybrid"}
    assert {"acc/cct/0.1", "acc/hybrid/0.1", "gap/0.1", "gap/1"} <= set(summary["metrics"])
    # 40 images at batch 32 are 2 steps a pass, raised to 8; 400 images are 13 steps a pass.
    assert [(c["model"], c["images"], c["steps"]) for c in summary["cells"]] == [
        (m, n, steps) for n, steps in ((40, 8), (400, 13)) for m in ("resnet", "vit", "cct", "hybrid")]
    assert summary["budget"] == "1 epochs over each cell's subset, at least 8 steps, batch 32"
    assert set(summary["closes"]) == {"cct", "hybrid"} and set(summary["closes"]["cct"]) == {"0.1", "1"}
    assert summary["gap_peak"]["gap"] == max(summary["gap"].values())
    assert summary["gap_narrowing"] == pytest.approx(summary["gap_peak"]["gap"] - summary["gap"]["1"])

    # Each cell runs on its own and, being seeded by (model, fraction) alone, reproduces its grid result.
    code, output = cli("vit-vs-cnn", *CURVE, "-m", "models=[cct]", "data.fractions=[0.1],[1.0]")
    assert code == 0, output
    jobs = [json.loads((d / "summary.json").read_text()) for d in run_dirs(workdir, "vit-vs-cnn") if d != grid]
    assert sorted(j["headline"] for j in jobs) == ["acc/cct/0.1", "acc/cct/1"]
    for job in jobs:
        assert job["metrics"][job["headline"]] == summary["metrics"][job["headline"]]


def test_the_data_curve_preset_spans_1k_to_50k_images_with_three_contenders(cli):
    code, output = cli("vit-vs-cnn", "experiment=data_curve", "--cfg")
    assert code == 0, output
    cfg = yaml.safe_load(output)
    assert cfg["models"] == ["resnet", "vit", "cct"]
    assert [round(f * 50_000) for f in cfg["data"]["fractions"]] == [1000, 5000, 10000, 25000, 50000]
    assert cfg["train"]["epochs"] and cfg["train"]["steps"] is None and cfg["train"]["min_steps"]


# One cell of 200 steps with a checkpoint every 20: Ctrl-C lands inside the cell, soon after the first one.
ONE_CELL = ["--smoke", "models=[cct]", "data.fractions=[1.0]", "train.steps=200", "train.checkpoint_every=20"]


def test_ctrl_c_mid_cell_then_resume_matches_an_uninterrupted_run(workdir, cli):
    reference, _ = reference_then_interrupted(workdir, "vit-vs-cnn", ONE_CELL, cli)
    (run,) = run_dirs(workdir, "vit-vs-cnn")
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["state"]["results"] == {} and 20 <= saved["state"]["step"] < 200  # stopped inside the (only) cell

    code, output = cli("vit-vs-cnn", "--resume", str(run))
    assert code == 0, output
    final = json.loads((run / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert final["status"] == "completed" and final["resumed"] == 1
    assert final["table"] == expected["table"]
    losses = [[r["loss"] for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
               if r["split"] == "train"] for folder in (run, reference)]
    assert losses[0] == losses[1]  # the record that was open at Ctrl-C is finished after the resume
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if r["split"] == "train"]
    assert steps == sorted(set(steps))  # nothing logged twice across the interruption
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert steps == sorted(steps)  # nothing logged twice across the interruption


@pytest.mark.parametrize("override, named", [("models=[resnet,mlp]", "models="),
                                             ("data.fractions=[0,1.0]", "data.fractions"),
                                             ("train.min_steps=0.5", "train.min_steps")])
def test_bad_grid_is_a_user_error(workdir, cli, override, named):
    code, output = cli("vit-vs-cnn", "--smoke", override)
    assert code == 2 and named in output and "Traceback" not in output
    assert not (workdir / "outputs").exists()  # no half-made run folder left behind, nor the folders above it

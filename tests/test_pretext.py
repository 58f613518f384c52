"""trends pretext: each task's answers on hand-made images, the permutation set, and short runs through the CLI."""
from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from helpers import cifar_sample, reference_then_interrupted, run_dirs, summary, trends
from trends.errors import UserError
from trends.pretext.grid import Grid
from trends.pretext.jigsaw import Jigsaw, min_hamming, permutation_set
from trends.pretext.relative_position import CENTRE, NEIGHBOUR_CELLS, POSITIONS, RelativePosition, position_label
from trends.pretext.rotation import Rotation

GRID = Grid(patch=8, gap=3, jitter=1, input_size=8)  # input_size = patch: patches reach the encoder as cut


def cell_coloured(n: int) -> torch.Tensor:
    """n 32×32 images whose red channel tells each pixel's grid cell (k = 0..8, row-major) as 10·(k+1); the borders
    between cells run through the middle of the gaps, so a patch jittered by at most gap/2 stays in its cell."""
    pitch, start = GRID.patch + GRID.gap, (32 - GRID.span) // 2
    index = ((torch.arange(32) - start + GRID.gap / 2) // pitch).clamp(0, 2).long()  # the cell row/col of a pixel
    cells = index[:, None] * 3 + index[None, :]
    images = torch.zeros(n, 3, 32, 32)
    images[:, 0] = (cells + 1) * 10.0 / 255
    images[:, 1] = torch.rand(n, 1, 1)  # something to tell the images apart
    return images


def cell_of(patch: torch.Tensor) -> int:
    """The grid cell a patch of a cell_coloured image came from (every pixel of it must agree)."""
    values = torch.unique(torch.round(patch[0] * 255 / 10) - 1)
    assert len(values) == 1, f"the patch spans cells {values.tolist()}"
    return int(values)


# -- the tasks' answers --------------------------------------------------------------------------------------------
def test_relative_position_answers_where_the_neighbour_was_cut():
    x = cell_coloured(64)
    inputs, answers = RelativePosition(GRID).ask(x, torch.Generator().manual_seed(0))
    assert inputs.shape == (128, 3, 8, 8) and answers.shape == (64,)
    assert set(answers.tolist()) == set(range(8))  # every position gets asked
    for i, answer in enumerate(answers.tolist()):
        assert cell_of(inputs[2 * i]) == CENTRE
        assert cell_of(inputs[2 * i + 1]) == NEIGHBOUR_CELLS[answer]


def test_position_labels_read_like_the_lecture():
    assert POSITIONS[position_label(-1, -1)] == "upper left"
    assert POSITIONS[position_label(-1, 0)] == "above"
    assert POSITIONS[position_label(0, 1)] == "right"
    assert POSITIONS[position_label(1, 1)] == "lower right"
    with pytest.raises(ValueError):
        position_label(0, 0)


def test_a_patch_pair_at_a_known_offset_gets_that_position():
    """Without jitter: the neighbour sits exactly (patch + gap) pixels from the centre in the asked direction."""
    grid = Grid(patch=8, gap=3, jitter=0, input_size=8)
    x = torch.rand(32, 3, 32, 32)
    inputs, answers = RelativePosition(grid).ask(x, torch.Generator().manual_seed(1))
    centre_top = (32 - grid.span) // 2 + grid.patch + grid.gap
    for i, answer in enumerate(answers.tolist()):
        dy, dx = divmod(int(NEIGHBOUR_CELLS[answer]), 3)
        top, left = centre_top + (dy - 1) * 11, centre_top + (dx - 1) * 11
        assert torch.equal(inputs[2 * i + 1], x[i, :, top:top + 8, left:left + 8])
        assert position_label(dy - 1, dx - 1) == answer


def test_rotation_by_k_quarter_turns_gets_k():
    x = torch.zeros(5, 3, 16, 16)
    x[:, :, :4] = 1.0  # a bright band on top: the sky
    inputs, answers = Rotation(16, 16).ask(x)
    assert inputs.shape == (20, 3, 16, 16)
    for k in range(4):
        block = slice(5 * k, 5 * k + 5)
        assert (answers[block] == k).all()
        assert torch.equal(inputs[block], torch.rot90(x, k, dims=(2, 3)))
    bright = {k: inputs[5 * k, 0].nonzero().float().mean(0).tolist() for k in range(4)}
    assert bright[0][0] < 8 and bright[1][1] < 8 and bright[2][0] > 8 and bright[3][1] > 8  # top, left, bottom, right


def test_rotation_refuses_images_that_are_not_square():
    with pytest.raises(UserError, match="data.image_size"):
        Rotation(24, 32)


def test_a_known_permutation_gets_its_index():
    jigsaw = Jigsaw(GRID, permutations=30)
    x = cell_coloured(40)
    inputs, answers = jigsaw.ask(x, torch.Generator().manual_seed(0))
    assert inputs.shape == (360, 3, 8, 8)
    for i, answer in enumerate(answers.tolist()):
        shown = [cell_of(inputs[9 * i + j]) for j in range(9)]
        assert shown == jigsaw.permutations[answer].tolist()


@pytest.mark.parametrize("k, promised", [(10, 8), (30, 7), (64, 7), (100, 6)])
def test_the_permutations_are_far_apart(k, promised):
    perms = permutation_set(k)
    assert perms.shape == (k, 9)
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == k
    assert min_hamming(perms) >= promised
    random = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(s)) for s in range(k)])
    assert min_hamming(perms) > min_hamming(random)  # the greedy choice beats chance


def test_grid_sizes_scale_with_the_image_and_must_fit():
    cfg = OmegaConf.create({"patch": 8, "gap": 3, "jitter": 1, "input_size": 16})
    assert Grid.for_images(cfg, 32) == Grid(8, 3, 1, 16)
    assert Grid.for_images(cfg, 96) == Grid(24, 9, 3, 48)
    with pytest.raises(UserError, match="3·patch"):
        Grid.for_images(OmegaConf.merge(cfg, {"patch": 10}), 32)


# -- runs ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["relative_position", "rotation", "jigsaw"])
def test_smoke_through_the_cli(workdir, cli, task):
    code, output = cli("pretext", "--smoke", f"task={task}")
    assert code == 0, output
    (run_dir,) = run_dirs(workdir, "pretext")
    recorded = summary(run_dir)
    assert recorded["status"] == "completed" and recorded["headline"] == "knn_acc" and recorded["task"] == task
    metrics = recorded["metrics"]
    for key in ("knn_acc", "random_init_knn_acc", "probe_acc", "random_init_probe_acc", "supervised_acc",
                "pretext_acc", "pretext_chance"):
        assert isinstance(metrics[key], float), key
    assert {p.name for p in (run_dir / "plots").iterdir()} == {"knn.png", "loss.png", "pretext_acc.png",
                                                               "embedding.png", "task.png"}
    evals = [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["split"] == "eval"]
    assert [r["epoch"] for r in evals] == [0, 1, 2]  # epoch 0: the random-init encoder


def test_a_grid_that_does_not_fit_is_one_line_and_exit_2(workdir):
    result = trends("pretext", "--smoke", "task.patch=12", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "3·patch + 2·gap + 2·jitter" in result.stderr
    assert not list((workdir / "outputs").glob("pretext/*"))


def test_ctrl_c_then_resume_matches_an_uninterrupted_run(workdir, cli):
    args = ["--smoke", "task=rotation", "--epochs", "4", "eval.supervised.epochs=0"]
    reference, _ = reference_then_interrupted(workdir, "pretext", args, cli)
    (run,) = run_dirs(workdir, "pretext")
    assert summary(run)["status"] == "interrupted"
    code, output = cli("pretext", "--resume", str(run))
    assert code == 0, output
    final, expected = summary(run), summary(reference)
    assert final["status"] == "completed" and final["resumed"] == 1
    assert final["metrics"] == {**expected["metrics"], "images_per_s": final["metrics"]["images_per_s"]}
    records = [[{k: v for k, v in r.items() if k not in ("images_per_s", "elapsed")}
                for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())]
               for folder in (run, reference)]
    assert records[0] == records[1]  # the same points, none twice


def test_short_real_run_beats_chance_and_the_random_init_encoder(workdir, cli):
    """RotNet on CIFAR-10 images from the shared copy (300 per class to pretrain on, 100 per class as queries), three
    epochs. The task must be learnt (well above chance on held-out images) and the encoder must beat its random init.
    (The patch tasks need longer for a kNN gain; their full runs are in the README.)"""
    cifar = cifar_sample(workdir / "cifar", train_per_class=300, test_per_class=100)
    code, output = cli("pretext", "task=rotation", "data=imagefolder", f"data.path={cifar}", "--epochs", "3",
                       "eval.knn_every=3", "eval.probe.epochs=0")
    assert code == 0, output
    (run_dir,) = run_dirs(workdir, "pretext")
    metrics = summary(run_dir)["metrics"]
    assert metrics["pretext_acc"] > 1.5 * metrics["pretext_chance"], metrics
    assert metrics["knn_acc"] > metrics["random_init_knn_acc"] + 0.02, metrics

"""plots/task.png: a few test images with the question the network was asked, the true answer and its own — the
picture the lecture draws (the grid with two patches, the rotated copies, the shuffled tiles)."""
from __future__ import annotations

from pathlib import Path

import torch

from trends.pretext.relative_position import CENTRE, NEIGHBOUR_CELLS
from trends.records.plots import plt, save

RIGHT, WRONG = "tab:green", "tab:red"


@torch.no_grad()
def questions(path: Path, model, task, images: torch.Tensor, prepare, seed: int) -> Path:
    """images: (n, 3, H, W) uint8 test images. The model is asked in eval mode; its mode is restored."""
    was_training = model.training
    model.eval()
    x = images.float() / 255
    inputs, answers = task.ask(x, torch.Generator(device=images.device).manual_seed(seed))
    predicted = model(prepare(inputs)).argmax(1)
    model.train(was_training)
    inputs, answers, predicted, x = (t.float().cpu() if t.is_floating_point() else t.cpu()
                                     for t in (inputs, answers, predicted, x))
    draw = {"relative_position": _relative_position, "rotation": _rotation, "jigsaw": _jigsaw}[task.name]
    return draw(path, task, x, inputs, answers, predicted)


def _relative_position(path, task, x, inputs, answers, predicted) -> Path:
    n = len(x)
    fig, axes = plt.subplots(n, 2, figsize=(4.6, 2.2 * n), squeeze=False)
    for i in range(n):
        centre, neighbour = inputs[2 * i], inputs[2 * i + 1]
        cells = [None] * 9
        cells[CENTRE] = centre
        cells[int(NEIGHBOUR_CELLS[answers[i]])] = neighbour
        _show(axes[i][0], x[i], "image")
        board = _board(cells, centre.shape[-1])
        _show(axes[i][1], board, f"true: {task.answers[answers[i]]}\nnetwork: {task.answers[predicted[i]]}",
              RIGHT if answers[i] == predicted[i] else WRONG)
        _frame(axes[i][1], int(NEIGHBOUR_CELLS[predicted[i]]), centre.shape[-1],
               RIGHT if answers[i] == predicted[i] else WRONG)
    fig.suptitle("Where does the second patch lie?\n(box: the network's answer)", fontsize=9)
    return save(fig, path)


def _rotation(path, task, x, inputs, answers, predicted) -> Path:
    n, k = len(x), task.classes
    fig, axes = plt.subplots(n, k, figsize=(1.6 * k, 1.7 * n), squeeze=False)
    for i in range(n):
        for r in range(k):
            q = r * n + i  # Rotation.ask stacks every image's k-th turn together
            right = answers[q] == predicted[q]
            _show(axes[i][r], inputs[q], f"turned {task.answers[answers[q]]}\nnetwork: {task.answers[predicted[q]]}",
                  RIGHT if right else WRONG)
    fig.suptitle("By how much was each copy turned?", fontsize=9)
    return save(fig, path)


def _jigsaw(path, task, x, inputs, answers, predicted) -> Path:
    n, side = len(x), inputs.shape[-1]
    fig, axes = plt.subplots(n, 3, figsize=(5.4, 1.9 * n), squeeze=False)
    for i in range(n):
        tiles = inputs[9 * i:9 * i + 9]
        guess = task.permutations[predicted[i]]  # the network's belief: position j shows tile guess[j]
        put_back = [None] * 9
        for j in range(9):
            put_back[int(guess[j])] = tiles[j]
        right = answers[i] == predicted[i]
        _show(axes[i][0], x[i], "image")
        _show(axes[i][1], _board(list(tiles), side), f"shuffled by {task.answers[answers[i]]}")
        _show(axes[i][2], _board(put_back, side), f"put back by the network's\nanswer, {task.answers[predicted[i]]}",
              RIGHT if right else WRONG)
    fig.suptitle(f"Which of the {task.classes} permutations shuffled the tiles?", fontsize=9)
    return save(fig, path)


GAP = 2  # pixels between the cells of a board


def _board(cells: list, side: int) -> torch.Tensor:
    """A 3×3 board of (3, side, side) tiles (None: an empty cell) on a white background."""
    board = torch.ones(3, 3 * side + 2 * GAP, 3 * side + 2 * GAP)
    for k, tile in enumerate(cells):
        if tile is not None:
            r, c = (k // 3) * (side + GAP), (k % 3) * (side + GAP)
            board[:, r:r + side, c:c + side] = tile
    return board


def _frame(ax, cell: int, side: int, colour: str) -> None:
    r, c = (cell // 3) * (side + GAP), (cell % 3) * (side + GAP)
    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), side, side, fill=False, edgecolor=colour, linewidth=2))


def _show(ax, image: torch.Tensor, title: str, colour: str = "black") -> None:
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=7, color=colour)
    ax.set(xticks=[], yticks=[])

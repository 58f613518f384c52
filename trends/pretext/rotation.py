"""RotNet (Gidaris, Singh & Komodakis 2018): rotate each image by 0, 90, 180 and 270 degrees and ask which. To
answer, the network has to know which way up objects stand: where the sky is, that heads sit above feet — the
lecture's house recognised upside down. Every image is asked all four questions in the same batch, as in the paper
(better than one random rotation per image)."""
from __future__ import annotations

import torch

from trends.errors import UserError

ROTATIONS = ("0°", "90°", "180°", "270°")  # counter-clockwise, as torch.rot90


class Rotation:
    name = "rotation"
    classes = len(ROTATIONS)
    inputs_per_question = 1
    answers = ROTATIONS

    def __init__(self, height: int, width: int):
        if height != width:
            raise UserError(f"task=rotation needs square images (these are {width}×{height}): a quarter turn changes "
                            "the shape;\nset data.image_size=N to centre-crop them to N×N")

    def ask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (n, C, S, S) → inputs (4n, C, S, S): all n images turned by k·90°, for k = 0..3; labels (4n,) = k."""
        turned = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(self.classes)])
        labels = torch.arange(self.classes, device=x.device).repeat_interleave(x.shape[0])
        return turned, labels

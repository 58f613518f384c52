"""Knowledge distillation's loss (Hinton et al. 2015): match the teacher's softened distribution, plus the data."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """α·T²·KL(teacher_T ‖ student_T) + (1 − α)·cross-entropy(student, targets), averaged over positions.

    Logits are (..., vocab) and targets (...). Softening both distributions by T shows the student how the teacher
    ranks the wrong characters; it also scales the soft term's gradients by 1/T², which T² undoes, so α weighs the
    two terms alike at any temperature. Computed in fp32 whatever the autocast dtype of the logits."""
    s = student_logits.flatten(0, -2).float()
    t = teacher_logits.flatten(0, -2).float()
    hard = F.cross_entropy(s, targets.flatten())
    if alpha == 0:
        return hard
    soft = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.log_softmax(t / temperature, dim=-1),
                    reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard

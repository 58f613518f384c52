"""The losses of the self-supervised methods, each a pure function of the two views' outputs.

- `nt_xent` (SimCLR): the other view is the positive, every other view of the batch a negative.
- `info_nce` (MoCo): the momentum encoder's key is the positive, a queue of past keys the negatives.
- `negative_cosine` (BYOL, SimSiam): a prediction of the other view's (stopped) projection; no negatives at all.
- `barlow_twins`: the two views' cross-correlation matrix pulled to the identity.
- `vicreg`: invariance + a floor on each dimension's std + decorrelated dimensions, each branch on its own.
- `dino_loss`: the student's distribution matched to the teacher's centred and sharpened one.

All compute in fp32 (bf16 loses the small differences these losses live on); the batch statistics they take
(Barlow Twins' and VICReg's) are over the rows they are given — under torchrun the gathered global batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean NT-Xent over the 2N views.

    z1, z2: (N, D) projections of the two views of the same N images (normalised here, so any scale will do).
    Each view's positive is the other view of its image; the other 2N - 2 views in the batch are its negatives.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # float: bf16 logits lose the small differences that matter
    logits = z @ z.T / temperature  # (2N, 2N) cosine similarities
    logits.fill_diagonal_(float("-inf"))  # a view is not its own negative
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # i ↔ i + N
    return F.cross_entropy(logits, positives)


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: each query q (N, D) against its own key k (N, D, no gradient) as the positive and the K
    queued keys (K, D) as negatives; cross-entropy with the positive at index 0. q and k are normalised here, the
    queue holds normalised keys."""
    q, k = F.normalize(q.float(), dim=1), F.normalize(k.float(), dim=1).detach()
    positive = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
    negatives = q @ queue.float().T  # (N, K)
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """−cos(p, z) averaged over the batch, z's gradient stopped: BYOL's and SimSiam's loss (BYOL writes it as
    2 − 2·cos, the same up to scale and shift). The stop-gradient is what keeps SimSiam from collapsing."""
    return -F.cosine_similarity(p.float(), z.float().detach(), dim=1).mean()


def _standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each dimension to mean 0 and (population) std 1 over the batch."""
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    return m[~torch.eye(len(m), dtype=torch.bool, device=m.device)]


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float) -> torch.Tensor:
    """Σᵢ (1 − Cᵢᵢ)² + λ Σ_{i≠j} Cᵢⱼ² with C the (D, D) cross-correlation of the batch-standardised views: each
    dimension equal across the views (invariance), different dimensions uncorrelated (no redundancy)."""
    n = len(z1)
    c = _standardise(z1.float()).T @ _standardise(z2.float()) / n
    return (1 - torch.diagonal(c)).pow(2).sum() + lambd * _off_diagonal(c).pow(2).sum()


def vicreg(z1: torch.Tensor, z2: torch.Tensor, invariance: float, variance: float, covariance: float,
           eps: float = 1e-4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """VICReg (Bardes et al. 2022, their code's form): `invariance`·MSE(z1, z2) + `variance`·the mean hinge
    max(0, 1 − std) of each dimension (half per branch) + `covariance`·the sum of squared off-diagonal covariances
    over D (per branch). Returns the loss and its three terms, unweighted."""
    z1, z2 = z1.float(), z2.float()
    n, d = z1.shape
    inv = F.mse_loss(z1, z2)
    std1, std2 = torch.sqrt(z1.var(dim=0) + eps), torch.sqrt(z2.var(dim=0) + eps)
    var = F.relu(1 - std1).mean() / 2 + F.relu(1 - std2).mean() / 2
    c1 = (z1 - z1.mean(dim=0)).T @ (z1 - z1.mean(dim=0)) / (n - 1)
    c2 = (z2 - z2.mean(dim=0)).T @ (z2 - z2.mean(dim=0)) / (n - 1)
    cov = _off_diagonal(c1).pow(2).sum() / d + _off_diagonal(c2).pow(2).sum() / d
    loss = invariance * inv + variance * var + covariance * cov
    return loss, {"invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()}


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], centre: torch.Tensor,
              student_temperature: float, teacher_temperature: float) -> torch.Tensor:
    """DINO's cross-entropy between the teacher's centred, sharpened distribution over K prototypes and the
    student's, over every pair of different views (the teacher sees view i, the student view j ≠ i). student,
    teacher: per view (N, K) logits; centre: (K,), the running mean of the teacher's logits."""
    targets = [F.softmax((t.float() - centre) / teacher_temperature, dim=1).detach() for t in teacher]
    logs = [F.log_softmax(s.float() / student_temperature, dim=1) for s in student]
    pairs = [(i, j) for i in range(len(targets)) for j in range(len(logs)) if i != j]
    return sum(-(targets[i] * logs[j]).sum(dim=1).mean() for i, j in pairs) / len(pairs)

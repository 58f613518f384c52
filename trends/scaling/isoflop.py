"""Chinchilla's approach 2 (Hoffmann et al. 2022): at each compute budget, the loss of several sizes traces a valley;
a parabola in log N finds its bottom, the loss-optimal size N_opt(C); across budgets N_opt ∝ C^a (Chinchilla: a ≈ 0.5,
so parameters and tokens grow together, ≈ 20 tokens per parameter)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Valley:
    budget: float  # C, training FLOPs = 6·N·tokens
    sizes: list  # N of each run at this budget, ascending
    losses: list
    n_opt: float  # the parabola's bottom
    loss_opt: float
    inside: bool  # the best measured size is not at either end and the bottom lies within the sizes tried
    curvature: tuple  # the parabola in log N: (a, b, c) of a·(ln N)² + b·ln N + c

    @property
    def tokens_opt(self) -> float:
        return self.budget / (6 * self.n_opt)

    @property
    def tokens_per_param(self) -> float:
        return self.tokens_opt / self.n_opt

    def as_dict(self) -> dict:
        return {"budget": self.budget, "n_opt": round(self.n_opt), "tokens_opt": round(self.tokens_opt),
                "tokens_per_param": round(self.tokens_per_param, 2), "loss_opt": round(self.loss_opt, 4),
                "inside": self.inside, "sizes": self.sizes, "losses": self.losses}


def valley(budget: float, sizes, losses) -> Valley:
    """Fit the parabola to one budget's (N, loss) points (3+ sizes)."""
    order = np.argsort(sizes)
    n, loss = np.asarray(sizes, dtype=float)[order], np.asarray(losses, dtype=float)[order]
    a, b, c = np.polyfit(np.log(n), loss, 2)
    best = int(np.argmin(loss))
    if a > 0:
        log_opt = -b / (2 * a)
        n_opt, loss_opt = math.exp(log_opt), float(c - b * b / (4 * a))
    else:  # no valley (the losses only fall or only rise): the best measured size stands in
        n_opt, loss_opt = float(n[best]), float(loss[best])
    inside = a > 0 and 0 < best < len(n) - 1 and n[0] < n_opt < n[-1]
    return Valley(budget=float(budget), sizes=n.tolist(), losses=loss.tolist(), n_opt=n_opt, loss_opt=loss_opt,
                  inside=bool(inside), curvature=(float(a), float(b), float(c)))


def optimum_exponent(valleys: list[Valley]) -> float:
    """a in N_opt ∝ C^a: the slope of log N_opt against log C (2+ budgets)."""
    slope, _ = np.polyfit(np.log([v.budget for v in valleys]), np.log([v.n_opt for v in valleys]), 1)
    return float(slope)

"""L(x) = E + A·x^(−α): an irreducible loss E plus a power law, fitted by least squares on the losses.

For a fixed α the model is linear in (E, A), so the fit searches α alone (variable projection): a log-spaced grid,
then finer grids around the best point. With a handful of points and three parameters this finds
the global least-squares optimum (to a relative 10^-7 in α), where a generic nonlinear solver started badly can wander off. x is divided by its
geometric mean inside the fit, so the linear solve stays well conditioned for x from 10^4 to 10^20 (FLOPs)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA_RANGE = (1e-3, 3.0)


@dataclass(frozen=True)
class PowerLaw:
    E: float
    A: float
    alpha: float

    def __call__(self, x):
        return self.E + self.A * np.power(np.asarray(x, dtype=float), -self.alpha)


@dataclass(frozen=True)
class Fit:
    law: PowerLaw
    r2: float
    sigma: dict  # parameter → bootstrap standard deviation
    interval: dict  # parameter → (16th, 84th percentile): a 68 % interval

    def as_dict(self) -> dict:
        return {**asdict(self.law), "r2": self.r2, "sigma": self.sigma, "interval": self.interval}


def fit_power_law(x, y) -> PowerLaw:
    """Least-squares E ≥ 0, A > 0, α in ALPHA_RANGE for y ≈ E + A·x^(−α); needs 3+ distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 3:
        raise ValueError("a power law with an offset needs three or more distinct x")
    scale = math.exp(np.log(x).mean())
    u = x / scale
    grid = np.geomspace(*ALPHA_RANGE, 400)
    for _ in range(3):  # the grid, then twice a finer grid between the best point's neighbours
        best = int(np.argmin(_solve_many(u, y, grid)[2]))
        alpha = grid[best]
        grid = np.geomspace(grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)], 100)
    E, A, _ = _solve(u, y, alpha)
    return PowerLaw(E=E, A=float(A * scale ** alpha), alpha=float(alpha))  # A·u^-α = A·scale^α·x^-α


def _solve_many(u: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each α: the best (E, A), with E clipped at 0 (a loss cannot fall below zero), and the squared error.
    The 2×2 normal equations, solved in closed form for all α at once."""
    basis = u[None, :] ** -alphas[:, None]  # (alphas, points)
    n, sb, sbb = len(u), basis.sum(1), (basis * basis).sum(1)
    sy, sby = y.sum(), basis @ y
    det = n * sbb - sb * sb
    E = (sbb * sy - sb * sby) / det
    A = (n * sby - sb * sy) / det
    clipped = E < 0  # the E ≥ 0 bound: refit A alone
    E = np.where(clipped, 0.0, E)
    A = np.where(clipped, sby / sbb, A)
    return E, A, ((E[:, None] + A[:, None] * basis - y[None, :]) ** 2).sum(1)


def _solve(u: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, float, float]:
    E, A, error = _solve_many(u, y, np.array([alpha]))
    return float(E[0]), float(A[0]), float(error[0])


def r_squared(law: PowerLaw, x, y) -> float:
    """1 − residual / total sum of squares, on the losses."""
    y = np.asarray(y, dtype=float)
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - ((law(x) - y) ** 2).sum() / total) if total > 0 else 1.0


def fit_with_uncertainty(x, y, resamples: int = 2000, seed: int = 0) -> Fit:
    """The fit, its R², and the spread of E, A, α under a residual bootstrap: refit to the fitted curve plus the
    residuals drawn with replacement (inflated by √(n/(n−3)) for the three parameters the fit used up). Resampling
    the points themselves would, with 5–10 points, often leave fewer than three distinct sizes."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    law = fit_power_law(x, y)
    fitted = law(x)
    residuals = (y - fitted) * math.sqrt(len(y) / max(len(y) - 3, 1))
    rng = np.random.default_rng(seed)
    draws = np.array([list(asdict(fit_power_law(x, fitted + rng.choice(residuals, len(y)))).values())
                      for _ in range(resamples)]) if resamples else np.empty((0, 3))
    names = list(asdict(law))
    sigma = {n: float(draws[:, i].std()) if len(draws) else 0.0 for i, n in enumerate(names)}
    interval = {n: tuple(float(q) for q in np.percentile(draws[:, i], [16, 84])) if len(draws) else (v, v)
                for i, (n, v) in enumerate(asdict(law).items())}
    return Fit(law=law, r2=r_squared(law, x, y), sigma=sigma, interval=interval)

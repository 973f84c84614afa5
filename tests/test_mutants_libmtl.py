"""Mutation-testing checks of the gradient methods only LibMTL and their papers define (FairGrad, Nash-MTL,
Aligned-MTL, RotoGrad, MoCo, SDMGrad, MoDo, GradNorm, DB-MTL, ExcessMTL, the double-sampling wrapper) and of
the simplex solvers' iterations: hand-computed T = 2 / 3 examples from the papers' equations and LibMTL's
code, the effect of each constant the papers or LibMTL fix (tolerances, iteration counts, defaults)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rw_mtl.weighting import get

T = torch.tensor


def _grads(task_num: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(task_num, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------------------------- FairGrad
def _fairgrad_levenberg_marquardt(gram: np.ndarray, alpha: float, iterations: int = 20) -> np.ndarray:
    """FairGrad's solver as its docstring states it, in numpy: LM in u = log w on M / mean(diag M) from the
    diagonal solution, damping 1e-3 (× 0.3 after a step that lowers ‖r‖, × 10 after one that does not,
    within [1e-12, 1e12]), ridge 1e-12, |u| ≤ 40; w = e^u s^(−α/(1+α))."""
    scale = np.diag(gram).mean()
    matrix, power = gram / scale, 1 / alpha
    u = np.clip(-alpha / (1 + alpha) * np.log(np.maximum(np.diag(matrix), 1e-12)), -40, 40)

    def residual(point):
        return matrix @ np.exp(point) - np.exp(-power * point)

    current, damping = residual(u), 1e-3
    for _ in range(iterations):
        jacobian = matrix * np.exp(u)[None, :] + np.diag(power * np.exp(-power * u))
        normal = jacobian.T @ jacobian
        system = normal + damping * (np.diag(np.diag(normal)) + 1e-12 * np.eye(len(matrix)))
        candidate = np.clip(u + np.linalg.solve(system, -jacobian.T @ current), -40, 40)
        trial = residual(candidate)
        if (trial**2).sum() < (current**2).sum():
            u, current, damping = candidate, trial, max(damping * 0.3, 1e-12)
        else:
            damping = min(damping * 10.0, 1e12)
    return np.exp(u) * scale ** (-alpha / (1 + alpha))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("case", ["zero row", "opposite rows", "rank 1"])
def test_fairgrad_without_exact_solution_stops_where_its_20_damped_steps_reach(case, alpha):
    """Where (G Gᵀ) w = w^(−1/α) has no solution, w is the point 20 LM steps reach (not a converged one:
    rejected steps, the damping's schedule and bounds, the 1e-12 ridge and |log w̃| ≤ 40 all show)."""
    base = _grads(3, dim=6, seed=7)
    grads = {
        "zero row": torch.stack([base[0], torch.zeros(6, dtype=torch.float64), base[1]]),
        "opposite rows": torch.stack([base[0], -base[0], base[1]]),
        "rank 1": torch.outer(T([1.0, 2.0, -0.5], dtype=torch.float64), base[0]),
    }[case]
    method = get("fairgrad")(3, alpha=alpha)
    method.aggregate(grads)
    expected = _fairgrad_levenberg_marquardt((grads @ grads.T).numpy(), alpha)
    torch.testing.assert_close(method.last_weights, torch.from_numpy(expected), rtol=1e-5, atol=0)

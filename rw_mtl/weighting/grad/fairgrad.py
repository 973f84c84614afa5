"""FairGrad, Ban & Ji (ICML 2024): α-fair resource allocation among the tasks."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting

_LOG_BOUND = 40.0  # |log w̃| ≤ 40 on the scaled problem: finite weights where no exact solution exists


class FairGrad(GramWeighting):
    """d = Σ_t w_t g_t with w > 0 solving the optimality system of the paper's α-fair utility maximisation

        (G Gᵀ) w = w^{−1/α}   (element-wise power),

    i.e. the update maximises Σ_t u_t^{1−α} / (1−α) of the tasks' utilities u_t = g_tᵀ d (α = 1: Σ log u_t,
    proportional fairness, the Nash-MTL system). ``alpha`` = 1.0: LibMTL's ``--FairGrad_alpha`` default
    (``LibMTL/config.py``) and the original code's (``OptMN-Lab/fairgrad``, ``experiments/utils.py``); the
    paper tunes α per benchmark (its Table 7), so set ``weighting.grad.hparams.alpha`` per dataset.

    As in LibMTL's ``FairGrad.py`` (scipy ``least_squares`` from w = 1/T, bounds w ≥ 0) w minimises
    ‖M w − w^{−1/α}‖², M = G Gᵀ, here on the device: Levenberg–Marquardt in u = log w (so w stays
    positive), ``iterations`` steps of (JᵀJ + μ diag JᵀJ) δ = −Jᵀr with J = M diag(w) + diag(w^{−1/α})/α,
    each step kept only where it lowers the residual (a select, no host sync), in float64. M is first
    divided by s = mean(diag M): the solution of the scaled system times s^{−α/(1+α)} solves the original,
    so gradients of any scale give the same conditioning. The start is the diagonal solution
    w_t = M̃_tt^{−α/(1+α)}. Where M is singular no exact solution may exist (opposite or zero gradients): the
    iterate is the least-squares point reached within |log w̃| ≤ 40, and w is capped at the largest value of
    G's dtype, so the direction stays finite (all-zero gradients: s is floored at the dtype's smallest
    normal number).
    ``iterations`` = 20 (ours): residuals reach scipy's (≈1e-14) on random matrices up to T = 40 (tests).
    Runs from the Gram matrix alone (``mode: param`` as in LibMTL, which refuses rep gradients; rep and
    last_layer work too). With a loss method g_t is ∇(λ_t ℓ_t).
    """

    def __init__(self, task_num: int, alpha: float = 1.0, iterations: int = 20) -> None:
        super().__init__(task_num)
        if alpha <= 0 or iterations < 1:
            raise ValueError(
                "FairGrad needs alpha > 0 and iterations >= 1 (rw_mtl/conf/weighting/grad/fairgrad.yaml), "
                f"got alpha={alpha}, iterations={iterations}"
            )
        self.alpha, self.iterations = float(alpha), int(iterations)

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        return fair_weights(gram, self.alpha, self.iterations)


def fair_weights(gram: Tensor, alpha: float, iterations: int) -> Tensor:
    """w > 0 minimising ‖M w − w^{−1/α}‖² (FairGrad's system; class docstring for the method)."""
    matrix = gram.detach().double()
    scale = matrix.diagonal().mean().clamp_min(torch.finfo(gram.dtype).tiny)
    matrix = matrix / scale
    inverse_power = 1.0 / alpha
    diagonal = matrix.diagonal().clamp_min(1e-12)
    log_w = (-alpha / (1 + alpha) * diagonal.log()).clamp(-_LOG_BOUND, _LOG_BOUND)

    def residual(u: Tensor) -> Tensor:
        return matrix @ u.exp() - (-inverse_power * u).exp()

    current = residual(log_w)
    damping = torch.full((), 1e-3, dtype=matrix.dtype, device=matrix.device)
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    for _ in range(iterations):
        w = log_w.exp()
        jacobian = matrix * w[None, :] + torch.diag(inverse_power * (-inverse_power * log_w).exp())
        normal = jacobian.T @ jacobian
        system = normal + damping * (torch.diag(normal.diagonal()) + 1e-12 * eye)
        step, _ = torch.linalg.solve_ex(system, -(jacobian.T @ current))
        candidate = (log_w + torch.nan_to_num(step)).clamp(-_LOG_BOUND, _LOG_BOUND)
        trial = residual(candidate)
        better = trial.square().sum() < current.square().sum()
        log_w = torch.where(better, candidate, log_w)
        current = torch.where(better, trial, current)
        damping = torch.where(better, damping * 0.3, damping * 10.0).clamp(1e-12, 1e12)
    weights = log_w.exp() * scale ** (-alpha / (1 + alpha))
    return weights.clamp_max(torch.finfo(gram.dtype).max).to(gram.dtype)

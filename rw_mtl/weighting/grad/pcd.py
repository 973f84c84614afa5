"""Priority-Constrained Descent (PCD), Varam et al. (2026): follow a primary task, guarantee the others."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.dual_cone import nonnegative_qp

#: relative to the largest normalised squared norm: keeps dependent gradients' QP strictly convex; at least
#: the Gram matrix's own relative precision (10 eps of its dtype, TorchJD's ``dependence_tol``)
_RIDGE = 1e-12
_INFEASIBLE = 1e-6  # a constraint violated by more than this (relative) at the QP's answer: none is feasible


class PCD(GramWeighting):
    """d̃ = argmin_d ½‖d − g̃_1‖² subject to g̃_jᵀ d ≥ τ_j ‖g̃_j‖² for every other task j, rescaled to ‖g_1‖:
    the first task (the dataset's first, in its tasks' order) is the primary objective, followed as closely
    as possible while each secondary task keeps a fraction τ of the progress its own normalised gradient
    would give ("Not All Objectives Are Born Equal: Priority-Constrained Descent for Hierarchical
    Multi-Objective Optimization", TMLR 2026; TorchJD's ``PCD``, torchjd/aggregation/_pcd.py).

    g̃_i = s_i g_i, s_i = 1 / √(v̂_i + eps), v̂_i the bias-corrected moving average (decay ``beta``) of ‖g_i‖²
    over the steps (buffers, saved in checkpoints). Defaults are TorchJD's: ``tau`` 0.02 (one number for
    every secondary task, or a list of T − 1), ``beta`` 0.999, ``eps`` 1e-8. ``eps`` is absolute, as in
    TorchJD: gradients with ‖g_i‖² near or below it are not normalised (s_i → 1/√eps for all), so d is not
    homogeneous in G at such scales.

    The QP's dual is a non-negative least-squares problem in the Gram matrix: d̃ = g̃_1 + Σ_j μ_j g̃_j with
    μ = argmin_{μ ≥ 0} ½ μᵀ M̃_ss μ − bᵀμ, b_j = τ_j M̃_jj − M̃_j1 (M̃ the normalised Gram matrix, s the
    secondary tasks). TorchJD solves it on the host with Goldfarb-Idnani's dual active-set method; here the
    device's interior-point solver (``dual_cone.nonnegative_qp``) does, with a ridge of
    max(1e-12, 10 eps(M's dtype)) · max M̃_jj so that linearly dependent secondary gradients keep it strictly
    convex and stay dependent after M's rounding. As in TorchJD: g_1 = 0 gives d = 0;
    constraints that cannot all hold (e.g. two opposite secondary gradients) are dropped, d = g_1 — detected
    here by a constraint still violated by more than max(1e-6, 1e3 · 10 eps of M's dtype) · max M̃_jj at
    the solution (1e-6 in float64, 1.2e-3 in float32); d̃ = 0 up to the Gram matrix's rounding gives d = 0.
    Infeasible constraints violated by less go undetected: two exactly opposite secondary gradients with
    τ below that threshold give d = 0 here (their multipliers cancel), g_1 in TorchJD.
    """

    def __init__(
        self, task_num: int, tau: float | Sequence[float] = 0.02, beta: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(task_num)
        taus = torch.as_tensor(
            [float(tau)] * (task_num - 1) if isinstance(tau, int | float) else list(tau), dtype=torch.float64
        )
        if taus.shape != (task_num - 1,) or not ((taus >= 0) & (taus <= 1)).all():
            raise ValueError(
                f"PCD: weighting.grad.hparams.tau must be a number in [0, 1] or a list of {task_num - 1} "
                f"(one per secondary task), got {tau!r}"
            )
        if not 0 <= beta < 1 or eps < 0:
            raise ValueError(
                f"PCD needs 0 <= beta < 1 and eps >= 0 (weighting.grad.hparams), got {beta}, {eps}"
            )
        self.beta, self.eps = beta, eps
        self.register_buffer("taus", taus)
        self.register_buffer("squared_norm_average", torch.zeros(task_num, dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        exact = gram.to(torch.float64)
        squared_norms = exact.diagonal()
        scales = self._update_scales(squared_norms)
        normalized = exact * scales[:, None] * scales[None, :]
        weights = torch.zeros_like(squared_norms)
        weights[0] = 1.0
        precision = 10 * torch.finfo(gram.dtype).eps
        if self.task_num > 1:
            weights = torch.cat([weights[:1], self._multipliers(normalized, precision)])
        direction_norm2 = weights @ normalized @ weights
        magnitude = (weights.abs() @ normalized.diagonal().clamp_min(0).sqrt()).square()
        rescale = (squared_norms[0] / direction_norm2.clamp_min(torch.finfo(torch.float64).tiny)).sqrt()
        nonzero = (squared_norms[0] > 0) & (direction_norm2 > precision * magnitude)
        return torch.where(nonzero, weights * scales * rescale, 0.0).to(gram.dtype)

    def _update_scales(self, squared_norms: Tensor) -> Tensor:
        """s_i = 1 / √(v̂_i + eps) after this step's update of the moving average (0 where v̂_i + eps = 0)."""
        self.steps += 1
        self.squared_norm_average.mul_(self.beta).add_((1 - self.beta) * squared_norms)
        debiased = self.squared_norm_average / (1 - self.beta ** self.steps.to(torch.float64))
        denominators = (debiased + self.eps).sqrt()
        return torch.where(denominators > 0, 1 / denominators.clamp_min(torch.finfo(torch.float64).tiny), 0.0)

    def _multipliers(self, normalized: Tensor, precision: float) -> Tensor:
        """μ [T − 1] of the secondary constraints (0 everywhere when they cannot all hold). ``precision``:
        the relative precision of the Gram matrix (10 eps of its dtype). Below it, linearly dependent
        gradients look independent — a float32 M of 5 gradients of rank 3 has eigenvalues of ~1e-7 where
        0 is exact — and an infeasible QP looks feasible with multipliers of ~1e5 and d̃ ≈ 0 (d = 0 where
        TorchJD, whose ``dependence_tol`` is this precision, finds it infeasible: d = g_1). A ridge of at
        least that size keeps such gradients dependent."""
        secondary = normalized[1:, 1:]
        bound = self.taus * secondary.diagonal()
        linear = bound - normalized[1:, 0]  # b
        largest = secondary.diagonal().amax().clamp_min(torch.finfo(torch.float64).tiny)
        ridge = max(_RIDGE, precision) * largest
        identity = torch.eye(self.task_num - 1, device=normalized.device, dtype=normalized.dtype)
        mu = nonnegative_qp(secondary + ridge * identity, -linear[None])[0]
        slack = normalized[1:, 0] + secondary @ mu - bound  # g̃_jᵀ d̃ − τ_j ‖g̃_j‖²
        # the ridge leaves the active constraints violated by ridge · μ_j: the threshold stays well above it
        tolerance = max(_INFEASIBLE, 1e3 * precision) * largest
        feasible = (slack >= -tolerance).all() & torch.isfinite(mu).all()
        return torch.where(feasible, mu, 0.0)

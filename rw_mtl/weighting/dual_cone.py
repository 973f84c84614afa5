"""Projections onto the dual cone of the task gradients, computed on the device from the Gram matrix.

UPGrad and DualProj (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024) project
vectors Gᵀu onto the dual cone {x : G x ≥ 0} of the task gradients (the rows of G). By their
Proposition 1 the projection is Gᵀv with v the solution of the quadratic program

    min_v  vᵀ M v   subject to  v ≥ u,        M = G Gᵀ,

so it needs the T×T Gram matrix only. TorchJD (``torchjd/_linalg/_dual_cone.py``, ``QuadprogProjector``)
first normalises M by its trace (M ← 0 when the trace is below ``norm_eps``), adds ``reg_eps`` I, and
solves each problem on the host with quadprog. Here the same normalised, regularised problem is solved on
M's device, batched over all the vectors u at once, with no host synchronisation:

* ``nonnegative_qp`` — a primal-dual interior-point method (Mehrotra's predictor-corrector, as in the
  batched QP solver of OptNet, Amos & Kolter 2017) for min ½xᵀHx + qᵀx, x ≥ 0, run for a fixed
  ``ITERATIONS`` steps, then polished: the constraints it found active are fixed and the resulting
  linear system solved exactly; the polished point is kept wherever it satisfies the optimality
  conditions (it does once the active set is identified), the interior point elsewhere — on two of the
  three T = 40 test problems 20 steps leave the interior point, about 6e-8 relative from the optimum.
  On the random and degenerate Gram matrices of tests/test_torchjd_methods.py the result equals
  quadprog's to 1e-9 relative.
* ``project_weights`` — the dual-cone projection above, with TorchJD's normalisation and regularisation;
* ``DualConeWeighting`` — the GramWeighting base of UPGrad and DualProj (their shared hyperparameters).

The T×T algebra runs in float64 whatever the gradients' dtype (T ≤ a few dozen: negligible work), as
quadprog does.

``norm_eps`` is an absolute threshold on trace M = ‖G‖_F², kept as TorchJD defines it (its default 1e-4):
below it M counts as 0, every constraint holds, and d = Gᵀu unprojected — for G of Frobenius norm below
1e-2 (gradients scaled by 1e-8, say) UPGrad and DualProj return the preference-weighted gradient even where
it conflicts with a task. Their direction is therefore not homogeneous in G across that threshold
(tests/test_grad_properties.py), exactly as TorchJD's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.preference import preference_vector

#: interior-point steps; from the barrier parameter's start, 20 predictor-corrector steps identify the active
#: set of the test problems (T = 2…40, random and degenerate; the polish then makes the answer exact) but two
#: of the T = 40 ones, where the interior point kept is within 6e-8 relative of the optimum
ITERATIONS = 20
_STEP_TO_BOUNDARY = 0.99  # fraction of the way to the boundary an interior-point step may go
_POLISH_TOLERANCE = 1e-9  # relative violation of the optimality conditions a polished point may have


def nonnegative_qp(hessian: Tensor, linear: Tensor, iterations: int = ITERATIONS) -> Tensor:
    """argmin_{x ≥ 0} ½ xᵀ H x + qᵀ x for each row q of ``linear`` [B, T]; ``hessian`` H [T, T] is
    symmetric positive definite. Returns x [B, T] in H's dtype.

    KKT: H x + q = z, x ≥ 0, z ≥ 0, x ⊙ z = 0. Each step solves (H + X⁻¹Z) Δx = −(Hx + q) + (σμ − Δxᵃ ⊙
    Δzᵃ) ⊘ x twice with one Cholesky factor (affine predictor, then the centred corrector with σ =
    (μᵃ/μ)³), and moves x and z at most 99 % of the way to the boundary.
    """
    x = torch.ones_like(linear)
    z = torch.ones_like(linear) * hessian.diagonal().mean().clamp_min(torch.finfo(hessian.dtype).tiny)
    for _ in range(iterations):
        residual = x @ hessian + linear  # H x + q (H symmetric)
        mu = (x * z).mean(dim=1, keepdim=True)
        factor, _ = torch.linalg.cholesky_ex(hessian + torch.diag_embed(z / x))
        dx_affine = torch.cholesky_solve(-residual.unsqueeze(-1), factor).squeeze(-1)
        dz_affine = -z - z / x * dx_affine
        mu_affine = (
            (x + _max_step(x, dx_affine).clamp(max=1.0) * dx_affine)
            * (z + _max_step(z, dz_affine).clamp(max=1.0) * dz_affine)
        ).mean(dim=1, keepdim=True)
        sigma = (mu_affine / mu.clamp_min(torch.finfo(mu.dtype).tiny)).clamp(0.0, 1.0) ** 3
        correction = sigma * mu - dx_affine * dz_affine
        dx = torch.cholesky_solve((-residual + correction / x).unsqueeze(-1), factor).squeeze(-1)
        dz = (correction - x * z - z * dx) / x
        x = x + (_STEP_TO_BOUNDARY * _max_step(x, dx)).clamp(max=1.0) * dx
        z = z + (_STEP_TO_BOUNDARY * _max_step(z, dz)).clamp(max=1.0) * dz
    return _polish(hessian, linear, x, z)


def _max_step(value: Tensor, step: Tensor) -> Tensor:
    """[B, 1]: the largest a with value + a·step ≥ 0 (inf where no entry decreases)."""
    ratios = torch.where(step < 0, -value / step, torch.full_like(value, float("inf")))
    return ratios.amin(dim=1, keepdim=True)


def _polish(hessian: Tensor, linear: Tensor, x: Tensor, z: Tensor) -> Tensor:
    """The exact solution on the active set the interior point indicates (x_i < z_i: x_i = 0), where it
    satisfies the KKT conditions to ``_POLISH_TOLERANCE``; the interior point (clamped at 0) elsewhere."""
    free = (x > z).to(hessian.dtype)
    system = free[:, :, None] * hessian * free[:, None, :] + torch.diag_embed(1 - free)
    polished, _ = torch.linalg.solve_ex(system, -linear * free)
    gradient = polished @ hessian + linear
    x_scale = polished.abs().amax(dim=1, keepdim=True)
    gradient_scale = linear.abs().amax(dim=1, keepdim=True) + hessian.abs().amax() * x_scale
    primal_ok = (polished >= -_POLISH_TOLERANCE * x_scale) | (free == 0)
    dual_ok = (gradient >= -_POLISH_TOLERANCE * gradient_scale) | (free == 1)
    accept = (primal_ok & dual_ok).all(dim=1, keepdim=True) & torch.isfinite(polished).all(
        dim=1, keepdim=True
    )
    return torch.where(accept, polished, x).clamp_min(0.0)


def regularized_gram(gram: Tensor, norm_eps: float, reg_eps: float) -> Tensor:
    """TorchJD's ``regularize(normalize(M, norm_eps), reg_eps)``: M / trace(M) (0 when the trace is at most
    ``norm_eps``) + ``reg_eps`` I, which makes the problem strictly convex. "At most" where TorchJD has
    "below": with ``norm_eps`` 0, a zero G then gives M̃ = ``reg_eps`` I and d = 0, not TorchJD's 0/0 = NaN."""
    trace = gram.diagonal().sum()
    normalized = torch.where(trace <= norm_eps, torch.zeros_like(gram), gram / trace)
    return normalized + reg_eps * torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)


def project_weights(weights: Tensor, gram: Tensor, norm_eps: float, reg_eps: float) -> Tensor:
    """For each row u of ``weights`` [B, T] (or one [T] vector), the v with Gᵀv the projection of Gᵀu onto
    the dual cone of G's rows: argmin_{v ≥ u} vᵀ M̃ v with M̃ = ``regularized_gram(gram, …)``. Solved in
    float64 as x = v − u ≥ 0 (``nonnegative_qp`` with q = M̃ u); returned in ``gram``'s dtype."""
    single = weights.dim() == 1
    u = (weights[None] if single else weights).to(torch.float64)
    hessian = regularized_gram(gram.to(torch.float64), norm_eps, reg_eps)
    projected = u + nonnegative_qp(hessian, u @ hessian)
    projected = projected.to(gram.dtype)
    return projected[0] if single else projected


class DualConeWeighting(GramWeighting):
    """A method whose weights are dual-cone projections of preference-weighted gradients (UPGrad,
    DualProj), from the Gram matrix alone.

    ``pref_vector``: null (1/T for every task, TorchJD's default) or T numbers; ``norm_eps``, ``reg_eps``:
    TorchJD's ``QuadprogProjector`` defaults, 1e-4 each (``regularized_gram``). Runs on θ (``mode:
    param``) as in TorchJD; any mode works, the weights apply to whatever G the step provides.
    """

    def __init__(
        self,
        task_num: int,
        pref_vector: Sequence[float] | None = None,
        norm_eps: float = 1e-4,
        reg_eps: float = 1e-4,
    ) -> None:
        super().__init__(task_num)
        name = type(self).__name__
        if norm_eps < 0 or reg_eps <= 0:
            raise ValueError(
                f"{name} needs norm_eps >= 0 and reg_eps > 0 (weighting.grad.hparams; reg_eps keeps the "
                f"projection problem strictly convex), got norm_eps={norm_eps}, reg_eps={reg_eps}"
            )
        self.norm_eps, self.reg_eps = float(norm_eps), float(reg_eps)
        self.register_buffer("pref", preference_vector(name, task_num, pref_vector, 1.0 / task_num))

    def project(self, weights: Tensor, gram: Tensor) -> Tensor:
        """``project_weights`` with this method's ``norm_eps`` and ``reg_eps``."""
        return project_weights(weights, gram, self.norm_eps, self.reg_eps)

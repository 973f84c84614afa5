"""IMTL-G, the gradient-balancing half of Impartial Multi-Task Learning (Liu et al., 2021b)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting

_PIVOT_RATIO = 1e-10  # LU pivots further apart than this: M is treated as singular
_RELATIVE_RIDGE = 1e-9  # Tikhonov weight, relative to the square of M's scale
_REFINEMENTS = 4  # rounds of iterated Tikhonov


class IMTL_G(GramWeighting):  # noqa: N801 — the method's published name
    """d = Σ_t α_t g_t with Σ α_t = 1 and d·u_t equal for all unit gradients u_t = g_t/‖g_t‖ ("impartial":
    the same projection onto every task).

    Their Eq. 9 (and LibMTL's ``LibMTL/weighting/IMTL.py``) solves for α with an inverse that does not exist
    when two task gradients are collinear or identical. In Gram form the conditions read M α = c n with
    n_t = ‖g_t‖ = √M_tt, so α = M⁺ n / 1ᵀ M⁺ n — the same α as Eq. 9 whenever M is invertible, and for
    linearly dependent gradients the least-squares (pseudo-inverse) solution, which TorchJD's ``IMTLG``
    (``torchjd/aggregation/_imtl_g.py``; Quinton & Rey, 2024) defines; α = 0 if 1ᵀ M⁺ n = 0, as there.

    M⁺ n is computed without a host sync, in float64: where the LU factors of M are regular (smallest pivot
    above 1e-10 of the largest) it is M⁻¹ n; else the minimum-norm least-squares solution by iterated
    Tikhonov regularisation, v ← v + (M² + ε I)⁻¹ M (n − M v), ``_REFINEMENTS`` times from v = 0 with
    ε = 1e-9 (tr M / T)² — each round shrinks the error along an eigenvalue σ of M by ε / (σ² + ε) and
    leaves M's null space empty (eigenvalues below √ε count as zero, like pinv's rcond; rounding leaks
    ~1e-7 into the null space). Runs on the shared representation z (``mode: rep``) as in the paper. With
    IMTL-L as the loss method it is IMTL.
    """

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        if self.task_num == 1:
            return gram.new_ones(1)
        matrix = gram.to(torch.float64)
        norms = matrix.diagonal().clamp_min(0).sqrt()
        factors, pivots, _ = torch.linalg.lu_factor_ex(matrix)
        exact = torch.linalg.lu_solve(factors, pivots, norms[:, None])[:, 0]
        diagonal = factors.diagonal().abs()
        regular = diagonal.min() > _PIVOT_RATIO * diagonal.max()
        solution = torch.where(
            regular & torch.isfinite(exact).all(), exact, self._least_squares(matrix, norms)
        )
        total = solution.sum()
        usable = total.abs() > 1e-12 * solution.abs().sum()
        weights = torch.where(usable, solution / torch.where(usable, total, 1.0), torch.zeros_like(solution))
        return weights.to(gram.dtype)

    def _least_squares(self, matrix: Tensor, target: Tensor) -> Tensor:
        """M⁺ target by iterated Tikhonov regularisation (class docstring)."""
        identity = torch.eye(self.task_num, dtype=matrix.dtype, device=matrix.device)
        ridge = _RELATIVE_RIDGE * matrix.diagonal().mean().square() + 1e-300
        factors, pivots, _ = torch.linalg.lu_factor_ex(matrix @ matrix + ridge * identity)
        solution = torch.zeros_like(target)
        for _ in range(_REFINEMENTS):
            residual = matrix @ (target - matrix @ solution)
            solution = solution + torch.linalg.lu_solve(factors, pivots, residual[:, None])[:, 0]
        return solution

"""IMTL-G, the gradient-balancing half of Impartial Multi-Task Learning (Liu et al., 2021b)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting

# |1ᵀv| below this (v computed on M / max diag M, so of order 1) means no impartial direction exists
# other than 0 — all gradients zero, or pairs that cancel (g, −g) — and α = 0 is returned.
_UNDEFINED = 1e-6


class IMTL_G(GramWeighting):  # noqa: N801 — the method's published name
    """d = Σ_t α_t g_t with Σ α_t = 1 and d·u_t equal for all unit gradients u_t = g_t/‖g_t‖ ("impartial":
    the same projection onto every task).

    Their closed form (Eq. 9) singles out task 1: α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹ with D_t = g_1 − g_t and
    U_t = u_1 − u_t. For linearly independent gradients it equals α = v / 1ᵀv with v = M⁻¹ n, M = G Gᵀ,
    n_t = ‖g_t‖ (then G d ∝ n: every projection d·u_t is the same). Here v = M⁺ n with the pseudo-inverse,
    which also covers what Eq. 9 cannot solve and training does produce — duplicated tasks, more tasks than
    independent directions, a zero gradient (RLW's Bernoulli draws zero some λ_t) — and treats the tasks
    symmetrically: the generalised IMTL-G of Quinton & Rey (2024), "Jacobian Descent for Multi-Objective
    Optimization", as in TorchJD (aggregation/_imtl_g.py). M⁺ uses the default cut-off of
    ``torch.linalg.pinv`` for M's dtype (float32 rounding is not inverted). When no impartial direction but
    0 exists (1ᵀv ≈ 0: zero gradients, cancelling pairs) α = 0.

    The eigendecomposition behind M⁺ checks its LAPACK status, which on a GPU is one host synchronisation
    per step (the closed form's ``linalg.solve`` made the same one). Runs on the shared representation z
    (``mode: rep``) as in the paper. With IMTL-L as the loss method it is IMTL.
    """

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        scaled = gram / gram.diagonal().max().clamp_min(torch.finfo(gram.dtype).tiny)
        norms = scaled.diagonal().clamp_min(0).sqrt()
        v = torch.linalg.pinv(scaled, hermitian=True) @ norms
        total = v.sum()
        defined = total.abs() > _UNDEFINED
        return torch.where(defined, v / torch.where(defined, total, 1.0), torch.zeros_like(v))

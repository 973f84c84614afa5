"""UPGrad, Quinton & Rey (2024): Unconflicting Projection of Gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.dual_cone import DualConeWeighting


class UPGrad(DualConeWeighting):
    """d = Σ_i p_i π(g_i): every task gradient projected onto the dual cone of all of them, then
    combined with the preference weights p (``pref_vector``; null: 1/T each, TorchJD's default).

    π(g) is the point of {x : G x ≥ 0} closest to g, so d conflicts with no task (g_t · d ≥ 0 for every t):
    "Jacobian Descent for Multi-Objective Optimization", Eq. 5 and Proposition 1 — π(Gᵀ p_i e_i) = Gᵀ v_i,
    v_i = argmin_{v ≥ p_i e_i} vᵀ M v — so d = Gᵀ Σ_i v_i and everything runs on the Gram matrix M, as
    TorchJD's ``UPGradWeighting`` (torchjd/aggregation/_upgrad.py). ``norm_eps`` and ``reg_eps`` (1e-4
    each) are its ``QuadprogProjector``'s: M is divided by its trace (zeroed below ``norm_eps``) and
    ``reg_eps`` I is added. LibMTL's UPGrad.py (adapted from TorchJD) is the same method; it refuses rep mode,
    which here is allowed like for every Gram method.
    """

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        preferences = torch.diag(self.pref.to(gram))
        return self.project(preferences, gram).sum(dim=0)

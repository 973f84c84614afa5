"""DualProj: the mean gradient projected onto the dual cone of the task gradients (TorchJD)."""

from __future__ import annotations

from torch import Tensor

from rw_mtl.weighting.dual_cone import DualConeWeighting


class DualProj(DualConeWeighting):
    """d = π(Σ_t p_t g_t): the preference-weighted gradient (``pref_vector``; null: the mean, 1/T each)
    projected onto the dual cone {x : G x ≥ 0}, so that d conflicts with no task.

    The projection of Gᵀp is Gᵀv with v = argmin_{v ≥ p} vᵀ M v (Quinton & Rey 2024, Proposition 1); it is
    the solution of Eq. 11 of Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning"
    (2017), as TorchJD defines DualProj (torchjd/aggregation/_dualproj.py). ``norm_eps`` and ``reg_eps``
    (1e-4 each) are TorchJD's ``QuadprogProjector`` defaults.
    """

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        return self.project(self.pref.to(gram), gram)

"""Gradient Sign Dropout (GradDrop), Chen et al. (2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.interface import PER_TASK, Combination, TaskGradients


class GradDrop(GradWeighting):
    """Per coordinate, keep only the gradients of one sign, chosen at random by the sign purity
    P = ½ (1 + Σ_t g_t / Σ_t |g_t|): positive ones with probability P, negative ones otherwise.

    d = Σ_t (ℓ_t + (1 − ℓ_t) M_t) ⊙ g_t with M_t = [P > U] [g_t > 0] + [P < U] [g_t < 0], U ~ U(0,1) per
    coordinate and leak ℓ_t = ``leak`` (0, the paper's default). Coordinates where every task agrees are
    kept whole. Runs on the shared representation z (``mode: rep``) as in the paper; a coordinate-wise
    method: it returns each task's kept gradient (``per_task``), so it has no task weights
    (``last_weights`` stays None) and works on per-task representations too.
    """

    produces = PER_TASK

    def __init__(self, task_num: int, leak: float = 0.0) -> None:
        super().__init__(task_num)
        if not 0 <= leak <= 1:
            raise ValueError(
                f"GradDrop leak must be in [0, 1] (rw_mtl/conf/weighting/grad/graddrop.yaml), got {leak}"
            )
        self.leak = leak

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        grads = grads.matrix
        # LibMTL (weighting/GradDrop.py) adds 1e-7 to Σ|g_t|, which skews P for gradients near that size; the
        # guard here only keeps 0/0 (every task's coordinate zero) at P = ½, so P is the same at any scale
        purity = 0.5 * (
            1 + grads.sum(dim=0) / grads.abs().sum(dim=0).clamp_min(torch.finfo(grads.dtype).tiny)
        )
        threshold = torch.rand_like(purity)
        keep = ((purity > threshold) & (grads > 0)) | ((purity < threshold) & (grads < 0))
        return Combination(per_task=grads * (self.leak + (1 - self.leak) * keep.to(grads.dtype)))

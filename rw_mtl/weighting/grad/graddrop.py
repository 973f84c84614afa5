"""Gradient Sign Dropout (GradDrop), Chen et al. (2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.interface import PER_TASK, Combination, TaskGradients


class GradDrop(GradWeighting):
    """Per feature of the shared representation z, keep only the task gradients of one sign, chosen at
    random by how pure the signs are (their Algorithm 1):

        S_t = Σ_b g_{t,b} ⊙ sign(z_b),   P = ½ (1 + Σ_t S_t / Σ_t |S_t|),   U ~ U(0, 1) per feature,
        M_t = [P > U] [S_t > 0] + [P < U] [S_t < 0],   c_{t,b} = (ℓ + (1 − ℓ) M_t) ⊙ g_{t,b},

    g_{t,b} = ∇_{z_b} ℓ_t for sample b. The sign statistic S_t multiplies by the sign of the input activation
    and sums over the batch, and the mask M_t is one per feature, the same for every sample of the batch —
    as the paper's Algorithm 1, lingvo's ``graddrop.py`` and LibMTL's ``LibMTL/weighting/GradDrop.py`` do.
    Leak ℓ = ``leak`` (0: the paper's and LibMTL's default). A coordinate-wise method: it returns each task's
    masked gradient (``per_task``), so it has no task weights (``last_weights`` stays None) and applies to
    per-task representations z_t (multi-input data) as LibMTL does, each task masked on its own z_t.

    Runs on z (``mode: rep``, LibMTL refuses anything else). In param mode each coordinate of θ is a
    feature of its own with a single "sample" and sign +1 (an option without a reference).
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
        if grads.sample_shape is None or grads.representation is None:
            per_sample, signs = grads.matrix[:, None], None  # [T, 1, D]: param mode
        else:
            per_sample = grads.per_sample()  # [T, N, *F]
            signs = grads.representation.sign().to(per_sample.dtype)  # [N, *F] or [T, N, *F]
        statistic = (per_sample if signs is None else per_sample * signs).sum(dim=1)  # [T, *F]
        # LibMTL (weighting/GradDrop.py) adds 1e-7 to Σ|s_t|, which skews P for statistics near that size;
        # the guard here only keeps 0/0 (every task's coordinate zero) at P = ½, so P is the same at any scale
        tiny = torch.finfo(statistic.dtype).tiny
        purity = 0.5 * (1 + statistic.sum(dim=0) / statistic.abs().sum(dim=0).clamp_min(tiny))
        threshold = torch.rand_like(purity)
        keep = ((purity > threshold) & (statistic > 0)) | ((purity < threshold) & (statistic < 0))
        mask = self.leak + (1 - self.leak) * keep.to(per_sample.dtype)
        return Combination(per_task=(per_sample * mask.unsqueeze(1)).flatten(1))

"""Geometric Loss Strategy (GLS), Chennupati et al. (2019), MultiNet++ (CVPRW)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import LossWeighting


class GLS(LossWeighting):
    """Minimise the geometric mean of the task losses, L = (Π_t ℓ_t)^{1/T} (MultiNet++, Eq. 3).

    Its gradient is ∇L = Σ_t (L / (T ℓ_t)) ∇ℓ_t, so GLS is the loss weighting λ_t = L / (T ℓ_t), taken
    detached: Σ_t λ_t ℓ_t has the value and every gradient of L, for the shared and the task-specific
    parameters alike, and a gradient method combined with it sees the rows ∇(λ_t ℓ_t). A task whose loss
    is small gets a large weight (the product is scale-free: rescaling one loss does not change λ ℓ).
    L is computed as exp(mean_t log ℓ_t), which neither overflows nor underflows for 40 tasks the way the
    product of LibMTL's ``LibMTL/weighting/GLS.py`` can. The losses must be positive (a zero or negative
    loss has no geometric mean; the weights then turn non-finite and ``on_nonfinite`` reports the step).
    No hyperparameters.
    """

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        losses = losses.detach()
        geometric_mean = torch.exp(losses.log().mean())
        return geometric_mean / (self.task_num * losses)

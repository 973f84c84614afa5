"""Random Gradient Weighting (RGW), Algorithm 2 of the paper."""

from __future__ import annotations

from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.random_weights import sampler


class RGW(GradWeighting):
    """d = Σ_t λ_t g_t with a fresh λ = f(λ̃), λ̃ ~ p(λ̃), on the simplex at every call (Algorithm 2, line 7-8).

    Only the shared part sees these weights; each task-specific head is updated with its own gradient
    (line 10). Like the paper it runs on the gradients w.r.t. the shared representation z by default
    (``mode: rep`` in conf/weighting/grad/rgw.yaml). With a loss method, g_t is the gradient of λ^l_t ℓ_t.
    """

    def __init__(self, task_num: int, distribution: str = "normal") -> None:
        super().__init__(task_num)
        self._sample = sampler(distribution)
        self.distribution = distribution

    def aggregate(self, grads: Tensor, losses: Tensor | None = None) -> Tensor:
        self._check_grads(grads)
        weights = self._sample(self.task_num, grads.device, grads.dtype)
        self.last_weights = weights
        return weights @ grads

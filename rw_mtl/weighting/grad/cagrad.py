"""Conflict-Averse Gradient descent (CAGrad), Liu et al. (2021a)."""

from __future__ import annotations

from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.simplex import cagrad_weights, scaled_gram

RESCALES = (0, 1, 2)


class CAGrad(GramWeighting):
    """d = g_0 + (√φ / ‖g_w‖) g_w, g_0 = mean gradient, √φ = c ‖g_0‖, where w ∈ Δ minimises
    g_wᵀ g_0 + √φ ‖g_w‖ (the dual of maximising the worst task improvement within a ball around g_0).

    ``c`` = 0.5; ``rescale`` 1 divides d by 1 + c² (0: none, 2: by 1 + c), as in the paper's code. With
    c = 0 it is exactly the mean gradient. The dual is solved on the device from the Gram matrix
    (``simplex.cagrad_weights``). Runs on θ (``mode: param``); with a loss method g_t is ∇(λ_t ℓ_t).
    """

    def __init__(self, task_num: int, c: float = 0.5, rescale: int = 1) -> None:
        super().__init__(task_num)
        if c < 0 or rescale not in RESCALES:
            raise ValueError(
                f"CAGrad needs c >= 0 and rescale in {RESCALES} (rw_mtl/conf/weighting/grad/cagrad.yaml), "
                f"got c={c}, rescale={rescale}"
            )
        self.c, self.rescale = c, rescale

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        uniform = gram.new_full((self.task_num,), 1.0 / self.task_num)
        if self.c == 0:
            return uniform
        w = cagrad_weights(gram, self.c)
        # ‖g_0‖ / ‖g_w‖ on M / mean(diag M): a ratio, so the scale drops out and the 1e-8 guard (the
        # original code's) is relative to the gradients' size, whether they are 1e-8 or 1e6
        gram = scaled_gram(gram)
        mean_norm = (uniform @ gram @ uniform).clamp_min(0).sqrt()
        mixed_norm = (w @ gram @ w).clamp_min(0).sqrt()
        weights = uniform + self.c * mean_norm / (mixed_norm + 1e-8) * w
        divisor = {0: 1.0, 1: 1 + self.c**2, 2: 1 + self.c}[self.rescale]
        return weights / divisor

"""The double-sampling contract shared by SDMGrad and MoDo: weights from two further batches, direction
from the step's own batch."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.interface import Combination, TaskGradients


class DoubleSamplingWeighting(GramWeighting):
    """d = Σ_t w_t g_t(ζ) on the step's batch ζ, with w updated from the cross-batch Gram matrix
    C = G(ξ₁) G(ξ₂)ᵀ of two further, independent training batches ξ₁, ξ₂ (``extra_batches`` = 2: the step
    draws them from the data module's training loader, or the trainer's when ``fit`` got loaders directly;
    ``TaskGradients.extra``).

    Why two batches: the weight updates of SDMGrad and MoDo need the T×T inner products E[G] E[G]ᵀ of the
    *expected* gradients; one batch's G Gᵀ is biased by the gradients' variance, the product of two
    independent batches' is not. Only inner products are read, so like every ``GramWeighting`` it costs
    T×T values whatever D is (``TaskGradients.inner``, summed over data-parallel ranks), and it works in
    every mode. Each extra batch costs one forward pass and the per-task backward passes of the mode; the
    heads get the step's batch's gradient only (LibMTL averages them over the three batches for MoDo and
    sums them for SDMGrad). Under ``trainer=ddp`` the extra batches come from the data module's loader,
    not Lightning's distributed one, so every rank draws the same b samples: the estimate stays unbiased
    but rests on b samples, not R·b.

    C is read at LibMTL's scale, where losses are unweighted: C is divided by mean(λ)²
    (``TaskGradients.loss_weights``; EW's λ_t = 1 leaves it unchanged, RLW's Σλ = 1 multiplies it by T²),
    so with equal weights the step sizes of the weight updates act as in LibMTL at any loss-weight scale,
    and a loss method's relative weights still count (g_t = ∇(λ_t ℓ_t)). Outside the training step
    (``aggregate`` on a plain matrix) there are no extra batches nor loss weights, and C = G Gᵀ of the one
    matrix given (ξ₁ = ξ₂ = ζ).
    """

    extra_batches: ClassVar[int] = 2
    needs_gram: ClassVar[bool] = False  # C replaces the step batch's own Gram matrix

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        cross = grads.extra[0].inner(grads.extra[1]) if len(grads.extra) >= 2 else grads.gram()
        if grads.loss_weights is not None:
            cross = cross / grads.loss_weights.mean().to(cross.dtype).square().clamp_min(1e-24)
        return Combination(weights=self.gram_weights(cross, losses).detach())

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        """The [T] combination weights for the step's batch, from the cross-batch Gram matrix ``gram``."""
        raise NotImplementedError

"""The double-sampling contract shared by SDMGrad and MoDo: weights from two further batches (or the two
halves of the step's batch), direction from the step's own batch."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.interface import Combination, TaskGradients

#: where the two independent samples ξ₁, ξ₂ of the cross Gram matrix come from (``sampling`` hparam)
SAMPLINGS = ("batches", "halves")


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

    ``sampling`` says where ξ₁ and ξ₂ come from:

    * ``batches`` (default) — two further training batches, as LibMTL's trainer and SDMGrad's authors
      (OptMN-Lab/sdmgrad ``experiments/nyuv2/trainer.py``) draw them: three batches a step;
    * ``halves`` (rw_mtl's option, in no paper) — the two halves of the step's own batch, ζ = ξ₁ ∪ ξ₂: no
      extra batch, so the method costs about what PCGrad costs in the same mode (docs/perf.md: at it in rep
      mode; in param mode on CPU up to ×1.13 of it at small batches and 0.98–1.03 at the NYUv2 preset's full
      size, against ×2.6 with ``batches``). In rep mode the step has every sample's z-gradient already: sample
      i of the first half meets sample i of the second (an odd last sample is left out of C), and C is
      multiplied by N/h (N samples, h pairs: 2 for an even batch) so that E[C] equals that of two extra
      batches of the step's size and the step sizes keep their meaning. In param and last_layer mode the step
      runs the halves through the model one after the other (T backward passes through each half) and hands
      their own gradients over as ``extra``; the step's loss is the halves' mean (with an odd batch the larger
      half's samples weigh a little less), BatchNorm normalises each half by its own statistics and updates
      its running statistics twice a step, and a method that compares losses across the step (FAMO, FORUM)
      gets them the same way. The halves are independent for a shuffled loader; unlike the three-batch
      protocol the direction's batch is not independent of the weights' (MoDo's authors step along ξ₁ ∪ ξ₂
      too).
    """

    needs_gram: ClassVar[bool] = False  # C replaces the step batch's own Gram matrix

    def __init__(self, task_num: int, sampling: str = "batches") -> None:
        super().__init__(task_num)
        if sampling not in SAMPLINGS:
            config = f"rw_mtl/conf/weighting/grad/{type(self).__name__.lower()}.yaml"
            raise ValueError(
                f"{type(self).__name__}: sampling must be one of {list(SAMPLINGS)}, got {sampling!r}; set "
                f"weighting.grad.hparams.sampling ({config})"
            )
        self.sampling = sampling
        self.extra_batches = 2 if sampling == "batches" else 0
        self.batch_halves = sampling == "halves"

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        return Combination(weights=self.gram_weights(self._cross(grads), losses).detach())

    def _cross(self, grads: TaskGradients) -> Tensor:
        """C = G(ξ₁) G(ξ₂)ᵀ at LibMTL's loss scale."""
        if len(grads.extra) >= 2:  # two extra batches, or the halves the step ran one after the other
            cross = grads.extra[0].inner(grads.extra[1])
        elif self.sampling == "halves":
            if grads.sample_shape is None:
                raise ValueError(
                    f"{type(self).__name__} with sampling=halves needs the gradients of the two halves of "
                    "the step's batch, which only the training step provides; a plain matrix has neither "
                    "halves nor extra batches (use sampling=batches: C = G Gᵀ)"
                )
            first, second, pairs, samples = grads.sample_halves()
            if pairs == 0:
                raise ValueError(
                    f"{type(self).__name__} with sampling=halves needs at least 2 samples per batch; raise "
                    "dataset.datamodule.batch_size or set weighting.grad.hparams.sampling=batches"
                )
            cross = first.inner(second) * (samples / pairs)
        else:
            cross = grads.gram()
        if grads.loss_weights is not None:
            cross = cross / grads.loss_weights.mean().to(cross.dtype).square().clamp_min(1e-24)
        return cross

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        """The [T] combination weights for the step's batch, from the cross-batch Gram matrix ``gram``."""
        raise NotImplementedError

"""ExcessMTL, He et al. (2024), "Robust Multi-Task Learning with Excess Risks", ICML."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.gradient_state import GradientShapedState
from rw_mtl.weighting.interface import Combination, TaskGradients

_ADAGRAD_EPS = 1e-7  # inside the square root of the accumulated squares, as the official code


class ExcessMTL(GradientShapedState, GradWeighting):
    """Weights the tasks by their estimated excess risk (distance to their own optimum), not their loss.

    The paper and LibMTL list it as a loss-weighting method, but its weights come from the task gradients,
    so here it is a gradient method under the same config name (``weighting/grad=excess_mtl``; it combines
    with every loss method, whose λ_t then scales row t). Each step, with g_t the task gradient:

    * AdaGrad's diagonal curvature estimate H_t = diag(√(Σ_{k≤step} g_t(k)² + 1e-7)) (a [T, D] buffer);
    * the excess-risk estimate E_t = g_tᵀ H_t⁻¹ g_t (their Eq. 6, up to the constant ½);
    * the first step fixes E(0); afterwards the weights take a multiplicative (exponentiated-gradient)
      step w_t ← w_t exp(η E_t / E_t(0)) and are renormalised to Σ w = T (their Algorithm 1);
    * d = Σ_t w_t g_t. w starts at 1 (d is then the loss method's plain gradient).

    As for GradNorm here, the weights multiply the shared part's task gradients; the heads keep the loss
    method's Σ λ_t ℓ_t (LibMTL multiplies the losses, heads included). The rows are the gradients of
    λ_t ℓ_t: with EW (λ_t = 1) they are LibMTL's; with EW's ``weight_sum=one`` (λ_t = 1/T) they are
    LibMTL's divided by T, which changes E only through the 1e-7 in the root. In rep mode, as in LibMTL,
    g_t is the gradient w.r.t. z summed over the batch's samples.
    ``robust_step_size`` η = 1e-2: LibMTL's ``LibMTL/config.py`` (``--robust_step_size``), whose
    ``LibMTL/weighting/ExcessMTL.py`` is the authors' code (github.com/yifei-he/ExcessMTL).
    """

    gradient_shaped = ("squared_sum",)

    def __init__(self, task_num: int, robust_step_size: float = 1e-2) -> None:
        super().__init__(task_num)
        if robust_step_size < 0:
            raise ValueError(
                "ExcessMTL robust_step_size must be >= 0 (weighting.grad.hparams.robust_step_size), "
                f"got {robust_step_size}"
            )
        self.robust_step_size = robust_step_size
        self._register_gradient_shaped()
        self.register_buffer("initial_risk", torch.full((task_num,), float("nan")))
        self.register_buffer("task_weights", torch.ones(task_num))

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        matrix = grads.matrix if grads.sample_shape is None else grads.per_sample().sum(dim=1).flatten(1)
        squared_sum = self._gradient_shaped("squared_sum", matrix)
        squared_sum.addcmul_(matrix, matrix)
        # E_t = Σ_d g_td² / √(s_td + ε), with one [T, D] temporary (H⁻¹, then H⁻¹ ⊙ g in place) and a
        # batched row-wise dot product for the last multiplication and the sum.
        inverse_curvature = squared_sum.add(_ADAGRAD_EPS).rsqrt_().mul_(matrix)
        risk = torch.bmm(inverse_curvature.unsqueeze(1), matrix.unsqueeze(2)).flatten()
        first = self.initial_risk.isnan()
        self.initial_risk.copy_(torch.where(first, risk.to(self.initial_risk), self.initial_risk))
        grown = self.task_weights * torch.exp(
            self.robust_step_size * risk.to(self.task_weights) / self.initial_risk
        )
        grown = grown / grown.sum() * self.task_num
        self.task_weights.copy_(torch.where(first, self.task_weights, grown))
        return Combination(weights=self.task_weights.clone())

"""Fast Adaptive Multitask Optimization (FAMO), Liu et al. (2023), NeurIPS."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import LossWeighting
from rw_mtl.weighting.interface import StepContext

_EPS = 1e-8  # added to every loss before its logarithm, as the official code
_BETAS, _ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which the official code keeps


class FAMO(LossWeighting):
    """Decrease every task's log-loss at the same rate, with O(1) extra cost: no per-task gradients.

    The model step minimises Σ_t (z_t / c) log(ℓ_t + ε), z = softmax(ξ), c = Σ_s z_s / (ℓ_s + ε) held
    constant (the paper's Eq. 8 with ℓ* = 0): its gradient is Σ_t λ_t ∇ℓ_t with λ_t = z_t / (c (ℓ_t + ε)),
    the detached weights returned here (they sum to one). After the optimizer step (``after_step``) the
    task logits ξ move by one Adam step on the gradient Jᵀ_softmax δ, δ_t = log(ℓ_t + ε) − log(ℓ'_t + ε),
    ℓ' the same batch's losses under the updated model (Eq. 10; one extra forward without a graph,
    ``StepContext.recompute_losses``): a task whose loss fell less than the others gains weight. The
    regularisation γ is Adam's (L2) weight decay on ξ, as in the official code.

    Defaults: ``learning_rate`` (of ξ) = 0.025 and ``gamma`` = 0.01, the official ``famo.py`` and
    ``experiments/utils.py`` (github.com/Cranial-XIX/FAMO; LibMTL's ``LibMTL/config.py`` uses γ = 1e-3).
    ξ and its Adam moments are buffers, updated on the device (``torch.optim.Adam``'s update, written out:
    ξ is not trained by the model's optimizer), restored when the step was skipped (``context.skipped``),
    and saved in checkpoints. The official code also clips the shared gradient to norm 1, which is a
    training-loop setting rather than part of the weighting and is not done here.
    """

    def __init__(self, task_num: int, learning_rate: float = 0.025, gamma: float = 0.01) -> None:
        super().__init__(task_num)
        if learning_rate <= 0:
            raise ValueError(
                "FAMO learning_rate must be positive (weighting.loss.hparams.learning_rate), "
                f"got {learning_rate}"
            )
        if gamma < 0:
            raise ValueError(f"FAMO gamma must be >= 0 (weighting.loss.hparams.gamma), got {gamma}")
        self.learning_rate, self.gamma = learning_rate, gamma
        self.register_buffer("logits", torch.zeros(task_num))
        self.register_buffer("first_moment", torch.zeros(task_num))
        self.register_buffer("second_moment", torch.zeros(task_num))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        z = torch.softmax(self.logits, dim=0).to(losses.dtype)
        inverse = 1.0 / (losses.detach() + _EPS)
        return z * inverse / (z * inverse).sum()

    def after_step(self, context: StepContext) -> None:
        """One Adam step of ξ on Jᵀ_softmax δ, from this step's losses before and after the update."""
        before = context.losses.detach().to(self.logits)
        after = context.recompute_losses().to(self.logits)
        decrease = torch.log(before + _EPS) - torch.log(after + _EPS)
        z = torch.softmax(self.logits, dim=0)
        gradient = z * (decrease - z @ decrease) + self.gamma * self.logits
        updates = self.updates + 1
        beta1, beta2 = _BETAS
        first = beta1 * self.first_moment + (1 - beta1) * gradient
        second = beta2 * self.second_moment + (1 - beta2) * gradient.square()
        correction1 = 1 - beta1 ** updates.to(first.dtype)
        correction2 = 1 - beta2 ** updates.to(first.dtype)
        denominator = (second / correction2).sqrt() + _ADAM_EPS
        logits = self.logits - self.learning_rate * (first / correction1) / denominator
        new_state = (logits, first, second, updates)
        for buffer, new in zip(
            (self.logits, self.first_moment, self.second_moment, self.updates), new_state, strict=True
        ):
            buffer.copy_(new if context.skipped is None else torch.where(context.skipped, buffer, new))

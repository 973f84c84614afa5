"""Dual-Balancing Multi-Task Learning (DB-MTL), Lin et al. (2023), "Dual-Balancing for Multi-Task
Learning"."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.gradient_state import GradientShapedState
from rw_mtl.weighting.interface import DIRECTION, Combination, TaskGradients

_EPS = 1e-8  # in log(ℓ + ε) and in the norm ratio, as LibMTL


class DB_MTL(GradientShapedState, GradWeighting):  # noqa: N801 — the method's published name
    """Balance the tasks twice: their loss scales by a log transform, their gradient magnitudes by
    rescaling every task's (averaged) gradient to the largest norm.

    1. loss-scale balancing: task t's gradient is that of log(ℓ_t + ε), i.e. g_t / (ℓ_t + ε) (their Eq. 3);
    2. an exponential moving average of those gradients over the steps, ĝ_t ← β_k ĝ_t + (1 − β_k) g_t
       with β_k = β / k^σ at step k (a [T, D] buffer, initially 0);
    3. gradient-magnitude balancing: d = Σ_t (max_s ‖ĝ_s‖ / ‖ĝ_t‖) ĝ_t (their Eq. 5).

    LibMTL (the authors' library) calls it a loss-weighting method; it needs the per-task gradients and
    its d is not a combination of this step's gradients, so here it is a gradient method that returns a
    direction, under the same config name (``weighting/grad=db_mtl``). Step 1 happens on the rows the step
    provides, ∇(λ_t ℓ_t): with EW (λ_t = 1, LibMTL's scale) d is LibMTL's;
    with any other loss method λ_t scales task t's contribution to the average before step 3 rebalances
    the magnitudes. The heads keep the loss method's Σ λ_t ℓ_t, as for every gradient method here.

    Parameter gradients only (``modes``; other modes are refused at the config check): an average of
    per-sample gradients w.r.t. z across different batches has no meaning, and LibMTL refuses ``rep_grad``
    too. Defaults ``beta`` = 0.9, ``beta_sigma`` = 0: LibMTL's ``LibMTL/config.py`` (``--DB_beta``,
    ``--DB_beta_sigma``); ``LibMTL/weighting/DB_MTL.py`` is the reference.
    """

    produces = DIRECTION
    modes = ("param",)
    gradient_shaped = ("gradient_average",)

    def __init__(self, task_num: int, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        super().__init__(task_num)
        if not 0 <= beta < 1:
            raise ValueError(f"DB_MTL beta must be in [0, 1) (weighting.grad.hparams.beta), got {beta}")
        if beta_sigma < 0:
            raise ValueError(
                f"DB_MTL beta_sigma must be >= 0 (weighting.grad.hparams.beta_sigma), got {beta_sigma}"
            )
        self.beta, self.beta_sigma = beta, beta_sigma
        self._register_gradient_shaped()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        losses = self._require_losses(losses, "the gradients of log ℓ_t")
        matrix = grads.matrix
        average = self._gradient_shaped("gradient_average", matrix)
        self.steps += 1
        beta = self.beta / self.steps.to(matrix.dtype) ** self.beta_sigma
        # ĝ ← β_k ĝ + (1 − β_k) g_t / (ℓ_t + ε), in place: no [T, D] temporaries per step.
        row_scale = (1 - beta) / (losses.to(matrix.dtype) + _EPS)
        average.mul_(beta).addcmul_(matrix, row_scale[:, None])
        norms = average.norm(dim=1)
        scales = norms.max() / (norms + _EPS)
        return Combination(direction=scales @ average)

"""MoCo, Fernando et al. (ICLR 2023): multi-objective gradient correction with tracked gradients."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.gradient_state import GradientShapedState
from rw_mtl.weighting.interface import DIRECTION, Combination, TaskGradients


class MoCo(GradientShapedState, GradWeighting):
    """d = Yᵀ λ, with Y ∈ R^{T×D} tracking the task gradients and λ the MGDA weights of Y, both updated
    once per step k (their Algorithm 1, as LibMTL's ``MoCo.py`` implements it from the authors' code):

        h_t = g_t / (‖g_t‖ + 1e-8) · ℓ_t                       (LibMTL's gradient normalisation)
        Y  ← Y − β_k (Y − H),          β_k = β / k^{σ_β}
        λ  ← softmax(λ − γ_k (Y Yᵀ + ρ I) λ),   γ_k = γ / k^{σ_γ}

    Y starts at 0, λ at 1/T; the paper projects λ onto the simplex where LibMTL (and the authors' code)
    take the softmax, which we follow. Defaults β = 0.5, σ_β = 0.5, γ = 0.1, σ_γ = 0.5, ρ = 0: LibMTL's
    ``--MoCo_beta``, ``--MoCo_beta_sigma``, ``--MoCo_gamma``, ``--MoCo_gamma_sigma``, ``--MoCo_rho``
    (``LibMTL/config.py``).

    Why it needs G itself and not only G Gᵀ: d is a combination of Y, a running average of gradients of
    earlier steps, not of this step's G, and updating Y Yᵀ needs Y Gᵀ, products with a [T, D] state. For
    the same reason it runs on θ only (``modes``): in rep mode a row of G holds the gradients of this
    step's samples, which share nothing with the previous steps' samples that Y averages (LibMTL refuses
    rep gradients too). It returns a direction, so it cannot run in last_layer mode either. Y, λ and k are
    buffers (in checkpoints, restored when a step is skipped); Y is a ``GradientShapedState``, zeros of
    G's shape from the first step on.

    MoCo is equivariant in the tasks: h_t depends on task t's gradient and loss only, and the updates of
    Y and λ commute with a permutation P of the tasks (P Y Yᵀ Pᵀ P λ = P Y Yᵀ λ, and the softmax is
    symmetric), so tasks given in another order give Y and λ in that order and the same d.

    With a loss method, g_t = ∇(λ_t ℓ_t) and the normalisation removes λ_t's scale; h_t is therefore
    scaled by ℓ_t λ_t / mean(λ) (``TaskGradients.loss_weights``): equal weights of any scale (EW: λ_t = 1)
    give LibMTL's h_t exactly, and RLW's random weights still count. Needs the per-task losses.
    """

    produces: ClassVar[str] = DIRECTION
    modes: ClassVar[tuple[str, ...]] = ("param",)
    gradient_shaped = ("tracked",)

    def __init__(
        self,
        task_num: int,
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
    ) -> None:
        super().__init__(task_num)
        if beta <= 0 or gamma <= 0 or beta_sigma < 0 or gamma_sigma < 0 or rho < 0:
            raise ValueError(
                "MoCo needs beta, gamma > 0 and beta_sigma, gamma_sigma, rho >= 0 "
                f"(rw_mtl/conf/weighting/grad/moco.yaml), got beta={beta}, beta_sigma={beta_sigma}, "
                f"gamma={gamma}, gamma_sigma={gamma_sigma}, rho={rho}"
            )
        self.beta, self.beta_sigma = float(beta), float(beta_sigma)
        self.gamma, self.gamma_sigma, self.rho = float(gamma), float(gamma_sigma), float(rho)
        self._register_gradient_shaped()
        self.register_buffer("lambd", torch.full((task_num,), 1.0 / task_num))
        self.register_buffer("step", torch.zeros(()))

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        losses = self._require_losses(losses, "MoCo scales each normalised gradient by its loss")
        matrix = grads.matrix
        scale = losses.to(matrix.dtype)
        if grads.loss_weights is not None:
            weights = grads.loss_weights.to(matrix.dtype)
            scale = scale * weights / weights.mean().clamp_min(1e-12)
        tracked = self._gradient_shaped("tracked", matrix)
        self.step.add_(1)
        beta = (self.beta / self.step.pow(self.beta_sigma)).to(tracked.dtype)
        gamma = self.gamma / self.step.pow(self.gamma_sigma)
        # Y ← (1 − β_k) Y + β_k H with H = diag(scale_t / (‖g_t‖ + 1e-8)) G, in place on the [T, D] buffer:
        # H itself is never formed (a [T, D] temporary per step).
        row_scale = scale / (matrix.norm(dim=1) + 1e-8)
        tracked.mul_(1 - beta).addcmul_(matrix.to(tracked.dtype), (beta * row_scale)[:, None])
        updated = tracked.to(matrix.dtype)
        lambd = self.lambd.to(matrix.dtype)
        mixing = updated @ updated.T + self.rho * torch.eye(self.task_num, device=matrix.device)
        lambd = torch.softmax(lambd - gamma.to(matrix.dtype) * (mixing.to(matrix.dtype) @ lambd), dim=0)
        self.lambd.copy_(lambd)
        return Combination(direction=lambd @ updated)

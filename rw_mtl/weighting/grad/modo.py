"""Multi-objective gradient with Double sampling (MoDo), Chen, Fernando, Ying, Chen (NeurIPS 2023)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.grad.double_sampling import DoubleSamplingWeighting
from rw_mtl.weighting.simplex import project_to_simplex


class MoDo(DoubleSamplingWeighting):
    """d = Σ_t λ_t g_t(ζ), with the MGDA weights λ ∈ Δ tracked by one projected stochastic gradient step
    of ½ ‖G λ‖² + ½ ρ ‖λ‖² per training step, its gradient estimated without bias by double sampling:

        λ ← Π_Δ(λ − γ (G(ξ₁) G(ξ₂)ᵀ λ + ρ λ)),   λ starting at 1/T and kept across steps,

    as LibMTL's ``MoDo.py`` (the direction from a third batch ζ; the authors' code, heshandevaka/
    Trade-Off-MOL, steps along the sum of the two batches' gradients instead). Defaults ``gamma`` γ = 1e-3
    and ``rho`` ρ = 0.1: LibMTL's ``--MoDo_gamma``/``--MoDo_rho`` (``LibMTL/config.py``).

    γ is a step size on G Gᵀ, so it depends on the gradients' scale: the cross Gram matrix is read at
    LibMTL's scale (``DoubleSamplingWeighting``), so that with EW the weights follow LibMTL's. Π_Δ runs on
    the device. ``sampling``: ξ₁, ξ₂ are two extra training batches (default, LibMTL's) or the two halves
    of the step's batch (no extra batch; ``DoubleSamplingWeighting``).
    """

    def __init__(
        self, task_num: int, gamma: float = 1e-3, rho: float = 0.1, sampling: str = "batches"
    ) -> None:
        super().__init__(task_num, sampling)
        if gamma <= 0 or rho < 0:
            raise ValueError(
                "MoDo needs gamma > 0 and rho >= 0 (rw_mtl/conf/weighting/grad/modo.yaml), "
                f"got gamma={gamma}, rho={rho}"
            )
        self.gamma, self.rho = float(gamma), float(rho)
        self.register_buffer("lambd", torch.full((task_num,), 1.0 / task_num))

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        lambd = self.lambd.to(gram.dtype)
        lambd = project_to_simplex(lambd - self.gamma * (gram @ lambd + self.rho * lambd))
        self.lambd.copy_(lambd)
        return lambd

"""Stochastic Direction-oriented Multi-objective Gradient descent (SDMGrad), Xiao, Ban & Ji (NeurIPS 2023)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.grad.double_sampling import DoubleSamplingWeighting
from rw_mtl.weighting.simplex import project_to_simplex


class SDMGrad(DoubleSamplingWeighting):
    """d = (Σ_t w_t g_t(ζ) + λ g₀(ζ)) / (1 + λ), g₀ = the mean task gradient: MGDA's min-norm direction
    regularised towards g₀, with w ∈ Δ the minimiser of ½ ‖G w‖² + λ (G w)ᵀ g₀, tracked by projected
    stochastic gradient steps whose gradient C w + λ C 1/T uses the double-sampled C = G(ξ₁) G(ξ₂)ᵀ
    (``DoubleSamplingWeighting``), as LibMTL's ``SDMGrad.py`` computes it:

        Ĉ = C / (s² + 1e-8), s = mean_t √max(C_tt, 0);  then ``niter`` times
        b ← ∇ (first) or μ b + ∇ (momentum μ), ∇ = Ĉ w + λ Ĉ 1/T;  w ← Π_Δ(w − η b),

    with w kept across steps (from 1/T) and the momentum restarted each step (LibMTL builds a new SGD
    optimizer per step). Task weights on the step's batch: (w + λ/T) / (1 + λ).

    Defaults: ``lamda`` λ = 0.3 and ``niter`` = 20 (LibMTL's ``--SDMGrad_lamda``/``--SDMGrad_niter``, and
    the original code's NYUv2 script, OptMN-Lab/sdmgrad ``experiments/nyuv2/run.sh``); ``lr`` η = 5 and
    ``momentum`` μ = 0.5 (LibMTL's ``SDMGrad.py``; the original code uses η = 10). The projection Π_Δ runs
    on the device (``simplex.project_to_simplex``) instead of LibMTL's numpy copy per iteration. With a loss
    method g_t is ∇(λ_t ℓ_t); C is normalised by s², so only the 1e-8 sees the gradients' scale.
    ``sampling`` (``DoubleSamplingWeighting``): ξ₁, ξ₂ are two extra training batches (default, as
    LibMTL and the authors' trainer) or the two halves of the step's batch (no extra batch).
    """

    def __init__(
        self,
        task_num: int,
        lamda: float = 0.3,
        niter: int = 20,
        lr: float = 5.0,
        momentum: float = 0.5,
        sampling: str = "batches",
    ) -> None:
        super().__init__(task_num, sampling)
        if lamda < 0 or niter < 0 or lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(
                "SDMGrad needs lamda >= 0, niter >= 0, lr > 0 and 0 <= momentum < 1 "
                f"(rw_mtl/conf/weighting/grad/sdmgrad.yaml), got lamda={lamda}, niter={niter}, lr={lr}, "
                f"momentum={momentum}"
            )
        self.lamda, self.niter, self.lr, self.momentum = float(lamda), int(niter), float(lr), float(momentum)
        self.register_buffer("w", torch.full((task_num,), 1.0 / task_num))

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        scale = gram.diagonal().clamp_min(0).sqrt().mean()
        cross = gram / (scale.square() + 1e-8)
        toward_mean = self.lamda * cross.mean(dim=1)
        w = self.w.to(cross.dtype)
        velocity = torch.zeros_like(w)
        for _ in range(self.niter):
            velocity = self.momentum * velocity + cross @ w + toward_mean
            w = project_to_simplex(w - self.lr * velocity)
        self.w.copy_(w)
        return (w + self.lamda / self.task_num) / (1 + self.lamda)

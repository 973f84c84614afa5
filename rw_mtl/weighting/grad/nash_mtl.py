"""Nash-MTL, Navon et al. (2022): multi-task learning as a bargaining game."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting

#: candidate Newton step lengths 1, ½, ¼, … 2^-11: the one of lowest objective among those keeping α > 0
_STEP_CANDIDATES = 12


class NashMTL(GramWeighting):
    """d = Σ_t α_t g_t with α > 0 the solution of the bargaining system G Gᵀ α = 1/α, i.e. α_t (Mα)_t = 1
    for every task ("Multi-Task Learning as a Bargaining Game", ICML 2022, Eq. 2 / Claim 3.1): the Nash
    bargaining solution, where every task's directional gain g_t·d is 1/α_t. Then, as in the original
    code (AvivNavon/nash-mtl), LibMTL's Nash_MTL.py and TorchJD's NashMTL, the direction is clipped to
    norm ``max_norm`` (0: no clipping; at the solution ‖d‖² = αᵀMα = T) and the weights are recomputed only
    every ``update_weights_every`` steps (kept in between; the clip still uses the current M).

    Defaults as all three: ``update_weights_every`` 1, ``optim_niter`` 20, ``max_norm`` 1.0. The original
    runs ``optim_niter`` sequential convex programs (cvxpy + ECOS on the host, warm-started from the last
    α). Here the system is solved on the device: it is the stationarity condition of the strictly convex
    f(α) = ½ αᵀ M̂ α − Σ log α_t (M̂ = M / ‖M‖_F, as the original normalises; α = α̂ / √‖M‖_F), minimised by
    ``optim_niter`` Newton steps from α̂_0 = s / √diag M̂ (s chosen so that α̂_0ᵀ M̂ α̂_0 = T, which the
    solution satisfies; s ≤ √T), each with the best of 12 step lengths (1, ½, …, 2⁻¹¹) that keeps α > 0.
    On the test matrices 20 steps give the direction to 1e-5 relative or better, and TorchJD's α to 1e-7.

    Where no solution exists (a non-negative combination of the gradients vanishes: opposite or zero
    gradients, a Pareto-stationary point), α grows along that combination for ``optim_niter`` steps and d
    tends to 0 — TorchJD's solver fails there and keeps its previous α. Where every gradient is zero
    (M = 0: a step where every task's λ_t was drawn 0, or every loss is flat) no α solves the system and
    d = 0 for any α: the previous α is kept (1 before the first solve), as the references' solver-failure
    path keeps it, so the weights stay finite and d is exactly 0. (LibMTL's and TorchJD's code never gets
    there: M / ‖M‖_F is NaN and cvxpy rejects it with a ValueError.) Runs on θ (``mode: param``; LibMTL
    refuses rep mode for it, here any mode works).
    """

    def __init__(
        self, task_num: int, update_weights_every: int = 1, optim_niter: int = 20, max_norm: float = 1.0
    ) -> None:
        super().__init__(task_num)
        if update_weights_every < 1 or optim_niter < 1 or max_norm < 0:
            raise ValueError(
                "NashMTL needs update_weights_every >= 1, optim_niter >= 1 and max_norm >= 0 "
                f"(weighting.grad.hparams), got {update_weights_every}, {optim_niter}, {max_norm}"
            )
        self.update_weights_every, self.optim_niter, self.max_norm = (
            update_weights_every,
            optim_niter,
            max_norm,
        )
        # the last solved α (the original's prvs_alpha), in float64 like the solve
        self.register_buffer("alpha", torch.ones(task_num, dtype=torch.float64))
        self._calls = 0

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        if self._calls % self.update_weights_every == 0:
            self.alpha.copy_(bargaining_weights(gram, self.optim_niter, previous=self.alpha))
        self._calls += 1
        alpha = self.alpha
        if self.max_norm > 0:
            norm = (alpha @ gram.to(alpha) @ alpha).clamp_min(0).sqrt()  # ‖Σ α_t g_t‖
            alpha = alpha * torch.where(norm > self.max_norm, self.max_norm / norm, 1.0)
        return alpha.to(gram.dtype)


def bargaining_weights(gram: Tensor, iterations: int = 20, previous: Tensor | None = None) -> Tensor:
    """α > 0 with α ⊙ (M α) = 1 for the Gram matrix M (``gram`` [T, T]): float64, on M's device.

    Newton's method on f(α) = ½ αᵀM̂α − Σ log α (M̂ = M / ‖M‖_F), in the scaled variable y = α ⊘ α_k, where
    the Newton system (D M̂ D + I) Δy = α ⊙ M̂α − 1 (D = diag α_k) stays well conditioned however large or
    small α becomes; α ← α ⊙ (1 − t Δy) with t the best of 1, ½, …, 2⁻¹¹ (f evaluated for all at once).

    For M = 0 (‖M‖_F = 0) the system has no solution: ``previous`` (ones if None) is returned instead,
    selected on the device (no host sync).
    """
    task_num = gram.shape[0]
    exact = gram.to(torch.float64)
    frobenius = torch.linalg.matrix_norm(exact)
    scaled = exact / frobenius.clamp_min(torch.finfo(torch.float64).tiny)
    diagonal = scaled.diagonal()
    start = torch.where(diagonal > 0, diagonal, diagonal.mean().clamp_min(1.0 / task_num)).rsqrt()
    # start @ M̂ @ start is the sum of the gradients' cosines; at least 1 keeps α̂_0 ≤ √T / √diag M̂ where
    # the gradients cancel out (no solution: a Pareto-stationary point)
    alpha = start * (task_num / (start @ scaled @ start).clamp_min(1.0)).sqrt()
    identity = torch.eye(task_num, device=gram.device, dtype=torch.float64)
    steps = 0.5 ** torch.arange(_STEP_CANDIDATES, device=gram.device, dtype=torch.float64)[:, None]
    for _ in range(iterations):
        system = alpha[:, None] * scaled * alpha[None, :] + identity
        residual = alpha * (scaled @ alpha) - 1
        step, _ = torch.linalg.solve_ex(system, residual)
        candidates = alpha * (1 - steps * step)  # [J, T]
        feasible = (candidates > 0).all(dim=1)
        safe = torch.where(feasible[:, None], candidates, alpha)
        objective = 0.5 * torch.einsum("ji,ik,jk->j", safe, scaled, safe) - safe.log().sum(dim=1)
        objective = torch.where(feasible, objective, torch.inf)
        alpha = safe.index_select(0, objective.argmin().reshape(1))[0]
    fallback = torch.ones_like(alpha) if previous is None else previous.to(alpha)
    return torch.where(
        frobenius > 0, alpha / frobenius.clamp_min(torch.finfo(torch.float64).tiny).sqrt(), fallback
    )

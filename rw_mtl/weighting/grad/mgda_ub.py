"""MGDA-UB, Sener & Koltun (2018): multi-task learning as multi-objective optimisation."""

from __future__ import annotations

from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.simplex import min_norm_weights

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA_UB(GramWeighting):  # noqa: N801 — the method's published name
    """d = Σ_t w_t ĝ_t, w = argmin_{w∈Δ} ‖Σ_t w_t ĝ_t‖²: the min-norm point of the hull of the normalised
    gradients ĝ_t = g_t / n_t, a common descent direction (Pareto-stationary when it is 0).

    ``normalization`` n_t (their Section 3.2): ``none`` 1, ``l2`` ‖g_t‖, ``loss`` ℓ_t, ``loss+`` ℓ_t‖g_t‖.
    "UB" = the upper bound: run on ∇_z ℓ_t, the shared representation (``mode: rep``, the default). Solved
    on the device by ``simplex.min_norm_weights`` (closed form for two tasks; exact to float64 precision for
    any T, where the original's Frank-Wolfe loop stops after 250 steps). ``last_weights`` are the
    weights w_t / n_t on the raw gradients. With a loss method, g_t is the gradient of λ_t ℓ_t.
    """

    def __init__(self, task_num: int, normalization: str = "none") -> None:
        super().__init__(task_num)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"MGDA-UB: weighting.grad.hparams.normalization must be one of {NORMALIZATIONS}, "
                f"got {normalization!r}"
            )
        self.normalization = normalization

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        norms = gram.diagonal().clamp_min(0).sqrt()
        if self.normalization == "none":
            scale = gram.new_ones(self.task_num)
        elif self.normalization == "l2":
            scale = norms
        else:
            loss_values = self._require_losses(losses, f"normalization={self.normalization!r}").to(gram.dtype)
            scale = loss_values if self.normalization == "loss" else loss_values * norms
        scale = scale.clamp_min(1e-12)
        weights = min_norm_weights(gram / (scale[:, None] * scale[None, :]))
        return weights / scale

"""Equal Weighting (EW): the conventional baseline."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import WEIGHT_SUMS, LossWeighting


class EW(LossWeighting):
    """The same weight for every task and every step (Section 2, Eq. 1): λ_t = 1, Σ λ = T (``weight_sum:
    tasks``, the default: LibMTL's ``EW``, ``losses.sum()``, which produced the paper's numbers) or
    λ_t = 1/T (``one``: the paper's text, "without loss of generality").

    With Adam the two differ only where the loss scale is not divided out: Adam's coupled weight decay
    (NYUv2's and Office's 1e-5) acts T times more strongly against gradients of Σ ℓ_t / T than of Σ ℓ_t, and
    ε. RLW's draws sum to one either way (LibMTL's ``RLW`` too), so E[λ_RLW] = λ_EW / T under the default;
    docs/protocol.md says why the default is LibMTL's.
    """

    def __init__(self, task_num: int, weight_sum: str = "tasks") -> None:
        super().__init__(task_num)
        if weight_sum not in WEIGHT_SUMS:
            raise ValueError(
                f"EW: weighting.loss.hparams.weight_sum must be one of {WEIGHT_SUMS} "
                f"(rw_mtl/conf/weighting/loss/ew.yaml), got {weight_sum!r}"
            )
        self.weight_sum = weight_sum

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        value = 1.0 if self.weight_sum == "tasks" else 1.0 / self.task_num
        return torch.full_like(losses.detach(), value)

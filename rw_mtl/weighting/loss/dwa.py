"""Dynamic Weight Average (DWA), Liu, Johns & Davison (2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import WEIGHT_SUMS, LossWeighting


class DWA(LossWeighting):
    """λ_t(k) = S · softmax_t(r_t(k−1) / temperature), r_t(k−1) = L_t(k−1) / L_t(k−2), L_t = epoch-mean loss.

    ``weight_sum``: ``tasks`` — S = T, the original's and LibMTL's ``LibMTL/weighting/DWA.py`` (which
    produced the paper's numbers), so the first two epochs (no loss ratio yet: λ = 1) are EW's default —
    or ``one`` (S = 1: λ = 1/T for two epochs, RLW's scale). ``temperature`` = 2 as in the paper and
    LibMTL's ``config.py``. The last two epoch losses are buffers, so they are saved in checkpoints.
    """

    def __init__(self, task_num: int, temperature: float = 2.0, weight_sum: str = "tasks") -> None:
        super().__init__(task_num)
        if temperature <= 0 or weight_sum not in WEIGHT_SUMS:
            raise ValueError(
                f"DWA needs temperature > 0 and weight_sum in {WEIGHT_SUMS} "
                f"(rw_mtl/conf/weighting/loss/dwa.yaml), got {temperature}, {weight_sum!r}"
            )
        self.temperature, self.weight_sum = temperature, weight_sum
        self.total = float(task_num) if weight_sum == "tasks" else 1.0
        self.register_buffer("previous_losses", torch.zeros(2, task_num))  # rows: epoch k−2, k−1
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("current", torch.full((task_num,), self.total / task_num))

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        return self.current.to(losses.dtype)

    def epoch_end(self, mean_losses: Tensor) -> None:
        self._check_task_dim(mean_losses.shape[0], "epoch losses")
        self.previous_losses = torch.stack(
            [self.previous_losses[1], mean_losses.detach().to(self.previous_losses)]
        )
        self.epochs_seen += 1
        ratio = self.previous_losses[1] / self.previous_losses[0].clamp_min(1e-12)
        dynamic = self.total * torch.softmax(ratio / self.temperature, dim=0)
        self.current = torch.where(self.epochs_seen >= 2, dynamic, self.current)

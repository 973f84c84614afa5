"""Smooth Tchebycheff scalarisation (STCH), Lin et al. (2024), ICML, with its warm-up for multi-task
learning."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import LossWeighting

_EPS = 1e-20  # inside the logarithms, as the official code and LibMTL


class STCH(LossWeighting):
    """Minimise the smooth Tchebycheff scalarisation of the log-normalised losses after a warm-up.

    With u_t = log(ℓ_t / n_t + ε), the objective is T · μ log Σ_t exp(u_t / μ) (the paper's Eq. 7 with
    uniform preferences and the ideal point at 0 on this log scale; the factor T is the official code's).
    Its gradient is Σ_t λ_t ∇ℓ_t with λ_t = T s_t / (ℓ_t + ε n_t), s = softmax(u / μ): a smooth max that
    moves towards the task worst off relative to its nadir value n_t as μ → 0.

    Warm-up: epochs 0 … ``warmup_epoch`` minimise Σ_t log(ℓ_t + ε), i.e. λ_t = 1 / (ℓ_t + ε); the mean
    training losses of epoch ``warmup_epoch`` (``epoch_end``) become the nadir vector n. From the next
    epoch on the weights above apply. λ is detached, so Σ λ_t ℓ_t carries every gradient of the objective
    and a gradient method combined with STCH sees the rows ∇(λ_t ℓ_t).

    Defaults ``mu`` = 1 and ``warmup_epoch`` = 4: LibMTL's ``LibMTL/config.py`` (``--STCH_mu``,
    ``--STCH_warmup_epoch``), whose ``LibMTL/weighting/STCH.py`` follows the official code
    (github.com/Xi-L/STCH, ``STCH_MTL``). The epoch count and n are buffers (saved in checkpoints); the
    phase is chosen on the device, so no step reads the epoch on the host.
    """

    def __init__(self, task_num: int, mu: float = 1.0, warmup_epoch: int = 4) -> None:
        super().__init__(task_num)
        if mu <= 0:
            raise ValueError(f"STCH mu must be positive (weighting.loss.hparams.mu), got {mu}")
        if not isinstance(warmup_epoch, int) or warmup_epoch < 0:
            raise ValueError(
                "STCH warmup_epoch must be an int >= 0 (weighting.loss.hparams.warmup_epoch), "
                f"got {warmup_epoch!r}"
            )
        self.mu, self.warmup_epoch = mu, warmup_epoch
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.register_buffer("nadir", torch.ones(task_num))

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        losses = losses.detach()
        nadir = self.nadir.to(losses.dtype)
        warm_up = 1.0 / (losses + _EPS)
        smooth_max = torch.softmax(torch.log(losses / nadir + _EPS) / self.mu, dim=0)
        tchebycheff = self.task_num * smooth_max / (losses + _EPS * nadir)
        return torch.where(self.epoch <= self.warmup_epoch, warm_up, tchebycheff)

    def epoch_end(self, mean_losses: Tensor) -> None:
        self._check_task_dim(mean_losses.shape[0], "epoch losses")
        at_nadir_epoch = self.epoch == self.warmup_epoch
        self.nadir.copy_(torch.where(at_nadir_epoch, mean_losses.detach().to(self.nadir), self.nadir))
        self.epoch += 1

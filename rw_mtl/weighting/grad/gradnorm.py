"""GradNorm, Chen et al. (2018): gradient normalisation for adaptive loss balancing."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rw_mtl.weighting.base import WEIGHT_SUMS, GramWeighting
from rw_mtl.weighting.interface import Combination, TaskGradients

VARIANTS = ("libmtl", "original")


class GradNorm(GramWeighting):
    """d = Σ_t w_t g_t with learnable weights w = S · softmax(s) (initially S/T each) trained so that the
    weighted gradient norms G_t = ‖w_t g_t‖ follow the tasks' relative training rates (their Eq. 2):

        L_grad = Σ_t | G_t − Ḡ · r_t^α |,  r_t = L̃_t / mean(L̃),  L̃_t = ℓ_t / ℓ_t(0),

    with Ḡ · r_t^α held constant; L_grad is returned as the method loss, whose gradient trains s in the
    optimizer step. ``alpha`` = 1.5 (the paper's NYUv2 value; LibMTL ``config.py``'s default).

    ``variant`` says what the paper's numbers came from:

    * ``libmtl`` (default; ``LibMTL/weighting/GradNorm.py@3928656``, which produced the paper's numbers):
      the first training epoch is EW (w_t = 1, no balancing, as LibMTL's ``epoch >= 1`` branch), ℓ(0) is
      each task's mean training loss over that epoch (LibMTL's ``train_loss_buffer[:, 0]``), and the norms
      are taken on whatever gradients the step provides — LibMTL's default ``rep_grad=False``: the shared
      parameters (``mode: param``);
    * ``original`` (Chen et al.): balancing from the first step, ℓ(0) = the first step's losses; run it
      with ``weighting.grad.mode=last_layer``, the norms on the last shared layer's weights W as the paper
      does.

    ``weight_sum``: ``tasks`` — Σ w = T (both the paper's renormalisation and LibMTL's ``T · softmax``) —
    or ``one`` (Σ w = 1, the scale of RLW's draws). The epoch counter and ℓ(0) are buffers, saved in
    checkpoints.
    """

    def __init__(
        self, task_num: int, alpha: float = 1.5, variant: str = "libmtl", weight_sum: str = "tasks"
    ) -> None:
        super().__init__(task_num)
        if variant not in VARIANTS or weight_sum not in WEIGHT_SUMS:
            raise ValueError(
                f"GradNorm: weighting.grad.hparams.variant must be one of {VARIANTS} and weight_sum one of "
                f"{WEIGHT_SUMS} (rw_mtl/conf/weighting/grad/gradnorm.yaml), got {variant!r}, {weight_sum!r}"
            )
        self.alpha, self.variant, self.weight_sum = alpha, variant, weight_sum
        self.logits = nn.Parameter(torch.zeros(task_num))
        self.register_buffer("initial_losses", torch.full((task_num,), float("nan")))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        losses = self._require_losses(losses, "training rates ℓ_t / ℓ_t(0)")
        if self.variant == "original":
            self.initial_losses.copy_(torch.where(self.initial_losses.isnan(), losses, self.initial_losses))
            balancing = torch.ones((), dtype=torch.bool, device=losses.device)
        else:
            balancing = self.epochs_seen > 0  # epoch 0 is EW (LibMTL)
        total = float(self.task_num) if self.weight_sum == "tasks" else 1.0
        with torch.enable_grad():
            weights = total * torch.softmax(self.logits, dim=0)
            norms = weights * grads.gram().diagonal().clamp_min(0).sqrt().to(weights.dtype)
            ratios = losses.to(weights.dtype) / self.initial_losses.clamp_min(1e-12).to(weights.dtype)
            ratios = torch.where(balancing, ratios, torch.ones_like(ratios))  # ℓ(0) unknown in epoch 0
            target = (norms.mean() * (ratios / ratios.mean()).pow(self.alpha)).detach()
            balance_loss = (norms - target).abs().sum() * balancing
        equal = torch.full_like(weights, total / self.task_num)
        return Combination(weights=torch.where(balancing, weights.detach(), equal), method_loss=balance_loss)

    def epoch_end(self, mean_losses: Tensor) -> None:
        """After the first epoch (``libmtl``): ℓ(0) = that epoch's mean training losses."""
        self._check_task_dim(mean_losses.shape[0], "epoch losses")
        if self.variant == "libmtl":
            first = self.epochs_seen == 0
            self.initial_losses.copy_(torch.where(first, mean_losses.detach(), self.initial_losses))
        self.epochs_seen += 1

"""Multi-Objective Meta Learning (MOML), Ye et al. (2021), as a loss-balancing method."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rw_mtl.weighting.base import LossWeighting
from rw_mtl.weighting.interface import MetaStep, surrogate_loss
from rw_mtl.weighting.jacobian import task_gradients
from rw_mtl.weighting.simplex import min_norm_weights


class MOML(LossWeighting):
    """λ = softmax(α), with α learnt on validation data by a bilevel, multi-objective meta step.

    Each training step, before θ moves (``meta_step``), as the authors' MOML (their LibMTL-based trainer's
    ``bacth_forward_MOML``, one inner step):

    1. virtual step θ' = θ − η_in Σ_s λ_s ∇θ ℓ_s^train(θ) with the inner learning rate η_in = ``inner_lr``
       (0.1, the authors' setting; null: the model's learning rate);
    2. hypergradients H[t, s] = ∂ℓ_t^val(θ')/∂λ_s = −η_in ∇ℓ_t^val(θ') · ∇ℓ_s^train(θ) — exact for the
       one-step unroll, since θ' is linear in λ — and their α-rows R_t = H_t J_softmax;
    3. the upper level is multi-objective (every task's validation loss): the rows are normalised to unit
       length (the authors' ``_gradient_normalizers(…, 'l2')``) and combined by their min-norm point
       (MGDA), the common descent direction Σ_t β_t R_t / ‖R_t‖;
    4. that direction is returned as a surrogate loss; the optimizer then updates α in its own parameter
       group: ``learning_rate`` 1e-3 and **no weight decay** (the authors' separate ``Adam(lr=outer_lr)``
       for α; a parameter group of the model's Adam is the same per-parameter update).

    θ here is every trainable parameter of the architecture, shared and task-specific. The validation batch
    comes from a split held out of train (``dataset.datamodule.validation=held_out``; a test split is
    refused). The weights are returned detached, so the training loss does not reach α. Costs 2T extra
    backward passes per step.
    """

    needs_validation_batch = True
    weight_decay = 0.0

    def __init__(self, task_num: int, learning_rate: float = 1e-3, inner_lr: float | None = 0.1) -> None:
        super().__init__(task_num)
        if inner_lr is not None and inner_lr <= 0:
            raise ValueError(
                "MOML inner_lr must be positive or null (rw_mtl/conf/weighting/loss/moml.yaml), "
                f"got {inner_lr}"
            )
        self.learning_rate, self.inner_lr = learning_rate, inner_lr
        self.logits = nn.Parameter(torch.zeros(task_num))

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        return torch.softmax(self.logits, dim=0).detach().to(losses.dtype)

    def meta_step(self, meta: MetaStep) -> Tensor:
        """The surrogate loss whose gradient w.r.t. α is the meta update; the hypergradient H [T, T]
        (validation task × weight) is kept as ``last_hypergradient``."""
        names, tensors = list(meta.params), list(meta.params.values())
        lr = self.inner_lr if self.inner_lr is not None else meta.learning_rate
        train_grads = task_gradients(meta.losses, tensors)  # [T, P]
        weights = torch.softmax(self.logits.detach(), dim=0).to(train_grads.dtype)
        with torch.autocast(train_grads.device.type, enabled=False):  # float32 algebra under bf16-mixed
            step = (weights @ train_grads).split([t.numel() for t in tensors])
        virtual = {n: t.detach() - lr * s.view_as(t) for n, t, s in zip(names, tensors, step, strict=True)}
        for tensor in virtual.values():
            tensor.requires_grad_(True)
        val_grads = task_gradients(meta.validation_losses(virtual), list(virtual.values()))  # [T, P]
        with torch.autocast(train_grads.device.type, enabled=False):
            hyper = -lr * val_grads @ train_grads.T
            jacobian = torch.diag(weights) - weights[:, None] * weights[None, :]
            rows = hyper @ jacobian
            rows = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
            common = min_norm_weights(rows @ rows.T) @ rows
        self.last_hypergradient = hyper.detach()
        return surrogate_loss(self.logits, common)

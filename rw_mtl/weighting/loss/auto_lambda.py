"""Auto-λ, Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang (2022), "Auto-Lambda: Disentangling Dynamic
Task Relationships", TMLR."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rw_mtl.weighting.base import LossWeighting
from rw_mtl.weighting.interface import MetaStep, surrogate_loss
from rw_mtl.weighting.loss.virtual_params import flat_gradient, moved

_FINITE_DIFFERENCE = 0.01  # ε ‖d‖: the step of the central difference, as the official code


class AutoLambda(LossWeighting):
    """Task weights λ learnt as parameters by a one-step look-ahead on validation data (a bilevel step).

    The training step uses Σ_t λ_t ℓ_t^train with λ itself (unconstrained, initially ``init``). Before it,
    ``meta_step`` differentiates the validation loss after one virtual SGD step of every trainable
    parameter θ (shared and task-specific):

        θ' = θ − η ∇θ Σ_s λ_s ℓ_s^train(θ),   L^val = Σ_t ℓ_t^val(θ')   (all tasks primary: multi-task),
        ∂L^val/∂λ_s = −η ∇ℓ_s^train(θ) · d,   d = ∇θ' L^val(θ'),

    with the Hessian-vector product as the official central difference (ℓ_s^train(θ + εd) −
    ℓ_s^train(θ − εd)) / 2ε, ε = 0.01 / ‖d‖: two forwards instead of T backward passes, exact for losses
    quadratic in θ. That gradient is returned as a surrogate loss; λ then moves in its own optimizer group
    (``learning_rate``, no weight decay). The two difference forwards run outside autocast (a bf16 forward
    would drown the difference in rounding). The virtual step is plain SGD at the model's learning rate η
    (LibMTL's and rw_mtl's MOML's; the official code also adds SGD's momentum and weight decay, which do
    not depend on λ). With data-parallel ranks the gradients and the difference are averaged over them
    (``MetaStep.mean_over_ranks``), so every rank takes the global batch's meta step. Costs 2 backward and
    3 forward passes per step. The validation batches come from the validation split, never the test
    split (``rw_mtl/conf/method/auto_lambda.yaml`` sets ``held_out``; the official code draws them from a
    second shuffle of the training set).

    Defaults: ``init`` = 0.1 and ``learning_rate`` = 1e-4 (Adam), the official ``trainer_dense.py``
    (github.com/lorenmt/auto-lambda: ``--autol_init``, ``--autol_lr`` for NYUv2 and CityScapes). The
    LibMTL trainers with bilevel methods (``bacth_forward_AutoLambda``, ``--outer_lr``) instead use
    λ = softmax(α) with lr 1e-3.
    """

    needs_validation_batch = True

    def __init__(self, task_num: int, init: float = 0.1, learning_rate: float = 1e-4) -> None:
        super().__init__(task_num)
        if learning_rate <= 0:
            raise ValueError(
                "Auto-Lambda learning_rate must be positive (weighting.loss.hparams.learning_rate), "
                f"got {learning_rate}"
            )
        self.learning_rate, self.weight_decay = learning_rate, 0.0
        self.meta_weights = nn.Parameter(torch.full((task_num,), float(init)))

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        return self.meta_weights.detach().to(losses.dtype)

    def meta_step(self, meta: MetaStep) -> Tensor:
        """The surrogate loss whose gradient w.r.t. λ is −η ∇ℓ^train(θ) · d; the hypergradient [T] is kept
        as ``last_hypergradient``."""
        params, lr = meta.params, meta.learning_rate
        objective = (self.meta_weights.detach().to(meta.losses.dtype) * meta.losses).sum()
        virtual = moved(
            params, flat_gradient(objective, params, meta, retain_graph=True), -lr, trainable=True
        )
        direction = flat_gradient(meta.validation_losses(virtual).sum(), virtual, meta)
        epsilon = _FINITE_DIFFERENCE / direction.norm().clamp_min(1e-12)
        with torch.no_grad(), torch.autocast(direction.device.type, enabled=False):
            ahead = meta.training_losses(moved(params, direction, epsilon))
            behind = meta.training_losses(moved(params, direction, -epsilon))
        difference = meta.mean_over_ranks(ahead - behind) / (2 * epsilon)
        hypergradient = -lr * difference
        self.last_hypergradient = hypergradient.detach()
        return surrogate_loss(self.meta_weights, hypergradient)

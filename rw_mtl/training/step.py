"""The balanced training step: per-task losses → loss weights λ → (per-task gradients → a gradient
method's combination) → gradients of every parameter, ready for the optimizer (Algorithms 1 and 2).

1. forward: per-task losses ℓ ∈ R^T; in rep mode the shared representation z is detached into a leaf, so
   that per-task gradients stop at z (multi-input data — one batch per task — gives one z_t per task); a
   method that reads the batch's two halves as two samples (``batch_halves``) gets them run one after the
   other in param and last_layer mode, ℓ being the halves' mean;
2. a bilevel loss method first takes its meta step on a validation batch (``MetaStep``);
3. λ = loss_method(ℓ) and the weighted losses λ_t ℓ_t, kept as T separate scalars: a per-task backward from
   one of them runs through its own head only;
4. without a gradient method, one backward of Σ λ_t ℓ_t (Algorithm 1). With one (Algorithm 2):
   G = ∇(λ_t ℓ_t) for every t on the shared parameters θ (param mode), on z (rep mode) or on the last
   shared layer (last_layer mode), one [T, D] matrix; the method's ``Combination`` becomes θ's gradient
   (rep mode: one backward of z with the combined gradient; last_layer mode: one backward of
   Σ_t w_t λ_t ℓ_t into θ); the heads and any learnable loss-weighting parameters get the gradient of
   Σ λ_t ℓ_t — the heads' parts come out of the same T per-task passes that fill G. An architecture's own
   penalty (``MTLArchitecture.regularization``, DSelect-k's) joins Σ λ_t ℓ_t; it depends on task-specific
   parameters only, so with a gradient method its gradient is added to theirs and stays out of G.

Every gradient method is reached through one call, ``method(TaskGradients, losses) -> Combination``, in
every mode. Data-parallel ranks (``trainer=ddp``) hand it global quantities: the losses' global means,
G averaged over the ranks (param mode) or, in rep mode where G's columns are per-sample, the ranks' Gram
matrices summed (``gram()``) or their blocks gathered (``matrix``); each rank then applies its own part
(rw_mtl.distributed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rw_mtl import distributed
from rw_mtl.training.batches import endless, endless_combined, inputs_by_task, split_in_halves, targets_of
from rw_mtl.weighting.base import backward_into_own_parameters, own_parameters
from rw_mtl.weighting.interface import Combination, MetaStep, TaskGradients
from rw_mtl.weighting.jacobian import accumulate_grad, assign_flat_grad, own_input_gradients

if TYPE_CHECKING:
    from rw_mtl.module import MTLModule


@dataclass
class StepResult:
    """What one step computed: the [T] losses and loss weights (detached)."""

    losses: Tensor
    loss_weights: Tensor


@dataclass
class _Forward:
    """The T loss terms of a batch; in rep mode also the representations z and the leaves the heads ran on;
    for a batch run as two halves (``GradWeighting.batch_halves`` outside rep mode) the halves' own."""

    terms: list[Tensor]
    reps: list[Tensor] | None = None
    leaves: list[Tensor] | None = None
    halves: tuple[_Forward, _Forward] | None = None


def _halves_mean(first: list[Tensor], second: list[Tensor]) -> list[Tensor]:
    """The T losses of a batch run as two halves: the means of the halves' losses. The step's forward and
    ``step_losses`` both take them so, so that a method comparing losses across the step compares like with
    like."""
    return [(a + b) / 2 for a, b in zip(first, second, strict=True)]


def _summed_gram(grads: Tensor, sample_shape: torch.Size, ranks: int) -> Tensor:
    """S Sᵀ for S [T, F]: each row of the rep-mode G [T, N·F] summed over its N samples — over every rank's
    samples under data parallelism (G's global rows are the ranks' blocks divided by R)."""
    summed = grads.reshape(grads.shape[0], -1, sample_shape.numel()).sum(dim=1)
    if ranks > 1:
        summed = distributed.sum_over_ranks_(summed) / ranks
    return summed @ summed.T


class BalancedStep:
    """Computes one step's gradients for an ``MTLModule`` (its architecture, tasks, methods and mode)."""

    def __init__(self, module: MTLModule) -> None:
        self.module = module
        self._validation_batches: Iterator[dict] | None = None
        self._training_batches: Iterator[dict] | None = None
        self._last_layer_checked = False

    # ------------------------------------------------------------------------------------------- losses
    def batch_losses(
        self, batch: dict, forward: Callable[..., dict[str, Tensor]] | None = None
    ) -> list[Tensor]:
        """The T scalar losses of ``batch`` with the model run by ``forward`` (default: the module)."""
        module = self.module
        forward = forward or module.forward
        predictions = {}
        for inputs, names in inputs_by_task(batch, module.task_names, module.multi_input):
            predictions.update(forward(inputs, names))
        return self._loss_terms(predictions, targets_of(batch, module.task_names, module.multi_input))

    def _loss_terms(self, predictions: dict[str, Tensor], targets: dict[str, Tensor]) -> list[Tensor]:
        return [
            task.loss(task.align(predictions[name], targets[name]), targets[name])
            for name, task in self.module.tasks.items()
        ]

    def _forward(self, batch: dict, encoder_graph: bool = True) -> _Forward:
        """The batch's loss terms; in rep mode z becomes a leaf, and with ``encoder_graph=False`` (an extra
        batch, whose gradients stop at z) the encoder runs without recording a graph."""
        module = self.module
        if not module.uses_rep_mode:
            return _Forward(self.batch_losses(batch))
        reps, leaves, predictions = [], [], {}
        for inputs, names in inputs_by_task(batch, module.task_names, module.multi_input):
            with torch.set_grad_enabled(encoder_graph):
                rep = module.arch.encode(inputs)
            leaf = rep.detach().requires_grad_(True)
            predictions.update(module.decode(leaf, names))
            reps.append(rep)
            leaves.append(leaf)
        targets = targets_of(batch, module.task_names, module.multi_input)
        return _Forward(self._loss_terms(predictions, targets), reps, leaves)

    def _forward_step_batch(self, batch: dict) -> _Forward:
        """The step batch's forward. A method that reads the batch's two halves as independent samples
        (``GradWeighting.batch_halves``) needs each half's G: in rep mode they are columns of the one
        forward's G (``TaskGradients.sample_halves``); in param and last_layer mode the halves run through
        the model one after the other (BatchNorm normalises each by its own statistics), and the step's
        losses are the means of the halves' losses."""
        method = self.module.grad_weighting
        if not self._runs_halves():
            return self._forward(batch)
        halves = split_in_halves(batch)
        try:
            first, second = (self._forward(half) for half in halves)
        except ValueError as error:  # e.g. BatchNorm on a 1-sample half with 1×1 features
            raise ValueError(
                f"{type(method).__name__} runs the step's batch as two halves, and the model failed on a "
                f"half ({error}); raise dataset.datamodule.batch_size or set "
                "weighting.grad.hparams.sampling=batches"
            ) from error
        return _Forward(_halves_mean(first.terms, second.terms), halves=(first, second))

    def _runs_halves(self) -> bool:
        """Whether the step runs its batch as two halves (``_forward_step_batch``)."""
        method = self.module.grad_weighting
        return method is not None and method.batch_halves and not self.module.uses_rep_mode

    def step_losses(
        self, batch: dict, forward: Callable[..., dict[str, Tensor]] | None = None
    ) -> list[Tensor]:
        """The T losses of ``batch`` as the step takes them: ``batch_losses``, or the halves' means when the
        step runs the batch as two halves — so that a method comparing losses before and after a step
        (FAMO, FORUM's inner loop) compares like with like (each half has its own BatchNorm statistics)."""
        if not self._runs_halves():
            return self.batch_losses(batch, forward)
        return _halves_mean(*(self.batch_losses(half, forward) for half in split_in_halves(batch)))

    def recompute_losses(self, batch: dict) -> Tensor:
        """[T] losses of ``batch`` with the current model, without a graph (``StepContext``), taken as the
        step took them (``step_losses``); with data-parallel ranks their means over the ranks, like the
        step's own losses."""
        with torch.no_grad():
            losses = torch.stack(self.step_losses(batch)).detach()
        if self.module.data_parallel:
            distributed.mean_over_ranks_(losses)
        return losses

    # --------------------------------------------------------------------------------------------- step
    def __call__(self, batch: dict) -> StepResult:
        module = self.module
        forward = self._forward_step_batch(batch)
        penalty = self._architecture_penalty(batch)
        terms = forward.terms
        if module.data_parallel:
            terms = distributed.global_mean_values(terms)
        losses = torch.stack(terms)
        method_losses = module.guard.begin_step(losses).float()
        with module.guard.keep_state_if_skipped([module.loss_weighting, module.grad_weighting]):
            if module.loss_weighting.needs_validation_batch:
                self._meta_step(losses, batch)
            loss_weights = module.loss_weighting.weights(losses)
            weighted = [weight * term for weight, term in zip(loss_weights.unbind(), terms, strict=True)]
            total = torch.stack(weighted).sum()
            regularization = module.loss_weighting.regularization()
            if regularization is not None:
                total = total + regularization
            if module.grad_weighting is None:
                module.manual_backward(total if penalty is None else total + penalty)
            else:
                self._balanced_backward(method_losses, weighted, total, forward, loss_weights.detach())
                if penalty is not None:
                    params = module.task_specific_parameters()
                    accumulate_grad(params, torch.autograd.grad(penalty, params, allow_unused=True))
        return StepResult(losses.detach(), loss_weights.detach())

    def _architecture_penalty(self, batch: dict) -> Tensor | None:
        """The architecture's own training term on this batch (``MTLArchitecture.regularization``:
        DSelect-k's selector penalties), summed over the batch's inputs; None when it has none. It depends
        on task-specific parameters only, so with a gradient method its gradient joins theirs."""
        module = self.module
        terms = [
            module.arch.regularization(inputs, names)
            for inputs, names in inputs_by_task(batch, module.task_names, module.multi_input)
        ]
        terms = [term for term in terms if term is not None]
        return torch.stack(terms).sum() if terms else None

    def _balanced_backward(
        self, losses: Tensor, weighted: list[Tensor], total: Tensor, forward: _Forward, loss_weights: Tensor
    ) -> None:
        """Step 4 with a gradient method (module docstring)."""
        module, method = self.module, self.module.grad_weighting
        heads = module.task_specific_parameters()
        if forward.halves is None:
            local, grads = self._task_gradients(weighted, forward.leaves, accumulate=heads)
        else:
            local, grads = self._halves_gradients(forward.halves, loss_weights, heads)
        grads.loss_weights = loss_weights
        if method.extra_batches:
            grads.extra = tuple(self._extra_gradients(loss_weights) for _ in range(method.extra_batches))
        # the method's algebra (Gram matrix, simplex solves) and the combined direction in float32 even
        # under bf16-mixed autocast: the shared parameters' .grad must keep their own dtype
        with torch.autocast(module.device.type, enabled=False):
            combination = method(grads, losses)
            self._apply_combination(combination, weighted, total, forward, local)

    def _apply_combination(
        self,
        combination: Combination,
        weighted: list[Tensor],
        total: Tensor,
        forward: _Forward,
        local: Tensor,
    ) -> None:
        """Backward of the method's own loss and the loss method's, then the combined gradient into the
        shared parameters (param / last_layer modes) or through z (rep mode)."""
        module, method = self.module, self.module.grad_weighting
        backward_into_own_parameters(method, combination.method_loss)
        self._loss_method_backward(total)
        if module.grad_mode == "last_layer":
            weights = module.guard.direction(combination.weights).to(weighted[0].dtype)
            objective = (weights * torch.stack(weighted)).sum()
            module.manual_backward(objective, inputs=module.shared_parameters())
        elif not module.uses_rep_mode:
            assign_flat_grad(
                module.guard.direction(combination.direction_for(local)), module.shared_parameters()
            )
        elif len(forward.reps) == 1:
            rep = forward.reps[0]
            direction = self._own_part(combination, local, per_task=False)
            module.manual_backward(rep, gradient=direction.view_as(rep).to(rep.dtype))
        else:
            contributions = self._own_part(combination, local, per_task=True)
            for rep, contribution in zip(forward.reps, contributions, strict=True):
                module.manual_backward(rep, gradient=contribution.view_as(rep).to(rep.dtype))

    def _task_gradients(
        self, weighted: list[Tensor], leaves: list[Tensor] | None, accumulate: list[Tensor]
    ) -> tuple[Tensor, TaskGradients]:
        """G of this process (non-finite rows zeroed by the guard) and the ``TaskGradients`` the method
        reads — global quantities under data parallelism."""
        module = self.module
        if module.grad_mode in ("param", "last_layer"):
            inputs = module.arch.last_shared_layer() if module.grad_mode == "last_layer" else None
            inputs = inputs or module.shared_parameters()
            grads = module.jacobian(weighted, inputs, accumulate=accumulate)
            if module.data_parallel:
                distributed.mean_over_ranks_(grads)
            if module.grad_mode == "last_layer" and not self._last_layer_checked:
                self._check_last_layer(grads, inputs)
            return module.guard.gradients(grads), TaskGradients(grads)
        if len(leaves) == 1:
            grads = module.jacobian(weighted, leaves, accumulate=accumulate)
            representation, sample_dim = leaves[0].detach(), 0
        else:
            grads = own_input_gradients(weighted, leaves, accumulate=accumulate)
            representation, sample_dim = torch.stack([leaf.detach() for leaf in leaves]), 1
        grads = module.guard.gradients(grads)
        sample_shape = leaves[0].shape[1:]
        ranks = distributed.world_size() if module.data_parallel else 1
        if module.rep_gram == "batch_sum":  # LibMTL: each task's gradient summed over the (global) batch
            gram_fn = lambda: _summed_gram(grads, sample_shape, ranks)  # noqa: E731
        elif module.data_parallel:
            gram_fn = lambda: distributed.sum_over_ranks_(grads @ grads.T) / ranks**2  # noqa: E731
        else:
            gram_fn = None
        if not module.data_parallel:
            return grads, TaskGradients(
                grads, gram_fn=gram_fn, representation=representation, sample_shape=sample_shape
            )
        return grads, TaskGradients(
            matrix_fn=lambda: distributed.gather_columns(grads)[0] / ranks,
            gram_fn=gram_fn,
            local=grads,
            sum_over_ranks=lambda product: distributed.sum_over_ranks_(product) / ranks**2,
            representation=distributed.gather_samples(representation, dim=sample_dim),
            sample_shape=sample_shape,
        )

    def _halves_gradients(
        self, halves: tuple[_Forward, _Forward], loss_weights: Tensor, heads: list[Tensor]
    ) -> tuple[Tensor, TaskGradients]:
        """Param / last_layer mode with the batch run as two halves: G_h of λ_t ℓ_t(ξ_h) / 2 for each half
        (T backward passes through each half: the cost of T through the batch), G = G₁ + G₂ (the step's
        losses are the halves' means), and the halves' own gradients G(ξ_h) = 2 G_h as ``extra``. The heads
        accumulate both halves' parts."""
        parts = []
        for half in halves:
            weighted = [
                weight * term / 2 for weight, term in zip(loss_weights.unbind(), half.terms, strict=True)
            ]
            parts.append(self._task_gradients(weighted, None, accumulate=heads)[0])
        local = parts[0] + parts[1]
        # scaled in place: a fresh [T, D] tensor costs its page faults on a CPU (docs/perf.md)
        return local, TaskGradients(local, extra=tuple(TaskGradients(part.mul_(2)) for part in parts))

    def _check_last_layer(self, grads: Tensor, layer: list[Tensor]) -> None:
        """At the first step (one host sync, once): a last shared layer that no task loss reaches would
        leave every task's gradient norm 0 and the method's weights where they started."""
        self._last_layer_checked = True
        if not bool(grads.abs().amax() > 0):
            ids = {id(p) for p in layer}
            names = [name for name, p in self.module.arch.named_parameters() if id(p) in ids]
            raise ValueError(
                f"weighting.grad.mode=last_layer: the last shared layer {names} receives no gradient from "
                "any task loss, so the gradient method could never weigh the tasks; set "
                "weighting.grad.mode=param (or rep), or make the encoder's output depend on that layer"
            )

    def _own_part(self, combination: Combination, local: Tensor, per_task: bool) -> Tensor:
        """This process's part of the combined gradient w.r.t. z: the direction [D] or, with per-task
        representations, each task's contribution [T, D]. Task weights apply to any block of columns; a
        per-task or direction answer computed on the ranks' gathered G is sliced to this rank's columns
        and scaled by R for the gradient averaging that follows (the global loss is the ranks' mean)."""
        guard = self.module.guard
        if combination.weights is not None or not self.module.data_parallel:
            part = combination.contributions_for(local) if per_task else combination.direction_for(local)
            return guard.direction(part)
        ranks, own = distributed.world_size(), distributed.own_columns(local.shape[1])
        if per_task:
            return guard.direction(combination.contributions_for(local)[:, own] * ranks)
        return guard.direction(combination.direction_for(local)[own] * ranks)

    def _loss_method_backward(self, total: Tensor) -> None:
        """∇ of Σ λ_t ℓ_t (+ penalty) for the loss method's own parameters (UW's, IMTL-L's scales), when a
        gradient method took the heads' gradients from its per-task passes: this traverses only λ's graph
        (the graph is kept for the backward of z or of the shared part that follows)."""
        params = own_parameters(self.module.loss_weighting)
        if params:
            accumulate_grad(params, torch.autograd.grad(total, params, retain_graph=True, allow_unused=True))

    # ------------------------------------------------------------------------------------ extra batches
    def _extra_gradients(self, loss_weights: Tensor) -> TaskGradients:
        """The per-task gradients (this step's mode and λ) of one further training batch, for methods
        with ``extra_batches``; the heads' gradients are not touched. In rep mode its G stops at z, so the
        encoder's forward records no graph (nothing would traverse it)."""
        forward = self._forward(self._next_batch("train"), encoder_graph=False)
        weighted = [weight * term for weight, term in zip(loss_weights.unbind(), forward.terms, strict=True)]
        _, grads = self._task_gradients(weighted, forward.leaves, accumulate=[])
        grads.loss_weights = loss_weights
        return grads

    def _meta_step(self, losses: Tensor, batch: dict) -> None:
        """A bilevel loss method's meta step: validation losses after a virtual step of θ, from
        ``MetaStep``; the method's returned loss trains its own parameters."""
        module = self.module
        params = {f"arch.{name}": p for name, p in module.arch.named_parameters() if p.requires_grad}
        validation_batch = self._next_batch("val")
        # the virtual forwards must not move BatchNorm's running statistics
        buffers = {name: buffer.clone() for name, buffer in module.named_buffers()}

        def losses_at(
            data: dict, losses_of: Callable[..., list[Tensor]]
        ) -> Callable[[dict[str, Tensor]], Tensor]:
            def evaluate(new_params: dict[str, Tensor]) -> Tensor:
                state = {**buffers, **new_params}
                call = lambda x, names: torch.func.functional_call(module, state, (x, names))  # noqa: E731
                return torch.stack(losses_of(data, call))

            return evaluate

        meta = MetaStep(
            losses=losses,
            params=params,
            validation_losses=losses_at(validation_batch, self.batch_losses),
            training_losses=losses_at(batch, self.step_losses),
            learning_rate=module.optimizers().optimizer.param_groups[0]["lr"],
        )
        if module.data_parallel:
            meta.mean_over_ranks = lambda tensor: distributed.mean_over_ranks_(tensor.detach().clone())
        backward_into_own_parameters(module.loss_weighting, module.loss_weighting.meta_step(meta))

    def _next_batch(self, split: str) -> dict:
        """The next batch of an endless pass over the ``split`` loader, on the device."""
        module = self.module
        attribute = "_validation_batches" if split == "val" else "_training_batches"
        if getattr(self, attribute) is None:
            setattr(self, attribute, self._endless_batches(split))
        return module.transfer_batch_to_device(next(getattr(self, attribute)), module.device, 0)

    def _endless_batches(self, split: str) -> Iterator[dict]:
        """Batches of the data module's ``split`` loader forever; without a data module (loaders given to
        ``fit`` directly) a second pass over the trainer's own training loader for ``train``."""
        module = self.module
        datamodule = module.trainer.datamodule
        if datamodule is None:
            loaders = module.trainer.train_dataloader if split == "train" else None
            if loaders is None:
                raise ValueError(f"this weighting method needs a datamodule with {split}_dataloader()")
        else:
            if split == "val" and getattr(datamodule, "validation_is_test", False):
                raise ValueError(
                    f"{type(module.loss_weighting).__name__} learns from validation batches, but this "
                    "dataset validates on its test split; set dataset.datamodule.validation=held_out"
                )
            loaders = datamodule.val_dataloader() if split == "val" else datamodule.train_dataloader()
        if not module.multi_input:
            return endless(loaders)
        if not isinstance(loaders, dict):
            loaders = dict(zip(module.task_names, loaders, strict=True))
        return endless_combined(loaders)

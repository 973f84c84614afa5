"""What the training step hands to a weighting method, and what the method hands back.

Every mode of the step (gradients on the shared parameters θ, on the shared representation z, on the last
shared layer; one process or data-parallel ranks) talks to a method through these types only, so a method
written against them behaves the same everywhere:

* ``TaskGradients`` — the per-task gradients G ∈ R^{T×D} of one step (plus, on demand, their Gram matrix,
  the representation z they were taken at, and gradients of extra batches);
* ``Combination`` — the method's answer: task weights w (d = Σ_t w_t g_t), per-task contributions
  (d = Σ_t c_t, each c_t applied to task t's own input where tasks have their own representations), or a
  direction d; plus, for methods with parameters of their own, a loss whose gradient trains them;
* ``MetaStep`` — what a bilevel loss method (MOML, Auto-λ, FORUM) needs for its meta step;
* ``StepContext`` — what a method's hook after the optimizer step can read (FAMO re-evaluates the losses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

#: what a gradient method's ``combine`` returns (``GradWeighting.produces``)
WEIGHTS, PER_TASK, DIRECTION = "weights", "per_task", "direction"


class TaskGradients:
    """The T per-task gradients of one step, as a gradient method reads them.

    ``matrix`` is G ∈ R^{T×D}, row t = ∇ λ_t ℓ_t w.r.t. the shared parameters (param mode), the last
    shared layer (last_layer mode) or the representation z (rep mode, the samples' gradients side by side).
    ``gram()`` is M = G Gᵀ — except in rep mode under ``weighting.grad.rep_gram=batch_sum`` (the default,
    LibMTL's), where the training step makes it S Sᵀ, S = each row summed over its samples. Both are
    computed at most once, on first use, and both may come from other processes: with data-parallel ranks
    the training step passes functions that all-reduce M (or S) or gather G, so a method that only reads
    ``gram()`` costs a small all-reduce and never sees a gathered G.

    In rep mode ``representation`` holds the values of z the gradients were taken at ([B, *F], or
    [T, B, *F] when every task has its own inputs and z_t) and ``sample_shape`` the shape F of one sample's
    z, so that a method can view a row as [N, *F] (N samples; more than B when ranks were gathered).
    ``extra`` holds the gradients of the extra training batches a method asked for
    (``GradWeighting.extra_batches``), taken in the same mode and with the same λ; ``inner(other)`` gives
    the T×T inner products of two such batches. ``loss_weights`` is the step's λ [T] (detached; None
    outside the step): G's rows are ∇(λ_t ℓ_t), and a method whose hyperparameters were set for
    unweighted losses can read the weights' scale from it.
    """

    def __init__(
        self,
        matrix: Tensor | None = None,
        *,
        matrix_fn: Callable[[], Tensor] | None = None,
        gram_fn: Callable[[], Tensor] | None = None,
        representation: Tensor | None = None,
        sample_shape: torch.Size | tuple[int, ...] | None = None,
        extra: tuple[TaskGradients, ...] = (),
        local: Tensor | None = None,
        sum_over_ranks: Callable[[Tensor], Tensor] | None = None,
        loss_weights: Tensor | None = None,
    ) -> None:
        if (matrix is None) == (matrix_fn is None):
            raise ValueError("TaskGradients needs exactly one of matrix and matrix_fn")
        if matrix is not None and (matrix.dim() != 2 or not torch.is_floating_point(matrix)):
            raise ValueError(f"grads must be a float [T, D] matrix, got {tuple(matrix.shape)} {matrix.dtype}")
        self._matrix, self._matrix_fn, self._gram_fn = matrix, matrix_fn, gram_fn
        self._gram: Tensor | None = None
        self.representation = representation
        self.sample_shape = torch.Size(sample_shape) if sample_shape is not None else None
        self.extra = tuple(extra)
        if (local is None) != (sum_over_ranks is None):
            raise ValueError("TaskGradients needs both or neither of local and sum_over_ranks")
        self._local, self._sum_over_ranks = local, sum_over_ranks
        self.loss_weights = loss_weights

    @property
    def matrix(self) -> Tensor:
        """G [T, D] (at least float32)."""
        if self._matrix is None:
            self._matrix = self._matrix_fn()
        return self._matrix

    def gram(self) -> Tensor:
        """M = G Gᵀ [T, T], in at least float32."""
        if self._gram is None:
            self._gram = self._gram_fn() if self._gram_fn is not None else self.matrix @ self.matrix.T
        return self._gram

    def inner(self, other: TaskGradients) -> Tensor:
        """G Hᵀ [T, T]: the inner products g_t · h_s of these gradients with ``other``'s, another batch's in
        the same mode (SDMGrad's and MoDo's double-sampling estimates). In rep mode a row holds the
        per-sample gradients side by side, so sample i of one batch meets sample i of the other — for
        independent samples E[Σ_i a_i · b_i] = N E[a] · E[b], an unbiased estimate of the product of the
        expected gradients, scaled by N as the Gram matrix of one batch is; the batches must then have
        equally many samples. Data-parallel ranks in rep mode multiply their own columns and sum the T×T
        products (``local``, ``sum_over_ranks``), so no G is gathered."""
        pairs_local = self._local is not None and other._local is not None
        first, second = (self._local, other._local) if pairs_local else (self.matrix, other.matrix)
        if first.shape[1] != second.shape[1]:
            raise ValueError(
                f"inner products of two batches' gradients need equally many columns, got {first.shape[1]} "
                f"and {second.shape[1]}: in rep mode give the training batches equal sizes (drop_last, "
                "dataset.datamodule.batch_size) or set weighting.grad.mode=param"
            )
        product = first @ second.T
        return self._sum_over_ranks(product) if pairs_local else product

    def sample_halves(self) -> tuple[TaskGradients, TaskGradients, int, int]:
        """(first, second, h, N) in rep mode: the gradients of the first h = ⌊N/2⌋ samples and of the next
        h (an odd last sample left out), as two batches whose ``inner`` pairs sample i with sample h + i
        (SDMGrad's and MoDo's ``sampling: halves``). With data-parallel ranks every rank halves its own
        samples, and ``inner`` sums the ranks' products, as it does for two extra batches."""
        if self.sample_shape is None:
            raise ValueError("per-sample gradients exist in rep mode only; set weighting.grad.mode=rep")
        own = self._local if self._local is not None else self.matrix
        width = self.sample_shape.numel()
        samples = own.shape[1] // width
        pairs = samples // 2
        first, second = own[:, : pairs * width], own[:, pairs * width : 2 * pairs * width]
        if self._local is None:
            return TaskGradients(first), TaskGradients(second), pairs, samples
        halves = (
            TaskGradients(matrix_fn=_unavailable, local=part, sum_over_ranks=self._sum_over_ranks)
            for part in (first, second)
        )
        return *halves, pairs, samples

    def per_sample(self) -> Tensor:
        """G viewed as [T, N, *F] (rep mode only): each row split into its N samples' gradients."""
        if self.sample_shape is None:
            raise ValueError("per-sample gradients exist in rep mode only; set weighting.grad.mode=rep")
        matrix = self.matrix
        return matrix.view(matrix.shape[0], -1, *self.sample_shape)


def _unavailable() -> Tensor:
    raise ValueError(
        "the halves of a data-parallel step's gradients (TaskGradients.sample_halves) give their inner "
        "products only; read .inner(), not .matrix"
    )


@dataclass(frozen=True)
class Combination:
    """A gradient method's answer for one step: exactly one of

    * ``weights`` [T] — d = Σ_t w_t g_t (every method that combines whole task gradients);
    * ``per_task`` [T, D] — task t contributes c_t and d = Σ_t c_t (coordinate-wise methods such as
      GradDrop); where tasks have their own representations z_t, c_t is z_t's gradient;
    * ``direction`` [D] — d itself, for methods that are neither (a coordinate-wise statistic of G).

    ``method_loss``: a scalar whose gradient w.r.t. the method's own parameters is their update (GradNorm's
    balancing loss, RotoGrad's rotation loss); the step back-propagates it into those parameters only.
    """

    weights: Tensor | None = None
    per_task: Tensor | None = None
    direction: Tensor | None = None
    method_loss: Tensor | None = None

    @property
    def kind(self) -> str:
        given = [name for name in (WEIGHTS, PER_TASK, DIRECTION) if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a Combination holds exactly one of weights, per_task, direction; got {given}")
        return given[0]

    def direction_for(self, matrix: Tensor) -> Tensor:
        """d [D] for the gradient matrix ``matrix`` [T, D] these results were computed from (or for this
        process's columns of it: weights and per-task columns apply to any block of columns)."""
        if self.weights is not None:
            return self.weights.to(matrix) @ matrix
        if self.per_task is not None:
            return self.per_task.sum(dim=0)
        return self.direction

    def contributions_for(self, matrix: Tensor) -> Tensor:
        """[T, D]: task t's contribution c_t (w_t g_t for weights). Not defined for a bare direction."""
        if self.weights is not None:
            return self.weights.to(matrix)[:, None] * matrix
        if self.per_task is not None:
            return self.per_task
        raise ValueError("a method that returns a direction has no per-task contributions")


def surrogate_loss(parameter: Tensor, gradient: Tensor) -> Tensor:
    """Σ parameter ⊙ gradient (gradient detached): a scalar whose gradient w.r.t. ``parameter`` is
    ``gradient`` — how a method hands a computed update of its own parameters to the optimizer."""
    return (parameter * gradient.detach().to(parameter.dtype)).sum()


@dataclass
class MetaStep:
    """The inputs of a bilevel loss method's meta step (``LossWeighting.meta_step``), taken before θ moves.

    ``losses``: this step's training losses ℓ [T] with their graph; ``params``: the model's trainable
    parameters by name; ``validation_losses(new_params)``: the [T] losses of a validation batch with the
    model run on ``new_params`` (parameters not given keep their values); ``training_losses(new_params)``:
    the same on this step's training batch; ``learning_rate``: the model's learning rate η.

    With data-parallel ranks every rank has its own training and validation batch: ``losses`` hold the
    ranks' means as values (their gradients are this rank's), the two functions this rank's losses.
    ``mean_over_ranks(x)`` (the identity on one process) returns a detached tensor's mean over the ranks,
    so that a method can make its meta step the global batch's — e.g. by averaging the gradients it takes
    — and every rank computes the same update and state.
    """

    losses: Tensor
    params: Mapping[str, Tensor]
    validation_losses: Callable[[Mapping[str, Tensor]], Tensor]
    training_losses: Callable[[Mapping[str, Tensor]], Tensor]
    learning_rate: float
    mean_over_ranks: Callable[[Tensor], Tensor] = lambda tensor: tensor


@dataclass
class StepContext:
    """What a method's ``after_step`` hook can read once the optimizer has stepped: the step's losses ℓ
    before the update, ``recompute_losses()`` — the [T] losses of the same batch with the updated model,
    without a graph (one extra forward, taken only if called) — and ``skipped``, a 0-dim bool tensor on
    the device that is True when the step's update was withheld for a non-finite loss or gradient (None
    when on_nonfinite=off). A method updating its state here selects with it on the device
    (``torch.where(context.skipped, old, new)``) rather than reading it on the host."""

    losses: Tensor
    recompute_losses: Callable[[], Tensor]
    step: int
    skipped: Tensor | None = None

"""The two kinds of task-balancing strategy and the contracts the training step relies on.

Loss balancing picks the loss weights λ of Eq. (1), ``L = Σ_t λ_t ℓ_t``; gradient balancing turns the
per-task gradients of the shared parameters (or of the shared representation z) into one update
direction, Eq. (2). Both are ``nn.Module`` so that learnable weights (UW) and running state (DWA, GradVac)
move with the model between devices and are saved in checkpoints.

One contract per kind, the same in every mode of the step (rw_mtl.weighting.interface has the types):

* loss methods: ``weights(losses) -> λ``, optionally ``regularization()``, ``meta_step(MetaStep)``
  (bilevel methods, ``needs_validation_batch``), ``epoch_end(mean_losses)``;
* gradient methods: ``combine(TaskGradients, losses) -> Combination`` (task weights, per-task
  contributions or a direction, and optionally a loss for the method's own parameters);
* both: ``after_step(StepContext)``, called once the optimizer has stepped, and ``epoch_end(mean
  losses)`` after each training epoch.

A method never writes gradients, weights or state anywhere else: the step applies what it returns.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from rw_mtl.choices import GRAD_MODES
from rw_mtl.weighting.interface import (
    DIRECTION,
    PER_TASK,
    WEIGHTS,
    Combination,
    MetaStep,
    StepContext,
    TaskGradients,
)
from rw_mtl.weighting.jacobian import accumulate_grad

#: ``weight_sum`` of EW, DWA and GradNorm: their weights sum to T (LibMTL's, the paper's runs) or to one
WEIGHT_SUMS = ("tasks", "one")


class _Weighting(nn.Module):
    #: learning rate of this method's own parameters (their own optimizer group); None = the model's.
    learning_rate: float | None = None
    #: weight decay of that group; None = the model optimizer's.
    weight_decay: float | None = None

    def __init__(self, task_num: int) -> None:
        super().__init__()
        if not isinstance(task_num, int) or task_num < 1:
            raise ValueError(f"task_num must be a positive int, got {task_num!r}")
        self.task_num = task_num

    def after_step(self, context: StepContext) -> None:
        """Called after every optimizer step (``context.skipped`` says, on the device, whether its update
        was withheld); no-op by default."""

    def epoch_end(self, mean_losses: Tensor) -> None:
        """Called after each training epoch with the [T] mean training loss of every task (DWA, and
        methods that fix a reference after the first epoch); no-op by default."""

    def _check_task_dim(self, size: int, what: str) -> None:
        if size != self.task_num:
            raise ValueError(
                f"{type(self).__name__} was built for {self.task_num} tasks but got {what} for {size} tasks"
            )


class LossWeighting(_Weighting):
    """Chooses the loss weights λ ∈ R^T applied to the per-task losses ℓ ∈ R^T each step.

    The weights multiply the losses before any backward pass, so they scale both the shared parameters'
    gradient and each task-specific parameter's gradient (Algorithm 1, lines 7 and 9). A method that sets
    ``needs_validation_batch`` (MOML) gets ``meta_step(MetaStep)`` with a validation batch every step,
    before λ is asked for.
    """

    needs_validation_batch: ClassVar[bool] = False

    def weights(self, losses: Tensor) -> Tensor:
        """Return λ for this step; ``losses`` is the [T] vector of per-task losses (with its graph)."""
        raise NotImplementedError

    def regularization(self) -> Tensor | None:
        """An extra term added to Σ λ_t ℓ_t (UW's and IMTL-L's penalties on their learnable scales)."""
        return None

    def meta_step(self, meta: MetaStep) -> Tensor | None:
        """A bilevel method's meta step; returns a loss whose gradient w.r.t. the method's own parameters
        is their update (``interface.surrogate_loss``), or None."""
        raise NotImplementedError(f"{type(self).__name__} sets needs_validation_batch but has no meta_step")


class GradWeighting(_Weighting):
    """Turns per-task gradients G ∈ R^{T×D} of the shared part into one direction d ∈ R^D.

    Only the shared parameters (or the shared representation, in rep mode) receive ``d``; task-specific
    parameters keep their own gradients (Algorithm 2, line 10). Subclasses implement ``combine`` and say
    in ``produces`` what it returns: ``"weights"`` (d = Σ_t w_t g_t; every mode works, including
    ``last_layer`` and per-task representations), ``"per_task"`` (contributions c_t, d = Σ c_t) or
    ``"direction"``. ``extra_batches`` asks the step for the gradients of that many further training
    batches (``TaskGradients.extra``); ``batch_halves`` for those of the two halves of the step's own batch
    (``TaskGradients.sample_halves()`` in rep mode, ``extra`` in the others). ``modes`` lists the
    ``weighting.grad.mode`` values the method is defined for (MoCo, which tracks gradients of θ across
    steps: param only).

    Call the method (``method(grads, losses)``) to get a checked ``Combination``; ``last_weights`` then
    holds its [T] task weights where it has them. ``aggregate(G)`` is the same on a plain matrix.
    """

    produces: ClassVar[str] = WEIGHTS
    extra_batches: int = 0  # an instance may set its own (SDMGrad's and MoDo's ``sampling``)
    batch_halves: bool = False  # whether it reads the two halves of the step's batch as two samples
    modes: ClassVar[tuple[str, ...]] = GRAD_MODES

    def __init__(self, task_num: int) -> None:
        super().__init__(task_num)
        if self.produces not in (WEIGHTS, PER_TASK, DIRECTION):
            raise TypeError(f"{type(self).__name__}.produces must be one of weights, per_task, direction")
        self.last_weights: Tensor | None = None

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        """This step's combination of the task gradients ``grads``; ``losses`` is the [T] vector of
        unweighted per-task losses (detached; MGDA-UB's loss normalisation, GradNorm's training rates)."""
        raise NotImplementedError

    def forward(self, grads: TaskGradients, losses: Tensor | None = None) -> Combination:
        """``combine``, checked against ``produces`` and the task count; records ``last_weights``."""
        combination = self.combine(grads, losses)
        if combination.kind != self.produces:
            raise TypeError(
                f"{type(self).__name__}.combine returned {combination.kind}, but the class says it produces "
                f"{self.produces}"
            )
        values = getattr(combination, combination.kind)
        if combination.kind != DIRECTION:
            self._check_task_dim(values.shape[0], "a combination")
        self.last_weights = combination.weights.detach() if combination.weights is not None else None
        return combination

    def aggregate(self, grads: Tensor, losses: Tensor | None = None) -> Tensor:
        """d [D] for the [T, D] matrix ``grads`` (outside the training step, e.g. on a plain matrix). A
        method loss, if any, is back-propagated into the method's own parameters' ``.grad``."""
        self._check_grads(grads)
        combination = self(TaskGradients(grads), losses)
        backward_into_own_parameters(self, combination.method_loss)
        return combination.direction_for(grads)

    def bind(self, arch) -> None:
        """Called once by ``MTLModule`` with its architecture, before any optimizer exists: methods whose own
        parameters are shaped by the model (RotoGrad's rotations, sized by z's channels) create them here.
        No-op by default."""

    def task_representations(self, rep: Tensor) -> list[Tensor] | None:
        """Per-task views of the shared representation z that the heads consume (RotoGrad's rotations),
        in training and evaluation alike; None (the default) feeds z itself to every head."""
        return None

    @property
    def transforms_representation(self) -> bool:
        """Whether this method defines ``task_representations`` (and so needs rep mode)."""
        return type(self)._defines_task_representations()

    @classmethod
    def _defines_task_representations(cls) -> bool:
        return cls.task_representations is not GradWeighting.task_representations

    @classmethod
    def supported_modes(cls) -> tuple[str, ...]:
        """The ``weighting.grad.mode`` values the method runs in: its declared ``modes``, only ``rep`` for a
        method with ``task_representations`` (RotoGrad rotates z), and no ``last_layer`` for a method that
        does not return task weights (the last layer's gradients can only weight the tasks' losses)."""
        modes = cls.modes
        if cls._defines_task_representations():
            modes = tuple(mode for mode in modes if mode == "rep")
        if cls.produces != WEIGHTS:
            modes = tuple(mode for mode in modes if mode != "last_layer")
        return modes

    @classmethod
    def check_mode(cls, mode: str, name: str | None = None, multi_input: bool = False) -> None:
        """Refuse a ``weighting.grad.mode`` the method does not run in, naming the allowed ones (``name``:
        the config name, ``weighting/grad=<name>``; the class name if None). With ``multi_input`` data
        (every task its own inputs and z_t) a method that returns one direction has no rep mode either:
        d cannot be split over the tasks' representations."""
        method = f"weighting/grad={name}" if name is not None else cls.__name__
        allowed = cls.supported_modes()
        if mode in allowed and multi_input and mode == "rep" and cls.produces == DIRECTION:
            raise ValueError(
                f"{method} gives one direction, which cannot be split over the per-task representations of "
                "a multi-input dataset; set weighting.grad.mode=param for this dataset"
            )
        if mode in allowed:
            return
        if cls._defines_task_representations():
            why = " (it transforms the shared representation z)"
        elif mode == "last_layer" and cls.produces != WEIGHTS:
            why = (
                f" (it gives {cls.produces.replace('_', '-')} results, not task weights, which the last "
                "shared layer's gradients alone cannot give)"
            )
        else:
            why = ""
        raise ValueError(
            f"{method} is defined for weighting.grad.mode in {list(allowed)} only{why}, got `{mode}`; "
            f"set weighting.grad.mode={' or '.join(allowed)}"
        )

    def _require_losses(self, losses: Tensor | None, why: str) -> Tensor:
        if losses is None:
            raise ValueError(
                f"{type(self).__name__} needs the per-task losses ({why}): aggregate(grads, losses)"
            )
        self._check_task_dim(losses.shape[0], "losses")
        return losses.detach()

    def _check_grads(self, grads: Tensor) -> None:
        if grads.dim() != 2 or not torch.is_floating_point(grads):
            raise ValueError(f"grads must be a float [T, D] matrix, got {tuple(grads.shape)} {grads.dtype}")
        self._check_task_dim(grads.shape[0], "a gradient matrix")


class GramWeighting(GradWeighting):
    """A gradient method whose direction is a linear combination d = Σ_t w_t g_t with w a function of the
    Gram matrix M = G Gᵀ (and the losses) alone.

    That covers MGDA-UB, GradNorm, PCGrad, IMTL-G, GradVac, CAGrad (every projection they perform on
    gradients is an inner product) and RGW (whose w ignores M, ``needs_gram = False``): the method runs on
    the T×T matrix M (one [T, D] × [D, T] product) and the [D]-sized work is the single combination
    ``w @ G``. Data-parallel training relies on this split: the ranks sum their T×T matrices and every
    rank then computes the same w (rw_mtl.distributed).
    """

    produces: ClassVar[str] = WEIGHTS
    #: whether ``gram_weights`` reads M (False: M is not computed and ``gram`` is None)
    needs_gram: ClassVar[bool] = True

    def gram_weights(self, gram: Tensor | None, losses: Tensor | None) -> Tensor:
        """The [T] combination weights w for the Gram matrix ``gram`` [T, T]."""
        raise NotImplementedError

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        gram = grads.gram() if self.needs_gram else None
        return Combination(weights=self.gram_weights(gram, losses).detach())


def own_parameters(method: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of a weighting method (UW's log-variances, GradNorm's logits, …)."""
    return [p for p in method.parameters() if p.requires_grad]


def backward_into_own_parameters(method: nn.Module, loss: Tensor | None) -> None:
    """Accumulate the gradient of a method's own ``loss`` (a Combination's method_loss, a meta step's
    surrogate) into the method's parameters only; nothing for None."""
    if loss is None:
        return
    params = own_parameters(method)
    if not params:
        raise ValueError(f"{type(method).__name__} returned a method loss but has no trainable parameters")
    accumulate_grad(params, torch.autograd.grad(loss, params, allow_unused=True))

"""MTLModule: the one LightningModule of rw_mtl — an architecture, its tasks and their balancing methods.

It wires the pieces of rw_mtl.training together and keeps Lightning's hooks thin:

* ``training_step`` — ``BalancedStep`` computes the step's gradients (Algorithms 1 and 2; see
  rw_mtl/training/step.py), data-parallel ranks average their rank-local gradients, the optimizer steps
  unless the ``NonFiniteGuard`` withholds the update, and the methods' ``after_step`` hooks run;
* evaluation — ``EvaluationMetrics`` updates the torchmetrics of every task and scores validation epochs
  (Δp against the first validation epoch) for model selection;
* checkpoints — besides the weights: the validation history, the score reference, the skipped-step count
  and every RNG state, so that a resumed run ends exactly like an uninterrupted one.

A step that does not log makes no host-device synchronisation; a logging step makes one transfer (the
logged values and the guard's flags together). docs/design.md describes the design.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial

import lightning as L
import torch
from torch import Tensor, nn

from rw_mtl import distributed
from rw_mtl.arch.base import MTLArchitecture
from rw_mtl.choices import GRAD_MODES, REP_GRAMS, check_precision, check_rep_gram
from rw_mtl.tasks.base import Task
from rw_mtl.training.evaluation import EvaluationMetrics
from rw_mtl.training.jacobian_choice import AUTO, JacobianChoice
from rw_mtl.training.nonfinite import NONFINITE_POLICIES, NonFiniteError, NonFiniteGuard
from rw_mtl.training.state import rng_states, set_rng_states
from rw_mtl.training.step import BalancedStep
from rw_mtl.weighting.base import GradWeighting, LossWeighting, own_parameters
from rw_mtl.weighting.interface import StepContext

__all__ = ["GRAD_MODES", "NONFINITE_POLICIES", "MTLModule", "NonFiniteError", "check_precision"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
DEFAULT_OPTIMIZER: OptimizerFactory = partial(torch.optim.Adam, lr=1e-3)
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def check_combination(
    arch: MTLArchitecture, method: GradWeighting | None, mode: str, multi_input: bool
) -> None:
    """Refuse a gradient method × mode × architecture × data combination that cannot work, naming the fix."""
    if mode not in GRAD_MODES:
        raise ValueError(f"weighting.grad.mode must be one of {GRAD_MODES}, got {mode!r}")
    if method is None:
        return
    method.check_mode(mode, multi_input=multi_input)
    if mode == "rep" and not arch.supports_rep_mode:
        raise ValueError(
            f"{type(arch).__name__} has no single shared representation, so rep mode is impossible; "
            "set weighting.grad.mode=param"
        )


class MTLModule(L.LightningModule):
    """Wraps an ``MTLArchitecture`` and its tasks; balances them with a loss and an optional gradient method.

    ``grad_mode`` chooses where a gradient method sees per-task gradients: ``"param"`` (θ), ``"rep"`` (z,
    architectures with ``supports_rep_mode``) or ``"last_layer"`` (the last shared layer's weights W only:
    the method's task weights w come from them and θ gets ∇_θ Σ_t w_t λ_t ℓ_t, GradNorm's original set-up;
    methods that produce task weights only). ``batched_jacobian`` (``False`` | ``True`` | ``"auto"``) fills G
    with T autograd calls or one vmapped call, or the faster of the two measured at the first step
    (rw_mtl.training.jacobian_choice). ``rep_gram`` (rep mode): the Gram matrix a Gram method reads is
    that of each task's gradient summed over the batch (``"batch_sum"``, LibMTL's — the paper's runs) or of
    the flattened per-sample gradients (``"per_sample"``, the original MGDA-UB's). ``optimizer`` and
    ``scheduler`` are factories (Hydra ``_partial_`` configs); the scheduler, if any, steps once per epoch.
    ``on_nonfinite`` (``raise`` | ``skip`` | ``off``) and ``max_skipped_fraction`` decide what a NaN/inf
    task loss or gradient does (rw_mtl.training.nonfinite).

    ``multi_input``: every task has its own inputs (Office, XTREME); batches are then ``{task: {"inputs",
    "targets"}}`` (one batch per task per step) and evaluation loaders come one per task. In rep mode each
    task's gradient is taken w.r.t. its own z_t, and the method's per-task results apply to each z_t.
    """

    def __init__(
        self,
        arch: MTLArchitecture,
        tasks: Mapping[str, Task],
        loss_weighting: LossWeighting,
        grad_weighting: GradWeighting | None = None,
        grad_mode: str = "param",
        batched_jacobian: bool | str = AUTO,
        rep_gram: str = REP_GRAMS[0],
        optimizer: OptimizerFactory = DEFAULT_OPTIMIZER,
        scheduler: SchedulerFactory | None = None,
        on_nonfinite: str = "raise",
        multi_input: bool = False,
        max_skipped_fraction: float = 0.05,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if list(tasks) != arch.task_names:
            raise ValueError(f"tasks {list(tasks)} do not match the architecture's heads {arch.task_names}")
        check_combination(arch, grad_weighting, grad_mode, multi_input)
        check_rep_gram(rep_gram)
        if grad_weighting is not None:
            grad_weighting.bind(arch)
        for method in (loss_weighting, grad_weighting):
            if method is not None and method.task_num != len(tasks):
                raise ValueError(
                    f"{type(method).__name__} was built for {method.task_num} tasks, not {len(tasks)}"
                )
        self.arch = arch
        self.tasks = dict(tasks)
        self.task_names = list(tasks)
        self.loss_weighting = loss_weighting
        self.grad_weighting = grad_weighting
        self.grad_mode = grad_mode
        self.rep_gram = rep_gram
        self.jacobian = JacobianChoice(batched_jacobian)
        self.multi_input = multi_input
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.evaluation = EvaluationMetrics(self.tasks)
        self.guard = NonFiniteGuard(on_nonfinite, self.task_names, max_skipped_fraction)
        self.balanced_step = BalancedStep(self)
        self.data_parallel = False
        self.last_loss_weights: Tensor | None = None  # λ of the latest step
        self._last_step_start: float | None = None

    # ----------------------------------------------------------------------------------- the model's parts
    @property
    def uses_rep_mode(self) -> bool:
        return self.grad_weighting is not None and self.grad_mode == "rep"

    @property
    def transforms_rep(self) -> bool:
        return self.grad_weighting is not None and self.grad_weighting.transforms_representation

    def shared_parameters(self) -> list[nn.Parameter]:
        """θ, the parameters a gradient method balances."""
        return [p for p in self.arch.shared_parameters() if p.requires_grad]

    def task_specific_parameters(self) -> list[nn.Parameter]:
        """ψ, the heads (each updated by its own task's gradient)."""
        return [p for p in self.arch.task_parameters() if p.requires_grad]

    def decode(self, rep: Tensor, tasks: list[str] | None = None) -> dict[str, Tensor]:
        """Heads on z, or on each task's own view of z where the gradient method defines one (RotoGrad)."""
        tasks = tasks or self.task_names
        if not self.transforms_rep:
            return self.arch.decode(rep, tasks)
        views = dict(zip(self.task_names, self.grad_weighting.task_representations(rep), strict=True))
        return {name: self.arch.decode(views[name], [name])[name] for name in tasks}

    def forward(self, inputs: Tensor, tasks: list[str] | None = None) -> dict[str, Tensor]:
        """Predictions for ``tasks`` (default all) of the model as trained (with RotoGrad's rotations)."""
        return (
            self.decode(self.arch.encode(inputs), tasks) if self.transforms_rep else self.arch(inputs, tasks)
        )

    # -------------------------------------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        check_precision(self.trainer.precision, self.grad_weighting is not None)
        strategy = self.trainer.strategy
        if self.trainer.world_size > 1 and not isinstance(strategy, distributed.BalancedDDPStrategy):
            raise ValueError(
                f"{type(strategy).__name__} does not synchronise the task weights across ranks; "
                "use trainer=ddp (rw_mtl.distributed.BalancedDDPStrategy) for multi-device training"
            )
        self.data_parallel = distributed.world_size() > 1
        self.guard.data_parallel = self.data_parallel
        self.guard.reset(self.device)

    def on_train_epoch_start(self) -> None:
        self._epoch_loss_sum = torch.zeros(len(self.tasks), device=self.device)
        self._epoch_steps_taken = torch.zeros((), device=self.device)
        self._epoch_steps = 0
        self.arch.epoch_start(self.current_epoch, self.trainer.max_epochs)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        started = time.perf_counter()
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        result = self.balanced_step(batch)
        self.last_loss_weights = result.loss_weights
        if self.data_parallel:
            distributed.average_gradients_(self._rank_local_gradient_parameters())
        skipped = self.guard.step_verdict() if self.guard.active else None
        if self.guard.before_optimizer_step(optimizer.optimizer, self.global_step):
            optimizer.step()
        self.guard.after_optimizer_step(optimizer.optimizer)
        context = StepContext(
            losses=result.losses,
            recompute_losses=partial(self.balanced_step.recompute_losses, batch),
            step=self.global_step,
            skipped=skipped,
        )
        for method in (self.loss_weighting, self.grad_weighting):
            if method is not None:
                method.after_step(context)
        taken = torch.ones((), device=self.device) if skipped is None else (~skipped).float()
        self._epoch_loss_sum += taken * torch.nan_to_num(result.losses, nan=0.0, posinf=0.0, neginf=0.0)
        self._epoch_steps_taken += taken
        self._epoch_steps += 1
        if self.trainer is not None and self.global_step % self.trainer.log_every_n_steps == 0:
            self._log_step(result.losses, result.loss_weights, started)
        self._last_step_start = started

    def _rank_local_gradient_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradients a data-parallel rank computed from its own samples only: all
        but the shared ones when a param-mode gradient method already wrote the global direction there."""
        own = self.task_specific_parameters() + own_parameters(self.loss_weighting)
        if self.grad_weighting is not None and self.grad_mode == "param":
            return own
        return self.shared_parameters() + own

    def _log_step(self, losses: Tensor, loss_weights: Tensor, started: float) -> None:
        """Log ℓ, λ, the gradient weights and the step time, and act on the guard's flags: all in one
        device-to-host transfer."""
        names = [f"train/loss/{name}" for name in self.task_names]
        names += [f"train/loss_weight/{name}" for name in self.task_names]
        parts = [losses.float(), loss_weights.float()]
        grad_weights = self.grad_weighting.last_weights if self.grad_weighting is not None else None
        if grad_weights is not None:
            names += [f"train/grad_weight/{name}" for name in self.task_names]
            parts.append(grad_weights.float().to(self.device))
        status = self.guard.status(self.parameters())
        host = torch.cat([*parts, status.float()]).cpu()  # the logging step's one transfer
        values = dict(zip(names, host[: len(names)].unbind(), strict=True))
        if self._last_step_start is not None:
            values["train/step_time_s"] = torch.tensor(started - self._last_step_start)
        self.log_dict(values, on_step=True, on_epoch=False)
        self.guard.verdict(host[len(names) :].tolist(), self.global_step)

    def on_train_epoch_end(self) -> None:
        status = self.guard.status(self.parameters())
        if status.numel():
            self.guard.verdict(status.cpu().tolist(), self.global_step, epoch_steps=self._epoch_steps)
        if self._epoch_steps:
            mean_losses = self._epoch_loss_sum / self._epoch_steps_taken.clamp_min(1)
            for method in (self.loss_weighting, self.grad_weighting):
                if method is not None:
                    method.epoch_end(mean_losses)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self._parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}

    def _parameter_groups(self) -> list[dict]:
        """One group for the model; one more per weighting method that sets its own ``learning_rate`` or
        ``weight_decay`` (MOML's α: lr 1e-3, no weight decay)."""
        groups, own = [], set()
        for method in (self.loss_weighting, self.grad_weighting):
            if method is None:
                continue
            options = {"lr": method.learning_rate, "weight_decay": method.weight_decay}
            options = {key: value for key, value in options.items() if value is not None}
            params = own_parameters(method)
            if options and params:
                groups.append({"params": params, **options})
                own.update(id(p) for p in params)
        return [{"params": [p for p in self.parameters() if id(p) not in own]}, *groups]

    # ------------------------------------------------------------------------------------------ evaluation
    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluation_step(batch, "val", dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluation_step(batch, "test", dataloader_idx)

    def _evaluation_step(self, batch: dict, split: str, dataloader_idx: int = 0) -> None:
        """Update the metrics; with multi-input data each evaluation loader holds one task's data."""
        tasks = [self.task_names[dataloader_idx]] if self.multi_input else self.task_names
        predictions = self(batch["inputs"], tasks)
        batch_size = len(batch["targets"][tasks[0]])
        for name in tasks:
            task, target = self.tasks[name], batch["targets"][name]
            prediction = task.align(predictions[name], target)
            self.evaluation.update(split, name, prediction, target)
            self.log(
                f"{split}/loss/{name}",
                task.loss(prediction, target),
                on_step=False,
                on_epoch=True,
                batch_size=batch_size,
                add_dataloader_idx=False,
                sync_dist=True,  # a no-op on one device; the mean over the ranks' samples with trainer=ddp
            )

    def on_validation_epoch_start(self) -> None:
        if self.data_parallel:  # one model on every rank: rank 0's BatchNorm statistics
            distributed.broadcast_buffers_(self)

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _finish_evaluation(self, split: str) -> None:
        """Compute and log the per-task metrics of ``split``; for validation also log ``val/score``, which
        picks the best checkpoint, and record the epoch in ``val_history``."""
        for name, computed in self.evaluation.compute(split).items():
            for metric, value in computed.items():  # torchmetrics already synced the ranks' states
                self.log(f"{split}/{name}/{metric}", value, sync_dist=True)
        if split == "val" and not self.trainer.sanity_checking:
            score = self.evaluation.record_validation(self.current_epoch)
            self.log("val/score", torch.tensor(score), sync_dist=True)

    @property
    def epoch_metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        """split → task → metric → value of each split's latest evaluation."""
        return self.evaluation.latest

    @property
    def val_history(self) -> list[dict]:
        return self.evaluation.val_history

    @property
    def skipped_steps(self) -> int:
        return self.guard.skipped_steps

    def score(self, results: Mapping[str, Mapping[str, float]]) -> float:
        """Model-selection score of ``results`` (rw_mtl.training.evaluation)."""
        return self.evaluation.score(results)

    # ----------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Besides the weights: history, score reference, skipped steps, every RNG and the way
        ``batched_jacobian=auto`` fills G, so that a resumed run draws the same shuffles and random weights
        and computes G the same way as before the interruption (auto measures the ways' speed only once)."""
        checkpoint["rw_mtl"] = {
            "val_history": self.evaluation.val_history,
            "score_reference": self.evaluation.score_reference,
            "skipped_steps": self.guard.skipped_steps,
            "rng": rng_states(),
            "batched_jacobian": self.jacobian.batched,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("rw_mtl", {})
        self.evaluation.val_history = list(state.get("val_history", []))
        self.evaluation.score_reference = state.get("score_reference")
        self.guard.skipped_steps = state.get("skipped_steps", 0)
        if "rng" in state:
            set_rng_states(state["rng"])
        if self.jacobian.setting == AUTO and state.get("batched_jacobian") is not None:
            self.jacobian.batched = state["batched_jacobian"]  # what auto measured: the resumed run keeps it

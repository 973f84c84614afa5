"""What a NaN/inf task loss or gradient does to training (``on_nonfinite``), without stalling the device.

A per-step ``bool(torch.isfinite(x).all())`` is a host synchronisation: on a GPU every step would wait for
the device. The guard instead keeps its verdicts on the device and reads them at the step's sync points
(logging steps, where one transfer carries the logged values and the guard's flags together, and epoch
ends):

* ``raise`` — a step with a non-finite task loss or gradient is recorded (step number, tasks, loss or
  gradient) and its update is withheld where the optimizer can do that on the device; the next sync point
  raises ``NonFiniteError`` naming that step and those tasks;
* ``skip`` — such a step is skipped: no parameter moves, the optimizer's state and the weighting methods'
  running state stay as they were, and it does not count in the epoch's mean losses. The optimizer
  withholds the update on the device when it supports it (``found_inf``, as ``torch.amp.GradScaler``
  uses it: fused Adam/AdamW/SGD); with any other optimizer the guard reads the verdict on the host, one
  sync per step. A run stops with an error when more than ``max_skipped_fraction`` of an epoch's steps
  were skipped;
* ``off`` — no check and no cost.

Under ``raise`` and ``skip`` every sync point also checks that the model's parameters are finite, so a
model that diverged (weights NaN after skipped steps or an overflow in a step the checks did not cover)
stops the run with an error instead of producing a results.json of a dead model. Non-finite rows of G
are zeroed and non-finite losses replaced by 1 before any weighting method sees them, so a solver never
receives NaN.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from rw_mtl import distributed
from rw_mtl.choices import NONFINITE_POLICIES

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """A task's loss or gradient, or the model itself, became NaN/inf; the message names task and step."""


class NonFiniteGuard:
    """Device-side verdicts of ``on_nonfinite`` for a model with tasks ``task_names`` (module docstring)."""

    def __init__(self, policy: str, task_names: Sequence[str], max_skipped_fraction: float = 0.05) -> None:
        if policy not in NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {policy!r}")
        if not 0 <= max_skipped_fraction <= 1:
            raise ValueError(f"max_skipped_fraction must be in [0, 1], got {max_skipped_fraction}")
        self.policy, self.task_names = policy, list(task_names)
        self.max_skipped_fraction = max_skipped_fraction
        self.data_parallel = False
        self._device: torch.device | None = None
        self.skipped_steps = 0  # host count up to the last sync point (checkpoints, results.json)

    @property
    def active(self) -> bool:
        return self.policy != "off"

    # --------------------------------------------------------------------------------- per step, no sync
    def reset(self, device: torch.device) -> None:
        """Start (or resume) on ``device``: clear the pending records; the host count is kept."""
        task_num = len(self.task_names)
        self._device = device
        self._first_step = torch.full((), -1, device=device, dtype=torch.long)
        # rows: loss, gradient, the method's combination (all tasks set)
        self._first_tasks = torch.zeros(3, task_num, device=device, dtype=torch.bool)
        self._pending_skips = torch.zeros((), device=device, dtype=torch.long)
        self._epoch_skips = torch.zeros((), device=device, dtype=torch.long)

    def begin_step(self, losses: Tensor) -> Tensor:
        """Record this step's losses; returns the losses a weighting method may see (non-finite → 1)."""
        if not self.active:
            return losses.detach()
        finite = torch.isfinite(losses.detach())
        self._bad = torch.stack([~finite, torch.zeros_like(finite), torch.zeros_like(finite)])
        return torch.where(finite, losses.detach(), torch.ones_like(losses.detach()))

    def gradients(self, grads: Tensor) -> Tensor:
        """Record G's non-finite rows and zero them in place (a row's sum is non-finite iff it holds a
        NaN/inf, so no [T, D] mask is built); returns ``grads``."""
        if self.active:
            bad_rows = ~torch.isfinite(grads.sum(dim=1))
            self._bad[1] |= bad_rows
            grads.masked_fill_(bad_rows[:, None], 0.0)
        return grads

    def direction(self, combined: Tensor) -> Tensor:
        """Record whether a gradient method's combined result (direction, contributions or weights) is
        finite although its inputs were (a solver breaking down); returns it unchanged."""
        if self.active:
            self._bad[2] |= ~torch.isfinite(combined.sum())
        return combined

    def step_verdict(self) -> Tensor:
        """0-dim bool on the device: this step is non-finite (on any rank, under data parallelism)."""
        bad = self._bad.any()
        if self.data_parallel:
            bad = ~distributed.all_ranks_true(~bad)
        return bad

    @contextlib.contextmanager
    def keep_state_if_skipped(self, modules: Iterable[nn.Module | None]) -> Iterator[None]:
        """Under ``skip``: the buffers of ``modules`` (the weighting methods' running state) are put back
        as they were before the block if the step turns out non-finite (a device-side select).

        A buffer that was empty before the block and has a shape after it was sized during the step
        (``GradientShapedState``: a [T, D] state that takes G's shape at its first step, as zeros): it
        keeps its new shape and goes back to zeros, its value before any step."""
        modules = [module for module in modules if module is not None]
        if self.policy != "skip":
            yield
            return
        saved = {
            (index, name): buffer.clone()
            for index, module in enumerate(modules)
            for name, buffer in module.named_buffers()
        }
        yield
        if not saved:
            return
        bad = self.step_verdict()
        with torch.no_grad():
            for index, module in enumerate(modules):
                for name, buffer in module.named_buffers():
                    before = saved.get((index, name))
                    if before is None:
                        continue
                    if before.shape != buffer.shape and before.numel() == 0:
                        before = torch.zeros_like(buffer)
                    buffer.copy_(torch.where(bad, before, buffer))

    def before_optimizer_step(self, optimizer: torch.optim.Optimizer, step: int) -> bool:
        """Record the step's verdict and arrange for a non-finite step's update to be withheld. Returns
        False when the caller must not step (only for ``skip`` with an optimizer that cannot withhold the
        update on the device: the one host sync of that set-up)."""
        if not self.active:
            return True
        bad = self.step_verdict()
        new_first = bad & (self._first_step < 0)
        self._first_step = torch.where(new_first, torch.full_like(self._first_step, step), self._first_step)
        self._first_tasks = torch.where(new_first, self._bad, self._first_tasks)
        self._pending_skips += bad.long()
        self._epoch_skips += bad.long()
        if getattr(optimizer, "_step_supports_amp_scaling", False):
            # read by fused optimizers inside step(); under 16-mixed the GradScaler sets its own, which
            # also covers non-finite gradients
            optimizer.found_inf = bad.float()
            return True
        if self.policy == "skip":
            return not bool(bad)  # the optimizer cannot skip on the device: one host sync
        return True

    def after_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if hasattr(optimizer, "found_inf"):
            del optimizer.found_inf

    # ------------------------------------------------------------------------------------- sync points
    def status(self, params: Iterable[Tensor]) -> Tensor:
        """The guard's device flags as one float vector (appended to the logged values, so that a logging
        step still makes one transfer): first bad step, pending skips, epoch skips, parameters finite,
        then the first bad step's loss, gradient and method task masks."""
        if not self.active:
            return torch.zeros(0, device=self._device)
        tensors = [p.detach() for p in params]
        # the largest |entry| of each tensor: NaN or inf exactly when an entry is, and no overflow
        norms = (
            torch.stack(torch._foreach_norm(tensors, float("inf")))
            if tensors
            else torch.zeros(1, device=self._device)
        )
        params_finite = torch.isfinite(norms.sum())
        head = torch.stack(
            [
                self._first_step.float(),
                self._pending_skips.float(),
                self._epoch_skips.float(),
                params_finite.to(self._first_step.device).float(),
            ]
        )
        return torch.cat([head, self._first_tasks.flatten().float()])

    def verdict(self, values: Sequence[float], step: int, epoch_steps: int | None = None) -> None:
        """Act on ``status`` read on the host at step ``step``: raise for ``raise`` (or a dead model, or
        too many skips when ``epoch_steps`` closes an epoch), log the skips for ``skip``."""
        if not self.active:
            return
        first_step, pending, epoch_skips, params_finite = (int(v) for v in values[:4])
        masks = [bool(v) for v in values[4:]]
        task_num = len(self.task_names)
        loss_tasks = [name for name, bad in zip(self.task_names, masks[:task_num], strict=True) if bad]
        grad_tasks = [
            name for name, bad in zip(self.task_names, masks[task_num : 2 * task_num], strict=True) if bad
        ]
        if loss_tasks:
            what = f"loss for task(s) {loss_tasks}"
        elif grad_tasks:
            what = f"gradient for task(s) {grad_tasks}"
        else:
            what = "combined gradient from the gradient method (its inputs were finite)"
        if first_step >= 0 and self.policy == "raise":
            raise NonFiniteError(
                f"non-finite {what} at step {first_step}; set on_nonfinite=skip to skip such steps, "
                "or lower the learning rate (dataset.optimizer.lr)"
            )
        if pending:
            self.skipped_steps += pending
            log.warning(
                "skipped %d step(s) up to step %d: the first had a non-finite %s", pending, step, what
            )
            self._pending_skips.zero_()
            self._first_step.fill_(-1)
            self._first_tasks.zero_()
        if not params_finite:
            raise NonFiniteError(
                f"the model's parameters are non-finite after step {step}: training diverged; lower the "
                "learning rate (dataset.optimizer.lr)"
            )
        if epoch_steps:
            fraction = epoch_skips / epoch_steps
            self._epoch_skips.zero_()
            if fraction > self.max_skipped_fraction:
                raise NonFiniteError(
                    f"{epoch_skips} of {epoch_steps} steps of the epoch ending at step {step} were skipped "
                    f"for non-finite losses or gradients (more than max_skipped_fraction="
                    f"{self.max_skipped_fraction}); lower the learning rate (dataset.optimizer.lr)"
                )

"""Per-task gradients of the shared part, kept on the device in one [T, D] matrix.

Gradient balancing needs G ∈ R^{T×D}, row t = ∇_x ℓ_t for x the shared parameters θ ("param mode") or the
shared representation z ("rep mode", Algorithm 2 line 5: ∇_z ℓ_t, far cheaper since D = |z| and only the
heads are differentiated T times). Rows are written straight into one preallocated buffer: no per-parameter
copies, no host transfer. Two ways to fill it, chosen by ``batched``:

* ``False`` — T calls of ``torch.autograd.grad`` (one per task, graph retained), each concatenated into its
  row of the buffer; works for every op.
* ``True`` — one ``autograd.grad`` call with ``is_grads_batched=True`` (vmap over the T one-hot output
  gradients); fewer kernel launches, but needs batching rules for every backward op in the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def flat_size(tensors: Sequence[Tensor]) -> int:
    """D: the total number of elements of ``tensors``."""
    return sum(t.numel() for t in tensors)


def task_gradients(
    losses: Tensor | Sequence[Tensor],
    inputs: Sequence[Tensor],
    *,
    batched: bool = False,
    out: Tensor | None = None,
    accumulate: Sequence[Tensor] = (),
) -> Tensor:
    """The Jacobian G ∈ R^{T×D} of the T ``losses`` w.r.t. ``inputs``, flattened and concatenated.

    Pass the losses as a sequence of T scalars where they were computed separately (each task's head on
    z): task t's backward then runs through head t only. Rows taken from a stacked [T] vector run every
    head's backward in every pass (with zero gradients for the others), T times the heads' work.

    The autograd graph of ``losses`` is retained, so a later backward (of the heads, or of z) can reuse it.
    Inputs a task does not depend on contribute zeros to that task's row. G is at least float32 (a bf16
    representation under mixed precision gives float32 rows, so the methods' inner products keep their
    precision). ``out``, if given, is a [T, D] buffer to fill (its dtype and device win).

    ``accumulate``: parameters (the task-specific heads) that also receive Σ_t ∇ losses[t] in their
    ``.grad`` from the same T backward passes, so that the step does not back-propagate through the heads
    a second time for their own gradients.
    """
    terms = _loss_terms(losses)
    inputs, accumulate = list(inputs), list(accumulate)
    task_num, dim, device = len(terms), flat_size(inputs), terms[0].device
    if out is None:
        dtype = torch.promote_types(inputs[0].dtype, torch.float32)
        out = torch.empty(task_num, dim, device=device, dtype=dtype)
    elif out.shape != (task_num, dim):
        raise ValueError(f"out must have shape {(task_num, dim)}, got {tuple(out.shape)}")

    if batched:
        stacked = losses if isinstance(losses, Tensor) else torch.stack(terms)
        one_hot = torch.eye(task_num, device=device, dtype=stacked.dtype)
        grads = torch.autograd.grad(
            stacked,
            inputs + accumulate,
            grad_outputs=one_hot,
            is_grads_batched=True,
            retain_graph=True,
            allow_unused=True,
        )
        # an input no loss reaches has no gradient (None), not zeros with the task dimension
        rows = [
            out.new_zeros(task_num, x.numel()) if g is None else g.reshape(task_num, -1)
            for g, x in zip(grads[: len(inputs)], inputs, strict=True)
        ]
        torch.cat(rows, dim=1, out=out)
        accumulate_grad(accumulate, [None if g is None else g.sum(dim=0) for g in grads[len(inputs) :]])
        return out

    for task, term in enumerate(terms):
        grads = torch.autograd.grad(term, inputs + accumulate, retain_graph=True, allow_unused=True)
        row = [_dense(g, x).reshape(-1) for g, x in zip(grads[: len(inputs)], inputs, strict=True)]
        torch.cat(row, out=out[task])
        accumulate_grad(accumulate, grads[len(inputs) :])
    return out


def own_input_gradients(
    losses: Tensor | Sequence[Tensor], inputs: Sequence[Tensor], *, accumulate: Sequence[Tensor] = ()
) -> Tensor:
    """[T, D] with row t = ∇_{inputs[t]} losses[t], flattened: each task's gradient w.r.t. its own input
    (multi-input data in rep mode, where every task has its own representation z_t of the same shape).
    ``accumulate`` as in ``task_gradients``."""
    terms = _loss_terms(losses)
    if len(inputs) != len(terms) or len({tuple(x.shape) for x in inputs}) != 1:
        raise ValueError(
            "rep mode with one input per task needs one representation per task, all of one shape "
            f"(got {[tuple(x.shape) for x in inputs]}); use equal per-task batch sizes with drop_last, "
            "or weighting.grad.mode=param"
        )
    accumulate, rows = list(accumulate), []
    for task, rep in enumerate(inputs):
        grads = torch.autograd.grad(terms[task], [rep, *accumulate], retain_graph=True, allow_unused=True)
        rows.append(_dense(grads[0], rep).reshape(-1))
        accumulate_grad(accumulate, grads[1:])
    grads = torch.stack(rows)
    return grads.to(torch.promote_types(grads.dtype, torch.float32))


def _loss_terms(losses: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """The T scalar losses of a [T] vector or a sequence of scalars."""
    if isinstance(losses, Tensor):
        if losses.dim() != 1:
            raise ValueError(f"losses must be a [T] vector, got shape {tuple(losses.shape)}")
        return list(losses.unbind())
    terms = list(losses)
    if not terms or any(term.dim() != 0 for term in terms):
        raise ValueError("losses must be a [T] vector or a sequence of T scalar losses")
    return terms


def _dense(grad: Tensor | None, like: Tensor) -> Tensor:
    """``grad``, or zeros shaped like ``like`` where the loss does not depend on it."""
    return torch.zeros_like(like) if grad is None else grad


def accumulate_grad(params: Sequence[Tensor], grads: Sequence[Tensor | None]) -> None:
    """p.grad += g for every g that is not None (p.grad = g where it is still None)."""
    for param, grad in zip(params, grads, strict=True):
        if grad is not None:
            param.grad = grad if param.grad is None else param.grad.add_(grad)


def assign_flat_grad(direction: Tensor, params: Sequence[Tensor]) -> None:
    """Write the flat [D] ``direction`` into ``p.grad`` of each parameter as views (no copy)."""
    params = list(params)
    if direction.dim() != 1 or direction.numel() != flat_size(params):
        raise ValueError(
            f"direction must be a flat [{flat_size(params)}] vector, got {tuple(direction.shape)}"
        )
    for param, chunk in zip(params, direction.split([p.numel() for p in params]), strict=True):
        param.grad = chunk.view_as(param)

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
    losses: Tensor, inputs: Sequence[Tensor], *, batched: bool = False, out: Tensor | None = None
) -> Tensor:
    """The Jacobian G ∈ R^{T×D} of the [T] vector ``losses`` w.r.t. ``inputs``, flattened and concatenated.

    The autograd graph of ``losses`` is retained, so a later backward (of the heads, or of z) can reuse it.
    Inputs a task does not depend on contribute zeros to that task's row. G is at least float32 (a bf16
    representation under mixed precision gives float32 rows, so the methods' inner products keep their
    precision). ``out``, if given, is a [T, D] buffer to fill (its dtype and device win).
    """
    if losses.dim() != 1:
        raise ValueError(f"losses must be a [T] vector, got shape {tuple(losses.shape)}")
    inputs = list(inputs)
    task_num, dim = losses.shape[0], flat_size(inputs)
    if out is None:
        dtype = torch.promote_types(inputs[0].dtype, torch.float32)
        out = torch.empty(task_num, dim, device=losses.device, dtype=dtype)
    elif out.shape != (task_num, dim):
        raise ValueError(f"out must have shape {(task_num, dim)}, got {tuple(out.shape)}")

    if batched:
        one_hot = torch.eye(task_num, device=losses.device, dtype=losses.dtype)
        grads = torch.autograd.grad(
            losses,
            inputs,
            grad_outputs=one_hot,
            is_grads_batched=True,
            retain_graph=True,
            materialize_grads=True,
        )
        torch.cat([g.reshape(task_num, -1) for g in grads], dim=1, out=out)
        return out

    for task in range(task_num):
        grads = torch.autograd.grad(losses[task], inputs, retain_graph=True, materialize_grads=True)
        torch.cat([g.reshape(-1) for g in grads], out=out[task])
    return out


def own_input_gradients(losses: Tensor, inputs: Sequence[Tensor]) -> Tensor:
    """[T, D] with row t = ∇_{inputs[t]} losses[t], flattened: each task's gradient w.r.t. its own input
    (multi-input data in rep mode, where every task has its own representation z_t of the same shape)."""
    if len(inputs) != losses.shape[0] or len({tuple(x.shape) for x in inputs}) != 1:
        raise ValueError(
            "rep mode with one input per task needs one representation per task, all of one shape "
            f"(got {[tuple(x.shape) for x in inputs]}); use equal per-task batch sizes with drop_last, "
            "or weighting.grad.mode=param"
        )
    rows = [torch.autograd.grad(losses[t], x, retain_graph=True)[0].reshape(-1) for t, x in enumerate(inputs)]
    grads = torch.stack(rows)
    return grads.to(torch.promote_types(grads.dtype, torch.float32))


def assign_flat_grad(direction: Tensor, params: Sequence[Tensor]) -> None:
    """Write the flat [D] ``direction`` into ``p.grad`` of each parameter as views (no copy)."""
    params = list(params)
    if direction.dim() != 1 or direction.numel() != flat_size(params):
        raise ValueError(
            f"direction must be a flat [{flat_size(params)}] vector, got {tuple(direction.shape)}"
        )
    for param, chunk in zip(params, direction.split([p.numel() for p in params]), strict=True):
        param.grad = chunk.view_as(param)

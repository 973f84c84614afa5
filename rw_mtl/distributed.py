"""Data-parallel training of MTLModule: one process per device, every rank computing the same weights.

Lightning's stock DDP strategy wraps the model in DistributedDataParallel, whose reducer averages ``.grad``
inside each backward pass. A balanced step needs more than that. The gradient method must see the
per-task gradients of the *global* batch (otherwise each rank weights the tasks differently and the
replicas drift apart), and the step's partial backward passes (T ``autograd.grad`` calls, the heads only,
then z) are not what DDP's reducer expects. So :class:`BalancedDDPStrategy` keeps Lightning's launchers,
process group and distributed samplers but leaves the model unwrapped (its initial state is broadcast
from rank 0), and MTLModule synchronises explicitly with the functions below:

* losses: each ℓ_t's value becomes the mean over the ranks, its gradient stays local, so the loss methods
  (and MGDA-UB's loss normalisation, GradNorm's training rates, DWA's epoch losses) see the global batch;
* param mode: G is averaged over the ranks (one [T, D] all-reduce): exactly the global batch's Jacobian;
* rep mode: G's columns are per-sample gradients w.r.t. z, so the global G is the ranks' blocks side by
  side, each scaled by 1/R (the global loss is the mean of the R ranks' losses). Gram-matrix methods need
  only M = Σ_r G_r G_rᵀ / R² (a T×T all-reduce); any other method runs on the gathered G and each rank
  keeps its own block;
* the gradients that stay rank-local (heads, loss-method parameters, in rep mode also the shared
  parameters) are averaged as DDP would; before each evaluation the ranks take rank 0's buffers.

A 2-process run thus equals a 1-process run on the same global batch, up to float summation order, as long
as nothing depends on how the batch is split: BatchNorm needs ``trainer.sync_batchnorm=true`` (GPU only;
use a batch-independent norm on CPU). MOML's meta step is the exception: each rank takes it on its own
validation batch and the ranks average the resulting hypergradient. Auto-λ and FORUM average every
gradient and loss value of their meta steps instead (``MetaStep.mean_over_ranks``), and FAMO's extra
forward returns the ranks' mean losses, so those equal one process on the global batch too.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler


class BalancedDDPStrategy(DDPStrategy):
    """Lightning's DDP (processes, ranks, samplers, checkpoints on rank 0) without the DDP wrapper's
    gradient reducer: MTLModule synchronises its training step itself (``rw_mtl/conf/trainer/ddp.yaml``)."""

    def setup(self, trainer) -> None:
        if self._layer_sync is not None and self.root_device.type == "cpu":
            raise ValueError(
                "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernel); on CPU "
                "set trainer.sync_batchnorm=false and use a batch-independent norm "
                "(multi_digits: dataset.encoder.norm=group)"
            )
        super().setup(trainer)

    def configure_ddp(self) -> None:
        """Start every rank from rank 0's parameters and buffers; no DistributedDataParallel wrapper."""
        broadcast_from_rank_zero_([*self.model.parameters(), *self.model.buffers()])


class EvaluationShardSampler(DistributedSampler):
    """Rank r's share of an evaluation split: samples r, r + R, r + 2R, …, so that over the ranks every
    sample is evaluated exactly once (torchmetrics then syncs the metric states). DistributedSampler
    itself pads the shares to equal length by repeating samples, which would count them twice; being a
    DistributedSampler subclass, this one is kept as is by Lightning."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset, shuffle=False)

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


def world_size() -> int:
    """R: the number of data-parallel ranks (1 without an initialised process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_over_ranks_(tensor: Tensor) -> Tensor:
    """Average ``tensor`` over the ranks, in place; returns it."""
    dist.all_reduce(tensor)
    return tensor.div_(world_size())


def sum_over_ranks_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over the ranks, in place; returns it."""
    dist.all_reduce(tensor)
    return tensor


def all_ranks_true(mask: Tensor) -> Tensor:
    """The elementwise AND of a boolean ``mask`` over the ranks (so that every rank takes one decision)."""
    as_int = mask.to(torch.int32)
    dist.all_reduce(as_int, op=dist.ReduceOp.MIN)
    return as_int.bool()


def global_mean_values(values: list[Tensor]) -> list[Tensor]:
    """The scalar ``values`` (the T task losses), each taking its mean over the ranks as value while its
    gradient stays the local one (a straight-through sum; one all-reduce for all of them): weights computed
    from them agree on every rank, and averaging the ranks' gradients afterwards gives the global batch's
    gradient."""
    means = mean_over_ranks_(torch.stack([value.detach() for value in values]))
    return [value + (mean - value.detach()) for value, mean in zip(values, means.unbind(), strict=True)]


def average_gradients_(params: list[Tensor]) -> None:
    """Average ``p.grad`` over the ranks for every parameter that has one, in one flat all-reduce.

    Every rank runs the same graph, so the same parameters have gradients on every rank."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = mean_over_ranks_(torch.cat([grad.reshape(-1) for grad in grads]))
    chunks = flat.split([grad.numel() for grad in grads])
    torch._foreach_copy_(grads, [chunk.view_as(grad) for grad, chunk in zip(grads, chunks, strict=True)])


def broadcast_from_rank_zero_(tensors: list[Tensor]) -> None:
    """Overwrite ``tensors`` on every rank with rank 0's values (once per set-up or evaluation, not per
    step: one collective per tensor)."""
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def broadcast_buffers_(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics without SyncBatchNorm), so that all
    ranks evaluate one model — the one rank 0 checkpoints — as DDP's ``broadcast_buffers`` does."""
    broadcast_from_rank_zero_(list(module.buffers()))


def gather_columns(block: Tensor) -> tuple[Tensor, slice]:
    """The ranks' [T, D] ``block``s side by side as one [T, R·D] matrix (rank order), and the column slice
    that is this rank's. Every rank's block must have the same shape, which Lightning's distributed
    sampler ensures (it pads the ranks' shares of the data to equal length)."""
    return gather_samples(block, dim=1), own_columns(block.shape[1])


def gather_samples(tensor: Tensor, dim: int = 0) -> Tensor:
    """The ranks' ``tensor``s concatenated along ``dim`` (the samples' dimension), in rank order."""
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=dim)


def own_columns(width: int) -> slice:
    """This rank's columns in a [T, R·width] matrix gathered with ``gather_columns``."""
    start = dist.get_rank() * width
    return slice(start, start + width)

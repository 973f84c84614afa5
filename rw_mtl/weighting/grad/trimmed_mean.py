"""Coordinate-wise trimmed mean, Yin et al. (2018): Byzantine-robust aggregation, as TorchJD applies it."""

from __future__ import annotations

from torch import Tensor

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.interface import DIRECTION, Combination, TaskGradients


class TrimmedMean(GradWeighting):
    """d_j = the mean over tasks of the j-th coordinates of G once its ``trim_number`` largest and smallest
    values are removed ("Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML
    2018, Definition 2; TorchJD's ``TrimmedMean``, torchjd/aggregation/_trimmed_mean.py).

    Coordinate-wise, so not a function of the Gram matrix: it reads the whole of G (under data
    parallelism in rep mode, the ranks' gathered G) and returns a direction, with no task weights
    (``last_weights`` stays None); it cannot split its direction over per-task representations (multi-input
    data in rep mode). ``trim_number`` 1 — ours: TorchJD and the paper have no default (the paper trims a
    fraction β ≥ the share of adversarial workers); 1 with 3 tasks is the coordinate-wise median. Needs
    T ≥ 2 · trim_number + 1 tasks; 0 is the mean gradient.
    """

    produces = DIRECTION

    def __init__(self, task_num: int, trim_number: int = 1) -> None:
        super().__init__(task_num)
        if trim_number < 0 or task_num < 2 * trim_number + 1:
            raise ValueError(
                f"TrimmedMean needs 0 <= trim_number and T >= 2 * trim_number + 1 tasks "
                f"(weighting.grad.hparams.trim_number); got trim_number={trim_number} for T={task_num}"
            )
        self.trim_number = trim_number

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        return Combination(direction=trimmed_mean(grads.matrix, self.trim_number))


def trimmed_mean(matrix: Tensor, trim_number: int) -> Tensor:
    """The column means of ``matrix`` [T, D] without each column's ``trim_number`` largest and smallest
    entries: (Σ − Σ largest − Σ smallest) / (T − 2k), by reductions over the rows rather than a sort of every
    column (3× faster for k = 1, the default: a maximum and a minimum)."""
    if trim_number == 0:
        return matrix.mean(dim=0)
    if trim_number == 1:
        extremes = matrix.amax(dim=0) + matrix.amin(dim=0)
    else:
        extremes = matrix.topk(trim_number, dim=0).values.sum(dim=0) + matrix.topk(
            trim_number, dim=0, largest=False
        ).values.sum(dim=0)
    return (matrix.sum(dim=0) - extremes) / (matrix.shape[0] - 2 * trim_number)

"""Preference vectors: the fixed task weights some gradient methods combine their results with.

TorchJD's aggregators (UPGrad, DualProj, Aligned-MTL, ConFIG) take an optional ``pref_vector``; in rw_mtl
it is the hyperparameter ``weighting.grad.hparams.pref_vector``: null for the method's default, or a list
of T numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def preference_vector(method: str, task_num: int, value: Sequence[float] | None, default: float) -> Tensor:
    """[T] float64 preference weights: ``value`` as given, or ``default`` for every task when it is None.
    Refuses a list of the wrong length or with non-finite entries, naming the config key."""
    if value is None:
        return torch.full((task_num,), float(default), dtype=torch.float64)
    vector = torch.as_tensor(list(value), dtype=torch.float64)
    if vector.dim() != 1 or vector.numel() != task_num or not torch.isfinite(vector).all():
        raise ValueError(
            f"{method}: weighting.grad.hparams.pref_vector must be null or a list of {task_num} finite "
            f"numbers (one per task), got {list(value)!r}"
        )
    return vector

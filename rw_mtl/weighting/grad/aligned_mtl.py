"""Aligned-MTL, Senushkin et al. (2023): independent component alignment for multi-task learning."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.preference import preference_vector

SCALE_MODES = ("min", "median", "rmse")


class AlignedMTL(GramWeighting):
    """d = Ĝᵀ p with Ĝ = B G the aligned gradients: B = √σ V Λ^{-1/2} Vᵀ from the eigendecomposition
    M = G Gᵀ = V Λ Vᵀ (rank r: eigenvalues above λ_max · T · eps are kept), so that Ĝ Ĝᵀ = σ V_r V_rᵀ —
    the aligned gradients are orthogonal with equal norms √σ, the condition number of the system is 1
    ("Independent Component Alignment for Multi-Task Learning", CVPR 2023, Eq. 10 and Algorithm 1).

    ``scale_mode`` chooses σ: ``min`` the smallest kept eigenvalue (the paper's and LibMTL's), ``median``
    the median one, ``rmse`` their mean (TorchJD's options, torchjd/aggregation/_aligned_mtl.py).
    ``pref_vector`` p: null sums the aligned gradients (p = 1, LibMTL's Aligned_MTL.py: ``alpha =
    B.sum(0)``, the setting of its published numbers); TorchJD's default is the mean, p = 1/T
    (``pref_vector: [1/T, …]``), i.e. d divided by T. Without any kept eigenvalue (all gradients zero)
    B = I, as in TorchJD. Runs on θ (``mode: param``); rep mode works too (LibMTL allows it).
    """

    def __init__(
        self, task_num: int, pref_vector: Sequence[float] | None = None, scale_mode: str = "min"
    ) -> None:
        super().__init__(task_num)
        if scale_mode not in SCALE_MODES:
            raise ValueError(
                f"AlignedMTL: weighting.grad.hparams.scale_mode must be one of {SCALE_MODES}, "
                f"got {scale_mode!r}"
            )
        self.scale_mode = scale_mode
        self.register_buffer("pref", preference_vector("AlignedMTL", task_num, pref_vector, 1.0))

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        return balance_transformation(gram, self.scale_mode) @ self.pref.to(gram)


def balance_transformation(gram: Tensor, scale_mode: str = "min") -> Tensor:
    """B [T, T] with B G the aligned gradients, from M = G Gᵀ alone.

    The eigendecomposition of the positive semi-definite M is its SVD, M = U S Uᵀ (``torch.linalg.svd``,
    which unlike ``eigh`` does not synchronise a CUDA device with the host), in float64; the rank enters as
    a mask, not a slice. Eigenvalues below s_max · T · eps of ``gram``'s own dtype are rounding noise and
    dropped, as TorchJD's cut-off."""
    task_num = gram.shape[0]
    vectors, eigenvalues, _ = torch.linalg.svd(gram.to(torch.float64))  # descending order
    kept = eigenvalues > eigenvalues[0] * task_num * torch.finfo(gram.dtype).eps
    count = kept.sum()
    inverse_roots = torch.where(kept, eigenvalues.clamp_min(torch.finfo(torch.float64).tiny).rsqrt(), 0.0)
    if scale_mode == "min":
        scale = torch.where(kept, eigenvalues, torch.inf).amin()
    elif scale_mode == "median":
        # torch.median's lower median of the kept (largest) eigenvalues: index ⌊(r − 1)/2⌋ from the
        # smallest kept one, r − 1 − ⌊(r − 1)/2⌋ in the descending order
        middle = (count - 1).clamp_min(0)
        scale = eigenvalues.index_select(0, (middle - middle // 2).reshape(1))[0]
    else:
        scale = torch.where(kept, eigenvalues, 0.0).sum() / count.clamp_min(1)
    balance = scale.clamp_min(0).sqrt() * (vectors * inverse_roots) @ vectors.T
    identity = torch.eye(task_num, device=gram.device, dtype=torch.float64)
    return torch.where(count > 0, balance, identity).to(gram.dtype)

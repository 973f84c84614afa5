"""ConFIG, Liu et al. (2025): conflict-free training of physics-informed neural networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.preference import preference_vector


class ConFIG(GramWeighting):
    """d = (Σ_t g_t · û) û with û the unit vector of (Ũ)⁺ p, Ũ the task gradients normalised to unit length:
    the direction with equal (preference-weighted) cosine to every task gradient, scaled by the sum of the
    gradients' projections on it ("ConFIG: Towards Conflict-free Training of Physics Informed Neural
    Networks", ICLR 2025, Eq. 2; TorchJD's ``ConFIG``, torchjd/aggregation/_config.py, after the authors'
    ``conflictfree`` package).

    In Gram form: with n_t = ‖g_t‖ (unit rows ũ_t = g_t / n_t; zero rows stay zero), Ũ⁺p = Ũᵀ c with
    c = (Ũ Ũᵀ)⁺ p, Ũ Ũᵀ = N⁻¹ M N⁻¹; so d = Σ_t w_t g_t, w = ℓ β / ‖Gᵀβ‖, β = N⁻¹ c, ℓ = 1ᵀ M β / ‖Gᵀβ‖.
    The pseudo-inverse comes from the SVD of ŨŨᵀ (``torch.linalg.svd`` does not synchronise a CUDA device
    with the host; ``eigh`` and ``pinv`` do) and drops eigenvalues below λ_max · T · eps of M's dtype (the
    Gram matrix's own precision; TorchJD's SVD of Ũ cuts singular values at max(T, D) · eps, which agrees
    wherever M resolves them). ``pref_vector`` p: null is 1 for every task (TorchJD's and the authors'
    default). Runs on θ (``mode: param``) as in the original.
    """

    def __init__(self, task_num: int, pref_vector: Sequence[float] | None = None) -> None:
        super().__init__(task_num)
        self.register_buffer("pref", preference_vector("ConFIG", task_num, pref_vector, 1.0))

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        task_num = gram.shape[0]
        exact = gram.to(torch.float64)
        norms = exact.diagonal().clamp_min(0).sqrt()
        inverse_norms = torch.where(norms > 0, 1 / norms.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
        cosines = inverse_norms[:, None] * exact * inverse_norms[None, :]
        vectors, eigenvalues, _ = torch.linalg.svd(cosines)  # PSD: its SVD is its eigendecomposition
        kept = eigenvalues > eigenvalues[0] * task_num * torch.finfo(gram.dtype).eps
        inverse = torch.where(kept, 1 / torch.where(kept, eigenvalues, 1.0), 0.0)
        combination = inverse_norms * ((vectors * inverse) @ (vectors.T @ self.pref.to(exact)))
        norm = (combination @ exact @ combination).clamp_min(0).sqrt()
        unit = combination / norm.clamp_min(1e-12)  # torch.nn.functional.normalize's eps, as TorchJD's
        length = (exact @ unit).sum()
        return (length * unit).to(gram.dtype)

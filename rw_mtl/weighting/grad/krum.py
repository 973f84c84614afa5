"""(Multi-)Krum, Blanchard et al. (2017): Byzantine-tolerant aggregation, as TorchJD applies it to tasks."""

from __future__ import annotations

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting


class Krum(GramWeighting):
    """d = the mean of the ``n_selected`` task gradients of lowest Krum score, the score of g_i being the
    sum of its distances to its T − f − 2 nearest other gradients (f = ``n_byzantine``): "Machine Learning
    with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017, Sections 4 and 6 (Multi-Krum),
    as TorchJD's ``KrumWeighting`` (torchjd/aggregation/_krum.py). Distances come from the Gram matrix,
    ‖g_i − g_j‖² = M_ii + M_jj − 2 M_ij.

    Defaults: ``n_selected`` 1 (TorchJD's and the paper's Krum); ``n_byzantine`` 0 — ours: TorchJD and the
    paper have no default (f is the number of adversarial workers; tasks are not adversaries). It needs
    T ≥ f + 3 tasks. Ties are broken by ``torch.topk``, as in TorchJD.
    """

    def __init__(self, task_num: int, n_byzantine: int = 0, n_selected: int = 1) -> None:
        super().__init__(task_num)
        if n_byzantine < 0 or not 1 <= n_selected <= task_num or task_num < n_byzantine + 3:
            raise ValueError(
                f"Krum needs n_byzantine >= 0, 1 <= n_selected <= T and T >= n_byzantine + 3 tasks "
                f"(weighting.grad.hparams); got n_byzantine={n_byzantine}, n_selected={n_selected} "
                f"for T={task_num}"
            )
        self.n_byzantine, self.n_selected = n_byzantine, n_selected

    def gram_weights(self, gram: Tensor, losses: Tensor | None) -> Tensor:
        squared_norms = gram.diagonal()
        distances = (squared_norms[:, None] + squared_norms[None, :] - 2 * gram).clamp_min(0).sqrt()
        neighbours = self.task_num - self.n_byzantine - 2
        nearest, _ = torch.topk(distances, k=neighbours + 1, dim=1, largest=False)  # itself first (0)
        scores = nearest[:, 1:].sum(dim=1)
        _, selected = torch.topk(scores, k=self.n_selected, largest=False)
        weights = torch.zeros_like(squared_norms)
        return weights.index_fill(0, selected, 1.0 / self.n_selected)

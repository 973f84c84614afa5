"""CR-MOGM, Zhou et al. (2022): another gradient method's task weights, smoothed across steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from rw_mtl.weighting.base import GramWeighting


class CRMOGM(GramWeighting):
    """λ_k = α λ_{k−1} + (1 − α) λ̂_k, d = Σ_t λ_k,t g_t: the weights λ̂_k of a wrapped gradient method
    (``method``, built with ``method_hparams``) smoothed by an exponential moving average — the weight
    correction of "On the Convergence of Stochastic Multi-Objective Gradient Manipulation and Beyond"
    (NeurIPS 2022, Eq. 6), which makes stochastic MGDA-like methods converge. As TorchJD's
    ``CRMOGMWeighting`` (torchjd/aggregation/_cr_mogm.py): ``alpha`` 0.9 (TorchJD's default; the paper's
    Corollary 1 lets α_k rise towards 1 as the learning rate decays — a fixed α here), λ_0 =
    ``initial_weights`` or, when null, the first λ̂ (so the first step is the wrapped method's).

    ``method``: any registered method whose weights are a function of the Gram matrix
    (``GramWeighting.gram_weights``: mgda_ub, pcgrad, imtl_g, gradvac, cagrad, upgrad, dualproj,
    aligned_mtl, nash_mtl, config, krum, …); ``mgda_ub`` by default — ours: TorchJD wraps any weighting and
    has no default, the paper applies the correction to MGDA first. Its state (GradVac's targets, Nash-MTL's
    α) lives on in the wrapped module. λ_{k−1} is a buffer (NaN until the first step), saved in checkpoints.
    """

    def __init__(
        self,
        task_num: int,
        method: str = "mgda_ub",
        alpha: float = 0.9,
        initial_weights: Sequence[float] | None = None,
        method_hparams: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(task_num)
        from rw_mtl.weighting.registry import GRAD_METHODS  # the registry imports this module

        cls = GRAD_METHODS.get(method)
        if (
            cls is None
            or not issubclass(cls, GramWeighting)
            or cls.gram_weights is GramWeighting.gram_weights
        ):
            wrappable = sorted(
                name
                for name, candidate in GRAD_METHODS.items()
                if issubclass(candidate, GramWeighting)
                and candidate.gram_weights is not GramWeighting.gram_weights
                and candidate is not CRMOGM
            )
            raise ValueError(
                f"CRMOGM: weighting.grad.hparams.method must be a method whose weights come from the Gram "
                f"matrix, one of {wrappable}; got {method!r}"
            )
        if not 0 <= alpha <= 1:
            raise ValueError(f"CRMOGM: weighting.grad.hparams.alpha must be in [0, 1], got {alpha}")
        self.method = cls(task_num, **dict(method_hparams or {}))
        self.needs_gram = self.method.needs_gram
        self.alpha = alpha
        start = torch.full((task_num,), float("nan"), dtype=torch.float64)
        if initial_weights is not None:
            start = torch.as_tensor(list(initial_weights), dtype=torch.float64)
            if start.shape != (task_num,) or not torch.isfinite(start).all():
                raise ValueError(
                    f"CRMOGM: weighting.grad.hparams.initial_weights must be null or {task_num} finite "
                    f"numbers, got {list(initial_weights)!r}"
                )
        self.register_buffer("smoothed", start)  # λ_{k−1}

    def gram_weights(self, gram: Tensor | None, losses: Tensor | None) -> Tensor:
        current = self.method.gram_weights(gram, losses)
        dtype, current = current.dtype, current.to(self.smoothed)
        previous = torch.where(self.smoothed.isnan(), current, self.smoothed)
        self.smoothed.copy_(self.alpha * previous + (1 - self.alpha) * current)
        return self.smoothed.to(dtype)

"""The parameter algebra of the bilevel loss methods' meta steps (Auto-λ, FORUM): gradients of a loss as
one flat vector, and copies of the parameters moved along such a vector, for ``MetaStep``'s functional
evaluations of the model."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from rw_mtl.weighting.interface import MetaStep


def flat_gradient(
    loss: Tensor, params: Mapping[str, Tensor], meta: MetaStep, retain_graph: bool = False
) -> Tensor:
    """∇ ``loss`` w.r.t. ``params`` as one flat vector (zeros for parameters it does not reach), averaged
    over the data-parallel ranks (``MetaStep.mean_over_ranks``)."""
    tensors = list(params.values())
    grads = torch.autograd.grad(loss, tensors, retain_graph=retain_graph, allow_unused=True)
    flat = torch.cat(
        [(torch.zeros_like(t) if g is None else g).reshape(-1) for g, t in zip(grads, tensors, strict=True)]
    )
    return meta.mean_over_ranks(flat)


def moved(
    params: Mapping[str, Tensor], direction: Tensor, scale: Tensor | float, trainable: bool = False
) -> dict:
    """{name: θ + scale · direction}: new leaf tensors (requiring grad if ``trainable``), ``direction`` a flat
    vector in ``params``' order."""
    tensors = list(params.values())
    chunks = direction.split([t.numel() for t in tensors])
    return {
        name: (t.detach() + scale * chunk.view_as(t).to(t.dtype)).requires_grad_(trainable)
        for (name, t), chunk in zip(params.items(), chunks, strict=True)
    }

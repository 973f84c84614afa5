"""Random task weights: the five sampling schemes of Section 5.3, and the two the authors' code ran.

Each draws λ̃ ~ p(λ̃) and maps it with f, all on the caller's device and without a host synchronisation,
so that RLW/RGW cost no more than EW. The text's schemes (``DISTRIBUTIONS``) land on the simplex Δ^{T-1}
and are exchangeable across tasks, hence E[λ] = (1/T, …, 1/T) (Appendix A), which is what makes RW a fair
stochastic variant of EW.

Section 5.3's text and the authors' code (LibMTL ``LibMTL/weighting/RLW.py``) differ for two of them: the
code passes the Dirichlet draw through a softmax (f = softmax, not the identity) and leaves the Bernoulli
draw unnormalised (f = the identity: λ ∈ {0, 1}^T, Σ λ = the number of tasks drawn). The defaults are the
text's definitions; the code's are ``CODE_VARIANTS`` (``dirichlet_softmax``, ``bernoulli_unnormalized``),
so that Fig. 1 can be drawn either way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# Largest T for which the non-empty Bernoulli subset is drawn exactly as one integer in [1, 2^T).
_EXACT_BERNOULLI_MAX_TASKS = 62


def normal_softmax(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """λ = softmax(λ̃), λ̃ ~ N(0, I): the paper's default for RLW and RGW."""
    return torch.softmax(torch.randn(task_num, device=device, dtype=dtype), dim=0)


def uniform_softmax(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """λ = softmax(λ̃), λ̃ ~ U(0, 1)^T."""
    return torch.softmax(torch.rand(task_num, device=device, dtype=dtype), dim=0)


def dirichlet(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """λ ~ Dir(1, …, 1), with f the identity: normalised i.i.d. Exp(1) draws, which is exactly Dir(1)."""
    draws = torch.empty(task_num, device=device, dtype=dtype).exponential_()
    return draws / draws.sum()


def bernoulli(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """λ̃ ~ Bernoulli(1/2)^T conditioned on not all zero, then λ = λ̃ / Σ λ̃.

    Conditioning on a non-empty subset is the only way f(λ̃) = λ̃/Σλ̃ is defined. Rejection sampling would
    need a host sync, so the non-empty subset is drawn directly as the bits of an integer uniform in
    [1, 2^T), which has exactly the conditional distribution. Beyond 62 tasks (int64) the all-zero event
    has probability < 2^-62; it is then replaced by one uniformly chosen task, still without a sync.
    """
    if task_num <= _EXACT_BERNOULLI_MAX_TASKS:
        code = torch.randint(1, 2**task_num, (1,), device=device, dtype=torch.int64)
        bits = torch.arange(task_num, device=device, dtype=torch.int64)
        mask = ((code >> bits) & 1).to(dtype)
    else:
        mask = torch.bernoulli(torch.full((task_num,), 0.5, device=device, dtype=dtype))
        mask = torch.where(mask.sum() > 0, mask, constrained_bernoulli(task_num, device, dtype))
    return mask / mask.sum()


def constrained_bernoulli(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """c-Bernoulli: λ̃ ∈ {0,1}^T with Σ λ̃ = 1, i.e. one uniformly chosen task is trained per step."""
    index = torch.randint(task_num, (1,), device=device)
    return torch.zeros(task_num, device=device, dtype=dtype).scatter_(0, index, 1.0)


def dirichlet_softmax(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """λ = softmax(λ̃), λ̃ ~ Dir(1, …, 1): the authors' code (``F.softmax`` of the Dirichlet sample), not the
    text's identity f. Still on the simplex with E[λ] = 1/T, but far more concentrated near 1/T."""
    return torch.softmax(dirichlet(task_num, device, dtype), dim=0)


def bernoulli_unnormalized(task_num: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """λ = λ̃ ~ Bernoulli(1/2)^T conditioned on not all zero, not normalised: the authors' code (the
    rejection loop, then the draw used as the weights). λ ∈ {0, 1}^T, E[λ_t] = 2^{T−1} / (2^T − 1)."""
    mask = bernoulli(task_num, device, dtype)
    return (mask > 0).to(dtype)


DISTRIBUTIONS: dict[str, Callable[[int, torch.device, torch.dtype], Tensor]] = {
    "normal": normal_softmax,
    "uniform": uniform_softmax,
    "dirichlet": dirichlet,
    "bernoulli": bernoulli,
    "constrained_bernoulli": constrained_bernoulli,
}

#: the authors' code's versions of two of Section 5.3's schemes (module docstring)
CODE_VARIANTS: dict[str, Callable[[int, torch.device, torch.dtype], Tensor]] = {
    "dirichlet_softmax": dirichlet_softmax,
    "bernoulli_unnormalized": bernoulli_unnormalized,
}


def sample_simplex_weights(
    distribution: str, task_num: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Tensor:
    """Draw one λ ∈ Δ^{T-1} from the named scheme (a key of ``DISTRIBUTIONS``)."""
    return sampler(distribution)(task_num, torch.device(device), dtype)


def sampler(distribution: str) -> Callable[[int, torch.device, torch.dtype], Tensor]:
    """The sampling function for ``distribution``, with an error that lists the valid names."""
    choices = {**DISTRIBUTIONS, **CODE_VARIANTS}
    try:
        return choices[distribution]
    except KeyError:
        raise ValueError(
            f"unknown weight distribution {distribution!r}; set weighting.loss.hparams.distribution (RLW) "
            f"or weighting.grad.hparams.distribution (RGW) to one of {sorted(choices)}"
        ) from None

"""Small convex problems over the probability simplex, solved on the device without a host sync.

MGDA-UB (min-norm point of the convex hull of the task gradients) and CAGrad (conflict-averse dual) both
pick weights w ∈ Δ^{T-1} from the T×T Gram matrix M = G Gᵀ. The reference implementations copy M to the
host every step (scipy / numpy loops); here a fixed number of accelerated projected-gradient (FISTA)
iterations runs on M's device, so the step never waits for the GPU. Tests compare both solvers with scipy.
"""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-12


def project_to_simplex(vector: Tensor) -> Tensor:
    """Euclidean projection of ``vector`` [T] onto Δ^{T-1} (Duchi et al., 2008), vectorised."""
    task_num = vector.shape[-1]
    ordered, _ = torch.sort(vector, descending=True)
    cumulative = ordered.cumsum(-1) - 1.0
    steps = torch.arange(1, task_num + 1, device=vector.device, dtype=vector.dtype)
    support = (ordered - cumulative / steps > 0).sum(-1, keepdim=True)  # ρ ≥ 1 always
    threshold = cumulative.gather(-1, support - 1) / support.to(vector.dtype)
    return (vector - threshold).clamp_min(0.0)


def min_norm_weights(gram: Tensor, iterations: int = 200) -> Tensor:
    """argmin_{w ∈ Δ} wᵀ M w: the weights of the min-norm point of conv{g_1 … g_T} (MGDA, Sener & Koltun).

    Two tasks have the closed form w_1 = clip((M_22 − M_12) / (M_11 + M_22 − 2 M_12), 0, 1) (their
    Algorithm 1); more tasks use FISTA with step 1/L, L = 2‖M‖_F ≥ 2 λ_max(M).
    """
    gram = _scaled(gram)
    task_num = gram.shape[0]
    if task_num == 1:
        return torch.ones(1, device=gram.device, dtype=gram.dtype)
    if task_num == 2:
        denominator = gram[0, 0] + gram[1, 1] - 2 * gram[0, 1]
        first = ((gram[1, 1] - gram[0, 1]) / denominator.clamp_min(_EPS)).clamp(0.0, 1.0)
        first = torch.where(denominator > _EPS, first, torch.full_like(first, 0.5))
        return torch.stack([first, 1 - first])
    step = 1.0 / (2 * torch.linalg.matrix_norm(gram) + _EPS)
    return _fista(lambda w: 2 * gram @ w, task_num, gram, step_size=lambda w: step, iterations=iterations)


def cagrad_weights(gram: Tensor, c: float, iterations: int = 300) -> Tensor:
    """argmin_{w ∈ Δ} g_wᵀ g_0 + √φ ‖g_w‖ with g_0 the mean gradient, √φ = c ‖g_0‖ (CAGrad, Liu et al.).

    In Gram form: wᵀ M 1/T + c √(1ᵀM1/T²) √(wᵀ M w). The square-root term's curvature grows as ‖g_w‖
    shrinks, so each FISTA step uses the local bound L(w) = ‖M‖_F (1 + c ‖g_0‖ / ‖g_w‖).
    """
    gram = _scaled(gram)
    task_num = gram.shape[0]
    uniform = torch.full((task_num,), 1.0 / task_num, device=gram.device, dtype=gram.dtype)
    mean_term = gram @ uniform
    sqrt_phi = c * (uniform @ mean_term + _EPS).sqrt()
    frobenius = torch.linalg.matrix_norm(gram) + _EPS

    def gradient(w: Tensor) -> Tensor:
        mixed = gram @ w
        return mean_term + sqrt_phi * mixed / (w @ mixed + _EPS).sqrt()

    def step_size(w: Tensor) -> Tensor:
        norm_w = (w @ gram @ w + _EPS).sqrt()
        return 1.0 / (frobenius * (1 + sqrt_phi / norm_w))

    return _fista(gradient, task_num, gram, step_size=step_size, iterations=iterations)


def _scaled(gram: Tensor) -> Tensor:
    """M / mean(diag M): the minimisers are scale-invariant, and O(1) entries keep the steps well-sized."""
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"expected a square Gram matrix, got shape {tuple(gram.shape)}")
    return gram / (gram.diagonal().mean() + _EPS)


def _fista(gradient, task_num: int, like: Tensor, step_size, iterations: int) -> Tensor:
    """FISTA over the simplex with gradient-based adaptive restart (O'Donoghue & Candès, 2015): momentum is
    reset, on the device, whenever it points against the last step, which keeps ill-conditioned Gram
    matrices (gradients of very different norms) converging fast."""
    w = torch.full((task_num,), 1.0 / task_num, device=like.device, dtype=like.dtype)
    momentum_point, t = w, torch.ones((), device=like.device, dtype=like.dtype)
    for _ in range(iterations):
        new_w = project_to_simplex(momentum_point - step_size(momentum_point) * gradient(momentum_point))
        restart = (momentum_point - new_w) @ (new_w - w) > 0
        t = torch.where(restart, torch.ones_like(t), t)
        t_next = (1 + (1 + 4 * t * t).sqrt()) / 2
        momentum_point = new_w + ((t - 1) / t_next) * (new_w - w)
        w, t = new_w, t_next
    return w

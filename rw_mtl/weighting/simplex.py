"""Small convex problems over the probability simplex, solved on the device without a host sync.

MGDA-UB (min-norm point of the convex hull of the task gradients) and CAGrad (conflict-averse dual) both
pick weights w ∈ Δ^{T-1} from the T×T Gram matrix M = G Gᵀ. The reference implementations copy M to the
host every step (scipy / numpy loops). Here:

* up to ``EXACT_MAX_TASKS`` tasks, the problem is solved exactly by enumerating every support S ⊆ {1…T}:
  on a fixed support the optimum has a closed form (a (|S|+1)-sized linear system), all 2^T − 1 of them
  are solved in one batched ``torch.linalg.solve_ex``, and the feasible candidate of lowest objective is
  the global optimum — a handful of kernels whatever the conditioning;
* beyond that (e.g. CelebA's 40 tasks), a fixed number of accelerated projected-gradient (FISTA) steps.

Either way everything stays on M's device. Tests compare both paths with scipy.
"""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-12
EXACT_MAX_TASKS = 10
_RIDGE = 1e-10  # relative Tikhonov term: keeps supports of linearly dependent gradients solvable
_FEASIBLE = -1e-9  # weights above this count as non-negative


def project_to_simplex(vector: Tensor) -> Tensor:
    """Euclidean projection of ``vector`` [T] onto Δ^{T-1} (Duchi et al., 2008), vectorised. The vector is
    first shifted so that its largest entry is 0 (the projection is shift-invariant): entries far above 1
    (a large step) would otherwise lose the 1 to rounding and leave no entry in the support."""
    task_num = vector.shape[-1]
    vector = vector - vector.max(dim=-1, keepdim=True).values
    ordered, _ = torch.sort(vector, descending=True)
    cumulative = ordered.cumsum(-1) - 1.0
    steps = torch.arange(1, task_num + 1, device=vector.device, dtype=vector.dtype)
    support = (ordered - cumulative / steps > 0).sum(-1, keepdim=True).clamp_min(1)  # ρ ≥ 1 but for NaN
    threshold = cumulative.gather(-1, support - 1) / support.to(vector.dtype)
    return (vector - threshold).clamp_min(0.0)


def min_norm_weights(gram: Tensor, iterations: int = 250) -> Tensor:
    """argmin_{w ∈ Δ} wᵀ M w: the weights of the min-norm point of conv{g_1 … g_T} (MGDA, Sener & Koltun).

    Exact up to ``EXACT_MAX_TASKS`` tasks (two tasks: their closed form w_1 = clip((M_22 − M_12) /
    (M_11 + M_22 − 2 M_12), 0, 1)); beyond, ``iterations`` FISTA steps of size 1/L, L = 2‖M‖_F.
    """
    gram = scaled_gram(gram)
    task_num = gram.shape[0]
    if task_num == 1:
        return torch.ones(1, device=gram.device, dtype=gram.dtype)
    if task_num == 2:
        denominator = gram[0, 0] + gram[1, 1] - 2 * gram[0, 1]
        first = ((gram[1, 1] - gram[0, 1]) / denominator.clamp_min(_EPS)).clamp(0.0, 1.0)
        first = torch.where(denominator > _EPS, first, torch.full_like(first, 0.5))
        return torch.stack([first, 1 - first])
    if task_num <= EXACT_MAX_TASKS:
        return _exact_min_norm(gram)
    step = 1.0 / (2 * torch.linalg.matrix_norm(gram) + _EPS)
    return _fista(lambda w: 2 * gram @ w, task_num, gram, step_size=lambda w: step, iterations=iterations)


def _supports(task_num: int, device: torch.device) -> Tensor:
    """All non-empty subsets of the tasks as a [2^T − 1, T] 0/1 matrix."""
    codes = torch.arange(1, 2**task_num, device=device)
    return ((codes[:, None] >> torch.arange(task_num, device=device)) & 1).bool()


def _support_systems(gram: Tensor) -> tuple[Tensor, Tensor]:
    """Per support S: M restricted to S (identity elsewhere, so off-support weights solve to 0), and S."""
    task_num = gram.shape[0]
    support = _supports(task_num, gram.device)
    mask = support.to(gram.dtype)
    ridged = gram + _RIDGE * torch.eye(task_num, device=gram.device, dtype=gram.dtype)
    restricted = ridged * mask[:, :, None] * mask[:, None, :] + torch.diag_embed(1 - mask)
    return restricted, mask


def _best_feasible(candidates: Tensor, objective: Tensor) -> Tensor:
    """The candidate [K, T] of lowest objective among those with finite, non-negative weights."""
    feasible = torch.isfinite(candidates).all(dim=1) & (candidates >= _FEASIBLE).all(dim=1)
    objective = torch.where(
        feasible & torch.isfinite(objective), objective, torch.full_like(objective, float("inf"))
    )
    best = candidates.index_select(0, objective.argmin().reshape(1))[0].clamp_min(0.0)  # no host sync
    return best / best.sum()


def _exact_min_norm(gram: Tensor) -> Tensor:
    """On support S: M_SS w_S = μ 1, 1ᵀ w = 1 — a bordered linear system, batched over all supports."""
    restricted, mask = _support_systems(gram)
    count, task_num = mask.shape
    system = torch.zeros(count, task_num + 1, task_num + 1, device=gram.device, dtype=gram.dtype)
    system[:, :task_num, :task_num] = restricted
    system[:, :task_num, task_num] = -mask
    system[:, task_num, :task_num] = mask
    rhs = torch.zeros(count, task_num + 1, device=gram.device, dtype=gram.dtype)
    rhs[:, task_num] = 1.0
    solution, _ = torch.linalg.solve_ex(system, rhs)
    candidates = solution[:, :task_num]
    objective = torch.einsum("ki,ij,kj->k", candidates, gram, candidates)
    return _best_feasible(candidates, objective)


def cagrad_weights(gram: Tensor, c: float, iterations: int = 300) -> Tensor:
    """argmin_{w ∈ Δ} g_wᵀ g_0 + √φ ‖g_w‖ with g_0 the mean gradient, √φ = c ‖g_0‖ (CAGrad, Liu et al.).

    In Gram form f(w) = wᵀ b + C √(wᵀ M w), b = M 1/T, C = c √(1ᵀM1/T²). Exact up to ``EXACT_MAX_TASKS``
    tasks: on a support S, stationarity b_S + C M_SS w_S / q = ν 1 with q = ‖g_w‖ gives
    w_S = t (ν u − v), u = M_SS⁻¹ 1, v = M_SS⁻¹ b_S, where 1ᵀw = 1 and q = t C fix
    ν = (β + √(β² − a(γ − C²))) / a and t = 1 / √(β² − a(γ − C²)) (a = 1ᵀu, β = 1ᵀv, γ = b_Sᵀv); the
    min-norm point is a candidate too, for the non-smooth case q = 0. Beyond, FISTA with the local step
    1/L(w), L(w) = ‖M‖_F (1 + C / ‖g_w‖).
    """
    gram = scaled_gram(gram)
    task_num = gram.shape[0]
    uniform = torch.full((task_num,), 1.0 / task_num, device=gram.device, dtype=gram.dtype)
    mean_term = gram @ uniform
    sqrt_phi = c * (uniform @ mean_term + _EPS).sqrt()

    def objective(w: Tensor) -> Tensor:
        return (
            w @ mean_term
            + sqrt_phi * (torch.einsum("...i,ij,...j->...", w, gram, w).clamp_min(0) + _EPS).sqrt()
        )

    if task_num == 1:
        return uniform
    if task_num <= EXACT_MAX_TASKS:
        restricted, mask = _support_systems(gram)
        rhs = torch.stack([mask, mean_term * mask], dim=2)  # [K, T, 2]: 1_S and b_S
        solved, _ = torch.linalg.solve_ex(restricted, rhs)
        u, v = solved[..., 0], solved[..., 1]
        a, beta, gamma = u.sum(1), v.sum(1), (mean_term * mask * v).sum(1)
        root = (beta.square() - a * (gamma - sqrt_phi.square())).sqrt()  # NaN where infeasible
        nu, t = (beta + root) / a, 1.0 / root
        candidates = torch.cat([t[:, None] * (nu[:, None] * u - v), min_norm_weights(gram)[None]])
        return _best_feasible(candidates, objective(candidates))

    frobenius = torch.linalg.matrix_norm(gram) + _EPS

    def gradient(w: Tensor) -> Tensor:
        mixed = gram @ w
        return mean_term + sqrt_phi * mixed / (w @ mixed + _EPS).sqrt()

    def step_size(w: Tensor) -> Tensor:
        norm_w = (w @ gram @ w + _EPS).sqrt()
        return 1.0 / (frobenius * (1 + sqrt_phi / norm_w))

    return _fista(gradient, task_num, gram, step_size=step_size, iterations=iterations)


def scaled_gram(gram: Tensor) -> Tensor:
    """M / mean(diag M): the minimisers are scale-invariant, and O(1) entries keep the steps well-sized.

    The divisor is only kept off zero (the zero matrix stays zero), so gradients of any size — 1e-8 as
    well as 1e6 — reach the solvers with the same O(1) entries."""
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"expected a square Gram matrix, got shape {tuple(gram.shape)}")
    return gram / gram.diagonal().mean().clamp_min(torch.finfo(gram.dtype).tiny)


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

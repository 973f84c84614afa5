"""Small convex problems over the probability simplex, solved on the device without a host sync.

MGDA-UB (min-norm point of the convex hull of the task gradients) and CAGrad (conflict-averse dual) both
pick weights w ∈ Δ^{T-1} from the T×T Gram matrix M = G Gᵀ. The reference implementations copy M to the
host every step (MGDA-UB: a Frank-Wolfe loop of at most 250 steps; CAGrad: scipy's SLSQP). Here, in float64
whatever M's dtype, with a fixed number of kernels:

* on a fixed support S ⊆ {1…T} each optimum has a closed form (a (|S|+1)-sized linear system), so a batch
  of candidate supports is solved in one batched ``torch.linalg.solve_ex`` and the feasible candidate of
  lowest objective wins — a feasible point's objective is never below the optimum's, so the winner is the
  optimum as soon as the optimum's support is among the candidates;
* up to ``EXACT_MAX_TASKS`` tasks the candidates are all 2^T − 1 supports: exact whatever the conditioning;
* beyond (CelebA's 40 tasks), a log-barrier Newton method (Boyd & Vandenberghe, *Convex Optimization*,
  §11.3: barrier weight μ = 1, 10⁻¹, …, 10⁻¹², ``_NEWTON_STEPS`` equality-constrained Newton steps each,
  the step chosen among 2⁰ … 2⁻²⁹ of the longest one that stays inside) finds the optimum to about μ, and
  the candidates are the supports it suggests — its weights above τ·max w, and its KKT-tight coordinates
  (gradient within δ of the smallest) for τ, δ = 10⁻¹ … 10⁻¹² — the barrier point being one more
  candidate. Newton steps do not slow down with the conditioning of M the way first-order steps do
  (gradient norms 10⁴ apart), and the candidates make the answer exact (tests: within 1e-6 of a
  high-precision reference on random 40-task problems, ill-conditioned ones included).

Tests compare both paths with scipy and cvxpy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

_EPS = 1e-12
EXACT_MAX_TASKS = 10
_RIDGE = 1e-10  # relative Tikhonov term, tried beside none: solves supports of dependent gradients
_FEASIBLE = -1e-9  # weights above this count as non-negative
_LEVELS = 12  # candidate supports for τ, δ = 10⁻¹ … 10⁻¹²
_BARRIER_LEVELS = 24  # barrier weights μ = 10⁰ … 10⁻²⁴ (the optimum's gradient gaps can be 10⁻⁹ of M)
_BARRIER_FACTOR = 10.0
_NEWTON_STEPS = 3  # Newton steps per barrier weight
_REFINE_ROUNDS = 3  # rounds of candidate supports suggested by the last point
_LINE_SEARCH = 30  # step fractions 2⁰ … 2⁻²⁹ tried at once


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


def min_norm_weights(gram: Tensor) -> Tensor:
    """argmin_{w ∈ Δ} wᵀ M w: the weights of the min-norm point of conv{g_1 … g_T} (MGDA, Sener & Koltun).

    Two tasks: their closed form w_1 = clip((M_22 − M_12) / (M_11 + M_22 − 2 M_12), 0, 1). Up to
    ``EXACT_MAX_TASKS``: every support. Beyond: the barrier method's point and the supports it suggests
    (module docstring). Returned in M's dtype.
    """
    gram, dtype = _scaled(gram), gram.dtype
    task_num = gram.shape[0]
    if task_num == 1:
        return torch.ones(1, device=gram.device, dtype=dtype)
    if task_num == 2:
        denominator = gram[0, 0] + gram[1, 1] - 2 * gram[0, 1]
        first = ((gram[1, 1] - gram[0, 1]) / denominator.clamp_min(_EPS)).clamp(0.0, 1.0)
        first = torch.where(denominator > _EPS, first, torch.full_like(first, 0.5))
        return torch.stack([first, 1 - first]).to(dtype)

    def objective(w: Tensor) -> Tensor:
        return torch.einsum("...i,ij,...j->...", w, gram, w)

    if task_num <= EXACT_MAX_TASKS:
        candidates = _min_norm_on_supports(gram, _supports(task_num, gram.device).to(gram.dtype))
        return _best_feasible(candidates, objective(candidates)).to(dtype)
    approximate = _barrier_newton(objective, lambda w: 2 * gram @ w, lambda w: 2 * gram, gram)
    on_supports = partial(_min_norm_on_supports, gram)
    return _refine(approximate, on_supports, objective, lambda w: gram @ w).to(dtype)


def _supports(task_num: int, device: torch.device) -> Tensor:
    """All non-empty subsets of the tasks as a [2^T − 1, T] 0/1 matrix."""
    codes = torch.arange(1, 2**task_num, device=device)
    return ((codes[:, None] >> torch.arange(task_num, device=device)) & 1).bool()


def _refine(
    weights: Tensor,
    on_supports: Callable[[Tensor], Tensor],
    objective: Callable[[Tensor], Tensor],
    gradient: Callable[[Tensor], Tensor],
) -> Tensor:
    """``_REFINE_ROUNDS`` times: the best feasible point among ``weights`` and the optima on the supports it
    suggests (``on_supports`` maps [K, T] supports to candidates) — each round an active-set correction
    that never raises the objective."""
    for _ in range(_REFINE_ROUNDS):
        candidates = torch.cat([on_supports(_suggested_supports(weights, gradient(weights))), weights[None]])
        weights = _best_feasible(candidates, objective(candidates))
    return weights


def _suggested_supports(weights: Tensor, gradient: Tensor) -> Tensor:
    """[2 · (_LEVELS + 1), T] candidate supports near an approximate optimum ``weights``: the tasks
    with w_t > τ max w, and those whose objective gradient ∇_t is within δ (of ∇'s spread) of the smallest —
    at the optimum exactly the support is KKT-tight — for τ, δ ∈ {10⁻¹, …, 10⁻¹², 0}."""
    levels = torch.cat(
        [
            10.0 ** -torch.arange(1, _LEVELS + 1, device=weights.device, dtype=weights.dtype),
            weights.new_zeros(1),
        ]
    )
    by_weight = weights[None] > levels[:, None] * weights.max()
    gap = gradient - gradient.min()
    by_gradient = gap[None] <= levels[:, None] * (gap.max() + _EPS)
    return torch.cat([by_weight, by_gradient]).to(weights.dtype)


def _restricted(gram: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per support (rows of the 0/1 ``mask`` [K, T]): M restricted to it, identity elsewhere (so that the
    off-support weights solve to 0) — each twice, as is and with a relative ridge that keeps supports of
    linearly dependent gradients solvable: [2K, T, T], and the supports repeated to match [2K, T]."""
    task_num = gram.shape[0]
    mask = torch.cat([mask, mask])
    ridge = torch.cat([mask.new_zeros(len(mask) // 2), mask.new_full((len(mask) // 2,), _RIDGE)])
    ridged = gram + ridge[:, None, None] * torch.eye(task_num, device=gram.device, dtype=gram.dtype)
    return ridged * mask[:, :, None] * mask[:, None, :] + torch.diag_embed(1 - mask), mask


def _best_feasible(candidates: Tensor, objective: Tensor) -> Tensor:
    """The candidate [K, T] of lowest objective among those with finite, non-negative weights."""
    feasible = torch.isfinite(candidates).all(dim=1) & (candidates >= _FEASIBLE).all(dim=1)
    objective = torch.where(
        feasible & torch.isfinite(objective), objective, torch.full_like(objective, float("inf"))
    )
    best = candidates.index_select(0, objective.argmin().reshape(1))[0].clamp_min(0.0)  # no host sync
    return best / best.sum()


def _min_norm_on_supports(gram: Tensor, mask: Tensor) -> Tensor:
    """On support S: M_SS w_S = μ 1, 1ᵀ w = 1 — a bordered linear system, batched over the supports."""
    restricted, mask = _restricted(gram, mask)
    count, task_num = mask.shape
    system = torch.zeros(count, task_num + 1, task_num + 1, device=gram.device, dtype=gram.dtype)
    system[:, :task_num, :task_num] = restricted
    system[:, :task_num, task_num] = -mask
    system[:, task_num, :task_num] = mask
    rhs = torch.zeros(count, task_num + 1, device=gram.device, dtype=gram.dtype)
    rhs[:, task_num] = 1.0
    solution, _ = torch.linalg.solve_ex(system, rhs)
    return solution[:, :task_num]


def cagrad_weights(gram: Tensor, c: float) -> Tensor:
    """argmin_{w ∈ Δ} g_wᵀ g_0 + √φ ‖g_w‖ with g_0 the mean gradient, √φ = c ‖g_0‖ (CAGrad, Liu et al.).

    In Gram form f(w) = wᵀ b + C √(wᵀ M w), b = M 1/T, C = c √(1ᵀM1/T²). On a support S, stationarity
    b_S + C M_SS w_S / q = ν 1 with q = ‖g_w‖ gives w_S = t (ν u − v), u = M_SS⁻¹ 1, v = M_SS⁻¹ b_S, where
    1ᵀw = 1 and q = t C fix ν = (β + √(β² − a(γ − C²))) / a and t = 1 / √(β² − a(γ − C²)) (a = 1ᵀu,
    β = 1ᵀv, γ = b_Sᵀv); the min-norm point is a candidate too, for the non-smooth case q = 0. Up to
    ``EXACT_MAX_TASKS`` every support; beyond, the barrier method's point (Hessian
    C (M / q − M w wᵀ M / q³)) and the supports it suggests (module docstring). In M's dtype.
    """
    gram, dtype = _scaled(gram), gram.dtype
    task_num = gram.shape[0]
    uniform = torch.full((task_num,), 1.0 / task_num, device=gram.device, dtype=gram.dtype)
    mean_term = gram @ uniform
    sqrt_phi = c * (uniform @ mean_term + _EPS).sqrt()

    def objective(w: Tensor) -> Tensor:
        return (
            w @ mean_term
            + sqrt_phi * (torch.einsum("...i,ij,...j->...", w, gram, w).clamp_min(0) + _EPS).sqrt()
        )

    def gradient(w: Tensor) -> Tensor:
        mixed = gram @ w
        return mean_term + sqrt_phi * mixed / (w @ mixed + _EPS).sqrt()

    def hessian(w: Tensor) -> Tensor:
        mixed = gram @ w
        norm = (w @ mixed + _EPS).sqrt()
        return sqrt_phi * (gram / norm - torch.outer(mixed, mixed) / norm**3)

    if task_num == 1:
        return uniform.to(dtype)
    min_norm = min_norm_weights(gram)[None]  # the non-smooth case ‖g_w‖ = 0

    def on_supports(mask: Tensor) -> Tensor:
        restricted, mask = _restricted(gram, mask)
        rhs = torch.stack([mask, mean_term * mask], dim=2)  # [K, T, 2]: 1_S and b_S
        solved, _ = torch.linalg.solve_ex(restricted, rhs)
        u, v = solved[..., 0], solved[..., 1]
        a, beta, gamma = u.sum(1), v.sum(1), (mean_term * mask * v).sum(1)
        root = (beta.square() - a * (gamma - sqrt_phi.square())).sqrt()  # NaN where infeasible
        nu, t = (beta + root) / a, 1.0 / root
        return torch.cat([t[:, None] * (nu[:, None] * u - v), min_norm])

    if task_num <= EXACT_MAX_TASKS:
        candidates = on_supports(_supports(task_num, gram.device).to(gram.dtype))
        return _best_feasible(candidates, objective(candidates)).to(dtype)
    approximate = _barrier_newton(objective, gradient, hessian, gram)
    return _refine(approximate, on_supports, objective, gradient).to(dtype)


def fista_on_simplex(gradient, task_num: int, like: Tensor, step_size, iterations: int) -> Tensor:
    """``iterations`` FISTA steps over the simplex from the uniform point, for objectives with no exact
    solver here (FORUM's subproblem): ``gradient(w)`` and ``step_size(w)`` on the device. Momentum restarts
    whenever it points against the last step (gradient-based adaptive restart, O'Donoghue & Candès, 2015),
    which keeps ill-conditioned problems converging fast."""
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


def scaled_gram(gram: Tensor) -> Tensor:
    """M / mean(diag M): the minimisers are scale-invariant, and O(1) entries keep the steps well-sized.

    The divisor is only kept off zero (the zero matrix stays zero), so gradients of any size — 1e-8 as
    well as 1e6 — reach the solvers with the same O(1) entries."""
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"expected a square Gram matrix, got shape {tuple(gram.shape)}")
    return gram / gram.diagonal().mean().clamp_min(torch.finfo(gram.dtype).tiny)


def _scaled(gram: Tensor) -> Tensor:
    """``scaled_gram`` in float64, where the solvers work."""
    return scaled_gram(gram.to(torch.float64))


def _barrier_newton(
    objective: Callable[[Tensor], Tensor],
    gradient: Callable[[Tensor], Tensor],
    hessian: Callable[[Tensor], Tensor],
    like: Tensor,
) -> Tensor:
    """min f(w) over the simplex by the log-barrier method: for μ = 10⁰ … 10⁻¹², ``_NEWTON_STEPS`` Newton
    steps on f(w) − μ Σ log w_t subject to 1ᵀw = 1 (the bordered system [H + μ W⁻², 1; 1ᵀ, 0]), each step
    scaled by the best of 2⁰ … 2⁻²⁹ of the longest step that keeps w > 0 (or none) — all on the device.
    ``objective`` takes a batch [K, T] of points, ``gradient`` and ``hessian`` one point [T]."""
    task_num = like.shape[0]
    w = torch.full((task_num,), 1.0 / task_num, device=like.device, dtype=like.dtype)
    ones = torch.ones(task_num, 1, device=like.device, dtype=like.dtype)
    border = torch.cat([ones.T, torch.zeros(1, 1, device=like.device, dtype=like.dtype)], dim=1)
    fractions = torch.cat(
        [2.0 ** -torch.arange(_LINE_SEARCH, device=like.device, dtype=like.dtype), like.new_zeros(1)]
    )
    for level in range(_BARRIER_LEVELS + 1):
        mu = _BARRIER_FACTOR**-level
        for _ in range(_NEWTON_STEPS):
            system = torch.cat([torch.cat([hessian(w) + torch.diag(mu / w.square()), ones], dim=1), border])
            rhs = torch.cat([mu / w - gradient(w), like.new_zeros(1)])
            step = torch.linalg.solve_ex(system, rhs)[0][:task_num]
            longest = torch.where(step < 0, -w / step, torch.full_like(w, float("inf"))).min()
            trials = w + (fractions * (0.99 * longest).clamp(max=1.0))[:, None] * step
            values = objective(trials) - mu * trials.log().sum(dim=1)
            values = torch.where(torch.isfinite(values), values, torch.full_like(values, float("inf")))
            w = trials.index_select(0, values.argmin().reshape(1))[0]
    return w

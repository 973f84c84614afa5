"""Mutation-testing checks of the gradient methods only LibMTL and their papers define (FairGrad, Nash-MTL,
Aligned-MTL, RotoGrad, MoCo, SDMGrad, MoDo, GradNorm, DB-MTL, ExcessMTL, the double-sampling wrapper) and of
the simplex solvers' iterations: hand-computed T = 2 / 3 examples from the papers' equations and LibMTL's
code, the effect of each constant the papers or LibMTL fix (tolerances, iteration counts, defaults)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rw_mtl.weighting import get
from rw_mtl.weighting.grad.aligned_mtl import balance_transformation
from rw_mtl.weighting.grad.nash_mtl import bargaining_weights
from rw_mtl.weighting.interface import TaskGradients
from rw_mtl.weighting.simplex import (
    _barrier_newton,
    cagrad_weights,
    fista_on_simplex,
    min_norm_weights,
    project_to_simplex,
    scaled_gram,
)

T = torch.tensor


def F(values) -> torch.Tensor:  # noqa: N802 — a float64 tensor, as T is torch.tensor
    return torch.tensor(values, dtype=torch.float64)


def _grads(task_num: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(task_num, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------------------------- FairGrad
def _fairgrad_levenberg_marquardt(gram: np.ndarray, alpha: float, iterations: int = 20) -> np.ndarray:
    """FairGrad's solver as its docstring states it, in numpy: LM in u = log w on M / mean(diag M) from the
    diagonal solution, damping 1e-3 (× 0.3 after a step that lowers ‖r‖, × 10 after one that does not,
    within [1e-12, 1e12]), ridge 1e-12, |u| ≤ 40; w = e^u s^(−α/(1+α))."""
    scale = np.diag(gram).mean()
    matrix, power = gram / scale, 1 / alpha
    u = np.clip(-alpha / (1 + alpha) * np.log(np.maximum(np.diag(matrix), 1e-12)), -40, 40)

    def residual(point):
        return matrix @ np.exp(point) - np.exp(-power * point)

    current, damping = residual(u), 1e-3
    for _ in range(iterations):
        jacobian = matrix * np.exp(u)[None, :] + np.diag(power * np.exp(-power * u))
        normal = jacobian.T @ jacobian
        system = normal + damping * (np.diag(np.diag(normal)) + 1e-12 * np.eye(len(matrix)))
        candidate = np.clip(u + np.linalg.solve(system, -jacobian.T @ current), -40, 40)
        trial = residual(candidate)
        if (trial**2).sum() < (current**2).sum():
            u, current, damping = candidate, trial, max(damping * 0.3, 1e-12)
        else:
            damping = min(damping * 10.0, 1e12)
    return np.exp(u) * scale ** (-alpha / (1 + alpha))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("case", ["zero row", "opposite rows", "rank 1"])
def test_fairgrad_without_exact_solution_stops_where_its_20_damped_steps_reach(case, alpha):
    """Where (G Gᵀ) w = w^(−1/α) has no solution, w is the point 20 LM steps reach (not a converged one:
    rejected steps, the damping's schedule and bounds, the 1e-12 ridge and |log w̃| ≤ 40 all show)."""
    base = _grads(3, dim=6, seed=7)
    grads = {
        "zero row": torch.stack([base[0], torch.zeros(6, dtype=torch.float64), base[1]]),
        "opposite rows": torch.stack([base[0], -base[0], base[1]]),
        "rank 1": torch.outer(T([1.0, 2.0, -0.5], dtype=torch.float64), base[0]),
    }[case]
    method = get("fairgrad")(3, alpha=alpha)
    method.aggregate(grads)
    expected = _fairgrad_levenberg_marquardt((grads @ grads.T).numpy(), alpha)
    torch.testing.assert_close(method.last_weights, torch.from_numpy(expected), rtol=1e-5, atol=0)


# --------------------------------------------------------------------------------------------- Nash-MTL
def _nash_newton(gram: np.ndarray, iterations: int) -> np.ndarray:
    """Nash-MTL's solver as its docstring states it, in numpy: Newton on ½ αᵀM̂α − Σ log α (M̂ = M/‖M‖_F)
    in the scaled variable, from α̂_0 = s / √diag M̂ (diag 0: the mean diagonal) with s² = T / max(1,
    α̂ᵀM̂α̂ at s = 1), each step the best of 1, ½, … 2⁻¹¹ keeping α > 0; α = α̂ / √‖M‖_F."""
    task_num, frobenius = len(gram), np.linalg.norm(gram)
    scaled = gram / frobenius
    diagonal = np.diag(scaled)
    start = 1 / np.sqrt(np.where(diagonal > 0, diagonal, max(diagonal.mean(), 1 / task_num)))
    alpha = start * np.sqrt(task_num / max(start @ scaled @ start, 1.0))
    for _ in range(iterations):
        system = alpha[:, None] * scaled * alpha[None, :] + np.eye(task_num)
        step = np.linalg.solve(system, alpha * (scaled @ alpha) - 1)
        best, best_value = alpha, np.inf
        for fraction in 0.5 ** np.arange(12):
            candidate = alpha * (1 - fraction * step)
            if (candidate > 0).all():
                value = 0.5 * candidate @ scaled @ candidate - np.log(candidate).sum()
                if value < best_value:
                    best, best_value = candidate, value
        alpha = best
    return alpha / np.sqrt(frobenius)


@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("case", ["unequal norms", "zero row", "cancelling"])
def test_nash_mtl_first_newton_steps_start_where_its_docstring_says(case, iterations):
    """One or two Newton steps show the start α̂_0 (per-task diagonal, the mean for a zero row, the scale s
    with its floor 1 where the gradients cancel out); 20 steps hide it on solvable problems."""
    first, second = _grads(2, dim=5, seed=11)
    grads = {
        "unequal norms": torch.stack([first, 3 * second, first + second]),
        "zero row": torch.stack([first, torch.zeros(5, dtype=torch.float64), 2 * second]),
        # orthogonal g_1, g_2 and g_3 against their sum: Σ cosines = 3 − 2√2 < 1
        "cancelling": T([[1.0, 0.0], [0.0, 1.0], [-(0.5**0.5), -(0.5**0.5)]], dtype=torch.float64),
    }[case]
    method = get("nash_mtl")(len(grads), optim_niter=iterations, max_norm=0.0)
    method.aggregate(grads)
    expected = _nash_newton((grads @ grads.T).numpy(), iterations)
    torch.testing.assert_close(method.last_weights, torch.from_numpy(expected), rtol=1e-9, atol=0)


def test_nash_mtl_clips_a_kept_alpha_whose_direction_is_shorter_than_one():
    """update_weights_every = 2 keeps step 1's α = (1/3, 1/4) for step 2's G / 10: ‖d‖ = √2 / 10, clipped
    to max_norm = 0.1 (and left alone by max_norm = 1, the default, which it is below)."""
    grads = T([[3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    clipped = get("nash_mtl")(2, update_weights_every=2, max_norm=0.1)
    default = get("nash_mtl")(2, update_weights_every=2)
    clipped.aggregate(grads), default.aggregate(grads)
    ones = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(clipped.aggregate(grads / 10), ones * 0.1 / 2**0.5)
    torch.testing.assert_close(default.aggregate(grads / 10), ones * 0.1)


def test_nash_mtl_default_is_20_newton_steps_where_no_solution_stops_them():
    """Cancelling gradients (a Pareto-stationary point): α grows every step, so the 20 of the default (the
    method's and ``bargaining_weights``') show."""
    grads = T([[1.0, 0.0], [0.0, 1.0], [-(0.5**0.5), -(0.5**0.5)]], dtype=torch.float64)
    gram = grads @ grads.T
    method = get("nash_mtl")(3, max_norm=0.0)
    method.aggregate(grads)
    expected = torch.from_numpy(_nash_newton(gram.numpy(), 20))
    # α doubles every step here (‖α‖ ≈ 3e6 after 20), and rounding differs from numpy's by 1e-4
    torch.testing.assert_close(method.last_weights, expected, rtol=1e-3, atol=0)
    torch.testing.assert_close(bargaining_weights(gram), expected, rtol=1e-3, atol=0)
    torch.testing.assert_close(bargaining_weights(gram, 21), 2 * expected, rtol=1e-2, atol=0)


# ------------------------------------------------------------------------------------------ Aligned-MTL
@pytest.mark.parametrize("scale_mode", ["min", "median", "rmse"])
def test_aligned_mtl_on_rank_one_gradients_sums_them(scale_mode):
    """g_t = c_t u: M = ‖u‖² c cᵀ has one kept eigenvalue λ, every σ is λ, B = v vᵀ (v = c / ‖c‖), so
    w = B 1 = c Σc / ‖c‖² and d = Σ_t w_t g_t = (Σ_t c_t) u."""
    coefficients, direction = (
        T([1.0, 2.0, -0.5], dtype=torch.float64),
        T([0.0, 3.0, 4.0], dtype=torch.float64),
    )
    method = get("aligned_mtl")(3, scale_mode=scale_mode)
    torch.testing.assert_close(method.aggregate(torch.outer(coefficients, direction)), 2.5 * direction)
    torch.testing.assert_close(method.last_weights, coefficients * 2.5 / 5.25)


def test_aligned_mtl_on_zero_gradients_keeps_the_preference_weights():
    """No kept eigenvalue: B = I (TorchJD's), so the weights are p itself and d = 0."""
    method = get("aligned_mtl")(3, pref_vector=[1.0, 2.0, 3.0])
    torch.testing.assert_close(
        method.aggregate(torch.zeros(3, 4, dtype=torch.float64)), torch.zeros(4, dtype=torch.float64)
    )
    torch.testing.assert_close(method.last_weights, T([1.0, 2.0, 3.0], dtype=torch.float64))


def test_aligned_mtl_helper_defaults_to_the_smallest_eigenvalue_and_names_the_method_on_bad_preferences():
    # orthogonal g = (1, 0, 0), (0, 2, 0), (0, 0, 3): σ = 1 (min), B = diag(1, ½, ⅓)
    gram = torch.diag(T([1.0, 4.0, 9.0], dtype=torch.float64))
    torch.testing.assert_close(
        balance_transformation(gram), torch.diag(T([1.0, 0.5, 1 / 3], dtype=torch.float64))
    )
    with pytest.raises(ValueError, match=r"^AlignedMTL: weighting.grad.hparams.pref_vector must be null"):
        get("aligned_mtl")(3, pref_vector=[1.0, 2.0])


# ------------------------------------------------------------------------------------------------ MoCo
def test_moco_normalises_tiny_gradients_with_libmtls_1e8():
    """h_t = ℓ_t g_t / (‖g_t‖ + 1e-8) (LibMTL's MoCo.py): gradients of norm 1e-8 and 3e-8 give h = (½, 0)
    and 2 · (0, ¾); Y = ½ H = diag(¼, ¾); λ = softmax(½ − 0.1 · Y Yᵀ (½, ½))."""
    grads = F([[1e-8, 0.0], [0.0, 3e-8]])
    method = get("moco")(2)
    direction = method.aggregate(grads, F([1.0, 2.0]))
    lambd = torch.softmax(0.5 - 0.1 * F([0.0625, 0.5625]) * 0.5, dim=0)
    torch.testing.assert_close(method.tracked, torch.diag(F([0.25, 0.75])))
    torch.testing.assert_close(direction, lambd * F([0.25, 0.75]))


def test_moco_keeps_float32_state_for_float64_gradients_later():
    """Y keeps the first step's dtype (a float32 run, or a float32 checkpoint); a later float64 G is
    combined in float64: the direction is float64 and equals the all-float64 run to float32 precision."""
    first, second = _grads(2, dim=4, seed=40), _grads(2, dim=4, seed=41)
    losses = F([1.5, 0.5])
    mixed, exact = get("moco")(2), get("moco")(2)
    mixed.aggregate(first.float(), losses.float()), exact.aggregate(first, losses)
    direction = mixed.aggregate(second, losses)
    assert direction.dtype == torch.float64 and mixed.tracked.dtype == torch.float32
    torch.testing.assert_close(direction, exact.aggregate(second, losses), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------- DB-MTL
def test_db_mtl_float64_steps_follow_its_equations_with_beta_sigma():
    """Two float64 steps of Eq. 3 and 5 written out, β_k = 0.9 / √k: the gradients' dtype throughout (β
    rounded to float32 would be off by 2e-7 relative)."""
    losses = F([1.0, 3.0])
    steps = [F([[2.0, 0.0], [0.0, 3.0]]), F([[4.0, 1.0], [0.0, 3.0]])]
    method = get("db_mtl")(2, beta=0.9, beta_sigma=0.5)
    average = torch.zeros(2, 2, dtype=torch.float64)
    for k, grads in enumerate(steps, start=1):
        beta = 0.9 / k**0.5
        average = beta * average + (1 - beta) * grads / (losses[:, None] + 1e-8)
        norms = average.norm(dim=1)
        expected = (norms.max() / (norms + 1e-8)) @ average
        torch.testing.assert_close(method.aggregate(grads, losses), expected, rtol=1e-14, atol=0)


def test_db_mtl_epsilons_are_libmtls_added_1e8():
    """log(ℓ + 1e-8): a zero loss scales its gradient by 1e8, in the gradient's own direction; ‖ĝ_t‖ + 1e-8:
    a gradient 1e-8 of the other's is scaled to max ‖ĝ‖ / (‖ĝ_t‖ + 1e-8), not past it."""
    grads = F([[1.0, 0.0], [0.0, 1.0]])
    average = 0.1 * F([[1e8, 0.0], [0.0, 1.0 / (1 + 1e-8)]])
    norms = average.norm(dim=1)
    expected = (norms.max() / (norms + 1e-8)) @ average
    torch.testing.assert_close(get("db_mtl")(2).aggregate(grads, F([0.0, 1.0])), expected, rtol=1e-12, atol=0)
    tiny = F([[1.0, 0.0], [0.0, 1e-8]])
    average = 0.1 / (1 + 1e-8) * tiny
    norms = average.norm(dim=1)
    expected = (norms.max() / (norms + 1e-8)) @ average
    direction = get("db_mtl")(2).aggregate(tiny, F([1.0, 1.0]))
    torch.testing.assert_close(direction, expected, rtol=1e-12, atol=0)
    assert 0 < direction[1] < direction[0] / 10  # 0.1 · 1e-9 / 1.1e-8: boosted, not to ‖ĝ_1‖


# --------------------------------------------------------------------------------------------- SDMGrad
def test_sdmgrad_normalisation_is_scale_free_but_for_libmtls_1e8():
    """Ĉ = C / (s² + 1e-8): G scaled by 0.3 gives G's weights (up to 1e-8 / s²); unit-norm rows scaled by
    1e-4 have s² = 1e-8, so Ĉ is C / 2 of the unit rows': the same weights as lr = 2.5 on them."""
    grads = _grads(3, dim=6, seed=50)
    unit = grads / grads.norm(dim=1, keepdim=True)

    def weights(matrix, **hparams):
        method = get("sdmgrad")(3, **hparams)
        method.aggregate(matrix)
        return method.last_weights

    torch.testing.assert_close(weights(0.3 * grads), weights(grads), rtol=1e-6, atol=0)
    torch.testing.assert_close(weights(1e-4 * unit), weights(unit, lr=2.5), rtol=1e-6, atol=0)
    assert (weights(1e-4 * unit) - weights(unit)).abs().max() > 1e-3


# -------------------------------------------------------------------------------------------- GradNorm
def test_gradnorm_balance_loss_on_gradients_shorter_than_one():
    """original variant, first step: ratios 1, target mean(‖g‖) = 0.35 for norms (0.3, 0.4): L = 0.1."""
    method = get("gradnorm")(2, variant="original")
    result = method(TaskGradients(T([[0.3, 0.0], [0.0, 0.4]])), T([2.0, 1.0]))
    torch.testing.assert_close(result.method_loss, T(0.1))


def test_gradnorm_training_rates_from_initial_losses_below_one():
    """ℓ(0) = (0.5, 0.25), ℓ = (0.25, 0.25): r = (½, 1) / ¾, target (⅔^1.5, (4/3)^1.5) for norms (1, 1)."""
    method = get("gradnorm")(2, variant="original")
    grads = TaskGradients(T([[1.0, 0.0], [0.0, 1.0]]))
    method(grads, T([0.5, 0.25]))
    loss = method(grads, T([0.25, 0.25])).method_loss
    expected = abs(1 - (2 / 3) ** 1.5) + abs(1 - (4 / 3) ** 1.5)
    torch.testing.assert_close(loss, T(expected))


# -------------------------------------------------------------------------------------------- RotoGrad
class _Layout:
    """An architecture stand-in that only tells RotoGrad where z's channels are."""

    def __init__(self, channels: int, dim: int) -> None:
        self.layout = (channels, dim)

    def representation_layout(self) -> tuple[int, int]:
        return self.layout


def _rotograd_with_random_rotations(channels: int, dim: int, seed: int):
    method = get("rotograd")(2)
    method.bind(_Layout(channels, dim))
    generator = torch.Generator().manual_seed(seed)
    for layer in method.rotations:
        skew = torch.randn(channels, channels, generator=generator)
        layer.weight = torch.linalg.matrix_exp(skew - skew.T)
    return method


@pytest.mark.parametrize(("sample_shape", "dim"), [((3, 2, 2), 1), ((3, 4), -1)])
def test_rotograd_rotation_gradient_pairs_each_positions_channels(sample_shape, dim):
    """The gradient that trains R_t is that of Σ_t mean_p ‖R_t v_p − R̄_t g_{t,p}‖² over the channel vectors
    of every pixel ([B, C, H, W], channels on dim 1) or token ([B, L, C], on dim −1) — the loss's value
    alone cannot tell how positions and channels are paired (R is orthogonal). Gradients of norm < 1: v_p
    rescales by mean-norm / ‖g_t‖, floored at 1e-15 only."""
    channels = sample_shape[0] if dim == 1 else sample_shape[-1]
    method = _rotograd_with_random_rotations(channels, dim, seed=3)
    per_sample = 0.01 * torch.randn(2, 2, *sample_shape, generator=torch.Generator().manual_seed(4))
    grads = TaskGradients(
        per_sample.flatten(1), representation=torch.zeros(2, *sample_shape), sample_shape=sample_shape
    )
    loss = method(grads).method_loss
    points = per_sample.movedim(2 if dim == 1 else -1, -1).reshape(2, -1, channels)  # [T, P, C]
    norms = points.flatten(1).norm(dim=1)
    reference = (points * (points.mean(0).norm() / norms).view(-1, 1, 1)).mean(0)
    expected = sum(
        (reference @ layer.weight.T - points[t] @ layer.weight.detach().T).square().sum(1).mean()
        for t, layer in enumerate(method.rotations)
    )
    torch.testing.assert_close(loss, expected)
    originals = [layer.parametrizations.weight.original for layer in method.rotations]
    for got, want in zip(
        torch.autograd.grad(loss, originals), torch.autograd.grad(expected, originals), strict=True
    ):
        torch.testing.assert_close(got, want)


def test_rotograd_partial_rotation_of_a_pooled_map_keeps_its_other_channels():
    """rotation_size 2 of 3 channels on a [B, C, 1, 1] map: channel 3 passes through at every position."""
    method = get("rotograd")(2, rotation_size=2)
    method.bind(_Layout(3, 1))
    z = torch.randn(4, 3, 1, 1, generator=torch.Generator().manual_seed(5))
    for view in method.task_representations(z):  # R = I at the start
        torch.testing.assert_close(view, z)


def test_rotograd_re_anchors_after_its_default_20_steps():
    """burn_in_period = 20 (adrianjav's default): the norms are taken at step 1 and again at step 21."""
    method = get("rotograd")(2, rotation_size=2)
    first, later = T([[3.0, 0.0], [0.0, 1.0]]), T([[1.5, 0.0], [0.0, 1.0]])
    method.aggregate(first)
    for _ in range(19):
        method.aggregate(later)
    common = 1.5 / 3 + 2 / 3  # ratios (½, 1) against step 1's norms
    torch.testing.assert_close(method.last_weights, T([common / 1.5, common]))
    method.aggregate(later)  # step 21: ratios (1, 1), target the mean norm 1.25
    torch.testing.assert_close(method.last_weights, T([1.25 / 1.5, 1.25]))


def test_rotograd_size_errors_say_what_to_set():
    with pytest.raises(
        ValueError,
        match=r"^RotoGrad has no rotations yet: give weighting\.grad\.hparams\."
        r"rotation_size, or build it inside an MTLModule \(which binds it to z's channels\)$",
    ):
        get("rotograd")(2).task_representations(torch.zeros(3, 4))
    with pytest.raises(
        ValueError,
        match=r"^RotoGrad rotates 4 channels but z has 3; set weighting\.grad\."
        r"hparams\.rotation_size=null \(every channel\) or lower it$",
    ):
        get("rotograd")(2, rotation_size=4).bind(_Layout(3, 1))
    method = get("rotograd")(1, rotation_size=3)
    method.bind(_Layout(3, 1))  # as many as z has: accepted
    assert len(method.task_representations(torch.zeros(2, 3))) == 1
    with pytest.raises(
        ValueError,
        match=r"^RotoGrad rotates 3 channels but each gradient has 2; lower "
        r"weighting\.grad\.hparams\.rotation_size$",
    ):
        method(TaskGradients(torch.zeros(1, 4), representation=torch.zeros(2, 2), sample_shape=(2,)))


# ------------------------------------------------------------------------------- simplex: the iterations
def _projection_reference(vector: np.ndarray) -> np.ndarray:
    """Duchi et al. (2008), Fig. 1: the Euclidean projection onto the simplex by sorting."""
    ordered = np.sort(vector)[::-1]
    cumulative = np.cumsum(ordered) - 1
    rho = np.nonzero(ordered - cumulative / np.arange(1, len(vector) + 1) > 0)[0][-1]
    return np.maximum(vector - cumulative[rho] / (rho + 1), 0)


def test_projection_onto_the_simplex_survives_huge_entries():
    """Shifted by its largest entry first: at 1e17 the 1 of the simplex would be lost to rounding."""
    torch.testing.assert_close(project_to_simplex(F([1e17, 0.0, -1e17])), F([1.0, 0.0, 0.0]))
    vector = F([0.3, 2.0, -1.0, 1.7])
    torch.testing.assert_close(
        project_to_simplex(vector), torch.from_numpy(_projection_reference(vector.numpy()))
    )


def _fista_reference(gradient, step_size, task_num: int, iterations: int) -> tuple[np.ndarray, int]:
    """FISTA with gradient-based adaptive restart (O'Donoghue & Candès, 2015) as simplex.fista_on_simplex
    states it, in numpy; also returns how many restarts happened."""
    w = np.full(task_num, 1.0 / task_num)
    point, t, restarts = w, 1.0, 0
    for _ in range(iterations):
        new = _projection_reference(point - step_size(point) * gradient(point))
        if (point - new) @ (new - w) > 0:
            t, restarts = 1.0, restarts + 1
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        point = new + ((t - 1) / t_next) * (new - w)
        w, t = new, t_next
    return w, restarts


def test_fista_iterations_follow_the_accelerated_scheme_with_restarts():
    """min ½ wᵀQw + bᵀw over the simplex (ill-conditioned Q): every iterate of 1 … 12 steps equals the
    scheme written out, momentum and restarts included, with a step size that depends on w."""
    q = np.array([[2.0, 1.9, 0.0, 0.0], [1.9, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    b = np.array([0.0, -0.5, 0.2, 0.3])

    def step(w):  # 1 / L at the simplex's vertices, longer inside
        return 1 / (3.9 * np.abs(w).max())

    restarts = 0
    for iterations in range(1, 13):
        expected, restarts = _fista_reference(lambda w: q @ w + b, step, 4, iterations)
        got = fista_on_simplex(
            lambda w: torch.from_numpy(q) @ w + torch.from_numpy(b),
            4,
            F([0.0]),
            lambda w: step(w.numpy()),
            iterations,
        )
        torch.testing.assert_close(got, torch.from_numpy(expected), rtol=1e-12, atol=1e-14)
    assert restarts >= 2


def _barrier_reference(gram: np.ndarray) -> list[np.ndarray]:
    """simplex._barrier_newton on f(w) = wᵀMw as its docstring states it, in numpy: from 1/T, for μ = 10⁰ …
    10⁻²⁴ three Newton steps on f − μ Σ log w under 1ᵀw = 1 (bordered system), each the best of 2⁰ … 2⁻²⁹
    (and 0) of min(1, 0.99 × the longest step keeping w > 0). Returns every point a Newton step starts
    from, then the last one."""
    task_num, points = len(gram), []
    w = np.full(task_num, 1.0 / task_num)
    fractions = np.append(2.0 ** -np.arange(30), 0.0)
    for level in range(25):
        mu = 10.0**-level
        for _ in range(3):
            points.append(w)
            system = np.zeros((task_num + 1, task_num + 1))
            system[:task_num, :task_num] = 2 * gram + np.diag(mu / w**2)
            system[:task_num, task_num] = system[task_num, :task_num] = 1.0
            step = np.linalg.solve(system, np.append(mu / w - 2 * gram @ w, 0.0))[:task_num]
            longest = np.min(np.where(step < 0, -w / np.where(step < 0, step, -1.0), np.inf))
            trials = w + (fractions * min(0.99 * longest, 1.0))[:, None] * step
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.einsum("ki,ij,kj->k", trials, gram, trials) - mu * np.log(trials).sum(axis=1)
            w = trials[np.argmin(np.where(np.isfinite(values), values, np.inf))]
    return [*points, w]


def test_barrier_newton_iterates_as_documented_on_a_12_task_min_norm_problem():
    """Every iterate of the barrier method (before the candidate supports make the answer exact) equals its
    numpy transcription — the start, the μ schedule, 3 Newton steps per μ, the bordered system and the line
    search all show in the path, if not in the end point."""
    grads = _grads(12, dim=8, seed=60) + 0.3
    gram = scaled_gram(grads @ grads.T)
    visited = []

    def objective(w):
        return torch.einsum("...i,ij,...j->...", w, gram, w)

    def gradient(w):
        visited.append(w)
        return 2 * gram @ w

    point = _barrier_newton(objective, gradient, lambda w: 2 * gram, gram)
    expected = torch.from_numpy(np.stack(_barrier_reference(gram.numpy())))
    assert len(visited) == 75  # 25 barrier weights × 3 Newton steps
    torch.testing.assert_close(torch.stack([*visited, point]), expected, rtol=1e-6, atol=1e-9)


def test_cagrad_weights_of_one_task_are_one_in_the_grams_dtype():
    weights = cagrad_weights(T([[4.0]]), 0.5)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, T([1.0]))


def test_min_norm_weights_closed_forms_for_one_and_two_tasks():
    """One task: w = (1) in M's dtype. Two: w_1 = clip((M_22 − M_12) / (M_11 + M_22 − 2 M_12), 0, 1), ½ each
    for equal gradients (a zero denominator)."""
    one = min_norm_weights(F([[4.0]]))
    assert one.dtype == torch.float64 and one.shape == (1,)
    torch.testing.assert_close(one, F([1.0]))
    # g_2 = 2 g_1: the ratio is 2, clipped to 1 (the shorter g_1 is the min-norm point); reversed, −1 → 0
    torch.testing.assert_close(min_norm_weights(F([[1.0, 2.0], [2.0, 4.0]])), F([1.0, 0.0]))
    torch.testing.assert_close(min_norm_weights(F([[4.0, 2.0], [2.0, 1.0]])), F([0.0, 1.0]))
    torch.testing.assert_close(min_norm_weights(F([[1.0, 1.0], [1.0, 1.0]])), F([0.5, 0.5]))


def test_scaled_gram_refuses_a_matrix_that_is_not_square():
    with pytest.raises(ValueError, match=r"^expected a square Gram matrix, got shape \(2, 3\)$"):
        scaled_gram(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^expected a square Gram matrix, got shape \(3,\)$"):
        scaled_gram(torch.zeros(3))

"""The gradient methods only LibMTL and their authors' repositories define (FairGrad, SDMGrad, MoDo, MoCo):
hand-computed T = 2 / 3 examples from the papers' equations, every hyperparameter's effect, the reference
solvers (scipy, as LibMTL calls it) and degenerate gradient matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares

from rw_mtl.weighting import get
from rw_mtl.weighting.interface import TaskGradients

T = torch.tensor
NAMES = ["fairgrad", "sdmgrad", "modo", "moco"]


def random_grads(task_num: int, dim: int = 20, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(task_num, dim, generator=generator, dtype=dtype)


# ------------------------------------------------------------------------------ every method, degenerate G
def _degenerate_matrices() -> dict[str, torch.Tensor]:
    base = random_grads(3, dim=6, seed=7)
    return {
        "scaled 1e-8": base * 1e-8,
        "scaled 1e6": base * 1e6,
        "zero": torch.zeros(3, 6, dtype=torch.float64),
        "rank-1": torch.outer(T([1.0, 2.0, -0.5], dtype=torch.float64), base[0]),
        "duplicate rows": torch.stack([base[0], base[0], base[1]]),
        "opposite rows": torch.stack([base[0], -base[0], base[1]]),
        "one zero row": torch.stack([base[0], torch.zeros(6, dtype=torch.float64), base[1]]),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(_degenerate_matrices()))
@pytest.mark.parametrize("name", NAMES)
def test_finite_direction_on_degenerate_gradients(name, case, dtype):
    grads = _degenerate_matrices()[case].to(dtype)
    method = get(name)(3)
    direction = method.aggregate(grads, T([1.0, 2.0, 0.5]))
    assert direction.shape == (6,) and direction.dtype == dtype
    assert torch.isfinite(direction).all(), direction


# --------------------------------------------------------------------------------------------- FairGrad
def _least_squares_reference(gram: torch.Tensor, alpha: float) -> torch.Tensor:
    """LibMTL's FairGrad solve: scipy least_squares of M x − x^{−1/α} from 1/T, bounds x ≥ 0."""
    matrix = gram.double().numpy()
    start = np.ones(len(matrix)) / len(matrix)
    result = least_squares(lambda x: matrix @ x - np.power(1 / x, 1 / alpha), start, bounds=(0, np.inf))
    return torch.from_numpy(result.x)


@pytest.mark.parametrize(
    ("alpha", "weights"),
    [
        (1.0, [1.0, 0.5]),  # w_1 = 1/w_1, 4 w_2 = 1/w_2
        (2.0, [1.0, 4 ** (-2 / 3)]),  # w_1 = w_1^(−1/2), 4 w_2 = w_2^(−1/2)
        (0.5, [1.0, 4 ** (-1 / 3)]),  # w_1 = w_1^(−2), 4 w_2 = w_2^(−2)
    ],
)
def test_fairgrad_orthogonal_gradients_hand_computed(alpha, weights):
    # g_1 = (1, 0), g_2 = (0, 2): M = diag(1, 4), so every equation has one unknown
    method = get("fairgrad")(2, alpha=alpha)
    direction = method.aggregate(T([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(method.last_weights, T(weights, dtype=torch.float64))
    torch.testing.assert_close(direction, T([weights[0], 2 * weights[1]], dtype=torch.float64))


def test_fairgrad_equal_correlated_gradients_hand_computed():
    # M = [[1, ½], [½, 1]]: by symmetry w_1 = w_2 = w with 1.5 w = 1/w (α = 1)
    grads = T([[1.0, 0.0], [0.5, 0.75**0.5]], dtype=torch.float64)
    method = get("fairgrad")(2)
    method.aggregate(grads)
    torch.testing.assert_close(method.last_weights, torch.full((2,), (2 / 3) ** 0.5, dtype=torch.float64))


@pytest.mark.parametrize("task_num", [2, 3, 5, 10, 40])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fairgrad_solves_its_system_as_libmtls_scipy_solve(task_num, alpha, dtype):
    grads = random_grads(task_num, dim=60, seed=task_num) * torch.linspace(0.2, 3.0, task_num)[:, None]
    grads = grads.to(dtype)
    method = get("fairgrad")(task_num, alpha=alpha)
    direction = method.aggregate(grads)
    weights = method.last_weights.double()
    gram = (grads @ grads.T).double()
    # the defining property: every task's utility g_tᵀ d equals w_t^(−1/α)
    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(gram @ weights, weights.pow(-1 / alpha), rtol=tolerance, atol=0)
    torch.testing.assert_close(weights, _least_squares_reference(gram, alpha), rtol=1e-6, atol=0)
    torch.testing.assert_close(direction.double(), weights @ grads.double(), rtol=1e-5, atol=1e-6)


def test_fairgrad_weights_scale_with_the_gram_matrix():
    # M → c² M gives w → c^(−2α/(1+α)) w: gradients at 1e-8 and 1e6 get the same direction up to scale
    grads = random_grads(4, seed=3)
    reference = get("fairgrad")(4, alpha=2.0)
    reference.aggregate(grads)
    for factor in (1e-8, 1e6):
        method = get("fairgrad")(4, alpha=2.0)
        method.aggregate(grads * factor)
        torch.testing.assert_close(
            method.last_weights, reference.last_weights * factor ** (-4 / 3), rtol=1e-9, atol=0
        )


def test_fairgrad_iterations_are_levenberg_marquardt_steps():
    """One iteration = one LM step in log w from the diagonal solution, by the docstring's formula."""
    grads = T([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    gram = (grads @ grads.T).numpy()
    scale = np.diag(gram).mean()
    matrix = gram / scale
    log_w = -0.5 * np.log(np.diag(matrix))  # α = 1

    def residual(u):
        return matrix @ np.exp(u) - np.exp(-u)

    jacobian = matrix * np.exp(log_w)[None, :] + np.diag(np.exp(-log_w))
    normal = jacobian.T @ jacobian
    damped = normal + 1e-3 * (np.diag(np.diag(normal)) + 1e-12 * np.eye(2))
    step = np.linalg.solve(damped, -jacobian.T @ residual(log_w))
    assert np.linalg.norm(residual(log_w + step)) < np.linalg.norm(residual(log_w))  # the step is taken
    one_step = np.exp(log_w + step) / np.sqrt(scale)

    method = get("fairgrad")(2, iterations=1)
    method.aggregate(grads)
    torch.testing.assert_close(method.last_weights, torch.from_numpy(one_step))
    default = get("fairgrad")(2)
    default.aggregate(grads)
    assert (default.last_weights - method.last_weights).abs().max() > 1e-3
    torch.testing.assert_close(default.last_weights, _least_squares_reference(grads @ grads.T, 1.0))


def test_fairgrad_bad_hparams_name_the_file():
    with pytest.raises(ValueError, match="conf/weighting/grad/fairgrad.yaml"):
        get("fairgrad")(2, alpha=0.0)
    with pytest.raises(ValueError, match="iterations"):
        get("fairgrad")(2, iterations=0)


# ----------------------------------------------------------------------------------- SDMGrad and MoDo
def _double_sampled(main, first, second, loss_weights=None) -> TaskGradients:
    """The step's TaskGradients: G of the step's batch ζ and of the two extra batches ξ₁, ξ₂."""
    extra = (TaskGradients(first), TaskGradients(second))
    return TaskGradients(main, extra=extra, loss_weights=loss_weights)


def _libmtl_projection(vector: np.ndarray) -> np.ndarray:
    """The sort-based Euclidean projection onto the simplex that LibMTL's SDMGrad runs in numpy."""
    ordered = np.sort(vector)[::-1]
    cumulative = np.cumsum(ordered)
    rho = np.nonzero(ordered * np.arange(1, len(vector) + 1) > (cumulative - 1))[0][-1]
    return np.clip(vector - (cumulative[rho] - 1) / (rho + 1), 0, None)


def _sdmgrad_reference(first, second, steps, lamda=0.3, niter=20, lr=5.0, momentum=0.5):
    """LibMTL's SDMGrad weight update, step after step: torch SGD on w, numpy projection, w kept."""
    task_num = first.shape[0]
    w = torch.full((task_num,), 1.0 / task_num, dtype=torch.float64)
    for _ in range(steps):
        cross = first @ second.T
        scale = cross.diagonal().clamp_min(0).sqrt().mean()
        cross = cross / (scale.pow(2) + 1e-8)
        toward_mean = cross.mean(dim=1)
        w.requires_grad = True
        optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
        for _ in range(niter):
            optimizer.zero_grad()
            w.grad = cross @ w.detach() + lamda * toward_mean
            optimizer.step()
            w.data.copy_(torch.from_numpy(_libmtl_projection(w.data.numpy())))
        w.requires_grad = False
    return (w + lamda / task_num) / (1 + lamda)


@pytest.mark.parametrize(
    ("hparams", "weights"),
    [
        # C = diag(1, 4), s = 1.5: Ĉ = diag(4/9, 16/9), ∇ = Ĉ w + 0.3 Ĉ 1/2 = (0.2889, 1.1556) at w = ½
        ({"niter": 1}, [1.15 / 1.3, 0.15 / 1.3]),  # w − 5∇ projects to (1, 0)
        ({"niter": 1, "lr": 0.1}, [(0.5433333 + 0.15) / 1.3, (0.4566667 + 0.15) / 1.3]),
    ],
)
def test_sdmgrad_one_inner_step_hand_computed(hparams, weights):
    grads = T([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    method = get("sdmgrad")(2, **hparams)
    combination = method(_double_sampled(torch.eye(2, dtype=torch.float64), grads, grads))
    torch.testing.assert_close(combination.weights, T(weights, dtype=torch.float64), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "hparams",
    [{}, {"lamda": 1.0}, {"lamda": 0.0}, {"niter": 3}, {"lr": 0.5}, {"momentum": 0.0}, {"momentum": 0.9}],
)
def test_sdmgrad_matches_libmtls_update_over_steps(hparams):
    first = random_grads(3, seed=20)
    second = 0.5 * random_grads(3, seed=21) + 0.8 * first  # correlated batches: an interior optimum
    main = random_grads(3, seed=3)
    method = get("sdmgrad")(3, **hparams)
    for _ in range(2):  # w is carried from step to step
        combination = method(_double_sampled(main, first, second))
    expected = _sdmgrad_reference(first, second, steps=2, **hparams)
    torch.testing.assert_close(combination.weights, expected)
    torch.testing.assert_close(combination.direction_for(main), expected @ main)
    if hparams:  # every hyperparameter moves the weights away from the default's
        default = _sdmgrad_reference(first, second, steps=2)
        assert (expected - default).abs().max() > 0.03, hparams


def test_sdmgrad_weights_come_from_the_extra_batches_only():
    first, second = random_grads(3, seed=4), random_grads(3, seed=5)
    one = get("sdmgrad")(3)(_double_sampled(random_grads(3, seed=6), first, second)).weights
    other = get("sdmgrad")(3)(_double_sampled(random_grads(3, seed=7) * 5, first, second)).weights
    torch.testing.assert_close(one, other)
    swapped = get("sdmgrad")(3)(_double_sampled(random_grads(3, seed=6), second, first)).weights
    assert (swapped - one).abs().max() > 1e-4  # C = G(ξ₁) G(ξ₂)ᵀ is not symmetric


@pytest.mark.parametrize(
    ("hparams", "steps", "weights"),
    [
        # C = G(ξ₁) G(ξ₂)ᵀ = [[1, 0], [1, 1]]: C λ = (½, 1) at λ = ½ (Cᵀ: (1, ½)); ρ λ = (0.05, 0.05)
        ({}, 1, [0.50025, 0.49975]),  # ½ − 1e-3 (0.55, 1.05) = (0.49945, 0.49895), + 0.0008 each
        ({"gamma": 0.1}, 1, [0.525, 0.475]),  # (0.445, 0.395) + 0.08
        ({"gamma": 0.1, "rho": 0.0}, 1, [0.525, 0.475]),  # (0.45, 0.40) + 0.075: ρ λ is uniform at λ = ½
        # the second step, from (0.525, 0.475): C λ = (0.525, 1.0), ρ λ = (0.0525, 0.0475)
        ({"gamma": 0.1}, 2, [0.5485, 0.4515]),  # (0.46725, 0.37025) + 0.08125
        ({"gamma": 0.1, "rho": 0.0}, 2, [0.54875, 0.45125]),  # (0.4725, 0.375) + 0.07625
    ],
)
def test_modo_weight_update_hand_computed(hparams, steps, weights):
    first = T([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    second = T([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    method = get("modo")(2, **hparams)
    for _ in range(steps):
        combination = method(_double_sampled(torch.eye(2, dtype=torch.float64), first, second))
    torch.testing.assert_close(combination.weights, T(weights, dtype=torch.float64))


def test_modo_projects_onto_the_simplex_and_combines_the_step_batch():
    first = T([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    second = T([[3.0, 0.0], [0.0, -1.0]], dtype=torch.float64)  # C = diag(3, −1)
    method = get("modo")(2, gamma=1.0, rho=0.0)
    main = T([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    combination = method(_double_sampled(main, first, second))
    # ½ − (1.5, −0.5) = (−1, 1): projected to (0, 1)
    torch.testing.assert_close(combination.weights, T([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(combination.direction_for(main), main[1])
    torch.testing.assert_close(method.lambd, T([0.0, 1.0]))  # the state, kept for the next step


@pytest.mark.parametrize("name", ["sdmgrad", "modo"])
def test_double_sampling_reads_the_cross_gram_at_libmtls_loss_scale(name):
    """EW's λ = 1/T makes G (and so C) T² times smaller than LibMTL's unweighted losses: C is divided by
    mean(λ)², so the weights are LibMTL's; without loss weights (a plain matrix) C is read as given."""
    first, second, main = random_grads(3, seed=8), random_grads(3, seed=9), random_grads(3, seed=10)
    hparams = {"gamma": 0.05} if name == "modo" else {}
    libmtl = get(name)(3, **hparams)(_double_sampled(main, first, second)).weights
    ew = torch.full((3,), 1 / 3, dtype=torch.float64)
    ours = get(name)(3, **hparams)(_double_sampled(main / 3, first / 3, second / 3, loss_weights=ew)).weights
    torch.testing.assert_close(ours, libmtl)
    unscaled = get(name)(3, **hparams)(_double_sampled(main / 3, first / 3, second / 3)).weights
    if name == "modo":  # γ is a step size on C
        assert (unscaled - libmtl).abs().max() > 1e-4
    else:  # SDMGrad normalises C by s²: only its 1e-8 sees the scale
        torch.testing.assert_close(unscaled, libmtl)


def test_double_sampling_without_extra_batches_uses_the_one_matrix():
    grads = random_grads(3, seed=11)
    with_extras = get("modo")(3, gamma=0.05)(_double_sampled(grads, grads, grads)).weights
    torch.testing.assert_close(get("modo")(3, gamma=0.05)(TaskGradients(grads)).weights, with_extras)


@pytest.mark.parametrize(
    ("name", "hparams", "key"),
    [
        ("sdmgrad", {"lamda": -1.0}, "sdmgrad.yaml"),
        ("sdmgrad", {"momentum": 1.0}, "sdmgrad.yaml"),
        ("sdmgrad", {"lr": 0.0}, "sdmgrad.yaml"),
        ("modo", {"gamma": 0.0}, "modo.yaml"),
        ("modo", {"rho": -0.1}, "modo.yaml"),
    ],
)
def test_double_sampling_bad_hparams_name_the_file(name, hparams, key):
    with pytest.raises(ValueError, match=key):
        get(name)(2, **hparams)


# ------------------------------------------ sampling=halves: ξ₁, ξ₂ are the two halves of the step's batch
def _rep_mode(per_sample: torch.Tensor, loss_weights=None) -> TaskGradients:
    """Rep-mode TaskGradients of per-sample z-gradients [T, N, F] (the samples' columns side by side)."""
    return TaskGradients(per_sample.flatten(1), sample_shape=per_sample.shape[2:], loss_weights=loss_weights)


# T = 2, F = 1: task 0's samples (1, 2, 3, 4), task 1's (0, 1, 0, −1); the pairs are (1, 3) and (2, 4):
# C = [[1·3 + 2·4, 1·0 + 2·(−1)], [0·3 + 1·4, 0·0 + 1·(−1)]] = [[11, −2], [4, −1]], times N/h
HALVES = T([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, -1.0]], dtype=torch.float64)


@pytest.mark.parametrize(
    ("per_sample", "weights"),
    [
        # N/h = 2: C λ at λ = ½ is (9, 3); ½ − 0.01 (9, 3) = (0.41, 0.47), + 0.06 each onto the simplex
        (HALVES, [0.47, 0.53]),
        # a fifth sample stays out of C, N/h = 5/2: C λ = (11.25, 3.75); (0.3875, 0.4625) + 0.075
        (torch.cat([HALVES, T([[100.0], [-100.0]], dtype=torch.float64)], dim=1), [0.4625, 0.5375]),
    ],
)
def test_modo_halves_hand_computed(per_sample, weights):
    method = get("modo")(2, gamma=0.01, rho=0.0, sampling="halves")
    assert method.extra_batches == 0
    grads = _rep_mode(per_sample[:, :, None])
    combination = method(grads)
    torch.testing.assert_close(combination.weights, T(weights, dtype=torch.float64))
    # the direction is the whole batch's (every sample, the odd one included)
    torch.testing.assert_close(
        combination.direction_for(grads.matrix), T(weights, dtype=torch.float64) @ grads.matrix
    )


def test_sdmgrad_halves_equal_libmtls_update_on_the_two_halves():
    per_sample = random_grads(3, dim=6 * 5, seed=30).view(3, 6, 5)  # N = 6 samples of F = 5
    first, second = per_sample[:, :3].flatten(1), per_sample[:, 3:].flatten(1)
    method = get("sdmgrad")(3, niter=3, sampling="halves")
    for _ in range(2):
        combination = method(_rep_mode(per_sample))
    torch.testing.assert_close(combination.weights, _sdmgrad_reference(2 * first, second, steps=2, niter=3))
    assert get("sdmgrad")(3).extra_batches == 2  # the default draws two extra batches (LibMTL)


def test_halves_scale_like_two_extra_batches_of_the_steps_size():
    """E[C] is the same as with two extra batches: per-sample pairs of equally distributed samples."""
    generator = torch.Generator().manual_seed(31)
    mean = T([[1.0, 0.5], [-0.5, 1.0]], dtype=torch.float64)  # E of a sample's gradient, T = 2, F = 2
    draws = lambda n: mean[:, None] + 0.1 * torch.randn(2, n, 2, generator=generator, dtype=torch.float64)  # noqa: E731
    halves = torch.stack([get("modo")(2, sampling="halves")._cross(_rep_mode(draws(64))) for _ in range(200)])
    batches = torch.stack(
        [TaskGradients(draws(64).flatten(1)).inner(TaskGradients(draws(64).flatten(1))) for _ in range(200)]
    )
    torch.testing.assert_close(halves.mean(0), batches.mean(0), rtol=0.02, atol=0.5)
    torch.testing.assert_close(halves.mean(0), 64 * mean @ mean.T, rtol=0.02, atol=0.5)


def test_halves_refuse_what_has_no_per_sample_gradients():
    with pytest.raises(ValueError, match="only the training step provides"):
        get("modo")(2, sampling="halves")(TaskGradients(HALVES))  # a plain matrix: no halves, no extra
    with pytest.raises(ValueError, match="at least 2 samples"):
        get("sdmgrad")(2, sampling="halves")(_rep_mode(HALVES[:, :1, None]))
    with pytest.raises(ValueError, match="rw_mtl/conf/weighting/grad/sdmgrad.yaml"):
        get("sdmgrad")(2, sampling="thirds")


def test_inner_products_of_batches_of_different_sizes_name_the_fix():
    with pytest.raises(ValueError, match="drop_last"):
        TaskGradients(torch.ones(2, 4)).inner(TaskGradients(torch.ones(2, 6)))


# ------------------------------------------------------------------------------------------------- MoCo
def _moco_reference(matrices, losses, beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0):
    """LibMTL's MoCo update, step after step (their loop over tasks for the normalisation)."""
    task_num = matrices[0].shape[0]
    tracked = torch.zeros_like(matrices[0])
    lambd = torch.full((task_num,), 1.0 / task_num, dtype=torch.float64)
    for step, grads in enumerate(matrices, start=1):
        normalised = torch.stack([grads[t] / (grads[t].norm() + 1e-8) * losses[t] for t in range(task_num)])
        tracked = tracked - (beta / step**beta_sigma) * (tracked - normalised)
        mixing = tracked @ tracked.T + rho * torch.eye(task_num, dtype=torch.float64)
        lambd = torch.softmax(lambd - (gamma / step**gamma_sigma) * mixing @ lambd, dim=-1)
    return tracked.T @ lambd


def test_moco_first_step_hand_computed():
    # ‖g‖ = (3, 1), ℓ = (2, 1): H = [[2, 0], [0, 1]]; Y = ½ H; Y Yᵀ λ = (0.5, 0.125) at λ = ½;
    # λ = softmax(½ − 0.1 (0.5, 0.125)) = softmax(0.45, 0.4875)
    method = get("moco")(2)
    direction = method.aggregate(T([[3.0, 0.0], [0.0, 1.0]], dtype=torch.float64), T([2.0, 1.0]))
    first = 1 / (1 + np.exp(0.0375))
    torch.testing.assert_close(direction, T([first, 0.5 * (1 - first)], dtype=torch.float64))
    torch.testing.assert_close(method.lambd, T([first, 1 - first], dtype=torch.float32))
    torch.testing.assert_close(method.tracked, T([[1.0, 0.0], [0.0, 0.5]], dtype=torch.float64))
    torch.testing.assert_close(method.step, T(1.0))


@pytest.mark.parametrize(
    ("hparams", "baseline"),
    [
        ({}, None),
        ({"beta": 0.9}, {}),
        ({"beta_sigma": 0.0}, {}),
        ({"gamma": 1.0}, {}),
        ({"gamma_sigma": 0.0}, {}),
        ({"gamma": 1.0, "rho": 2.0}, {"gamma": 1.0}),  # ρ acts once λ is not uniform: after step 1
    ],
)
def test_moco_matches_libmtls_update_over_steps(hparams, baseline):
    matrices = [random_grads(3, dim=8, seed=seed) for seed in (30, 31, 32)]
    losses = T([1.5, 0.5, 1.0], dtype=torch.float64)
    method = get("moco")(3, **hparams)
    for grads in matrices:
        direction = method.aggregate(grads, losses)
    expected = _moco_reference(matrices, losses, **hparams)
    torch.testing.assert_close(direction, expected, rtol=1e-6, atol=1e-7)
    if baseline is not None:  # every hyperparameter changes the direction
        assert (expected - _moco_reference(matrices, losses, **baseline)).abs().max() > 1e-3, hparams


def test_moco_scales_by_the_loss_weights_relative_to_their_mean():
    """G = ∇(λ_t ℓ_t): EW's λ = 1/T gives LibMTL's update; other weights scale h_t by λ_t / mean(λ)."""
    grads, losses = random_grads(2, dim=5, seed=33), T([2.0, 1.0], dtype=torch.float64)
    libmtl = get("moco")(2)(TaskGradients(grads), losses).direction
    ew = TaskGradients(grads / 2, loss_weights=T([0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(get("moco")(2)(ew, losses).direction, libmtl)
    weighted = TaskGradients(grads * T([[0.2], [0.8]]), loss_weights=T([0.2, 0.8], dtype=torch.float64))
    # the same as unweighted G with losses scaled by λ / mean(λ) = (0.4, 1.6)
    expected = get("moco")(2)(TaskGradients(grads), losses * T([0.4, 1.6])).direction
    torch.testing.assert_close(get("moco")(2)(weighted, losses).direction, expected)


def test_moco_permuting_the_tasks_permutes_its_state_and_keeps_the_direction():
    """MoCo is equivariant in the tasks: h_t depends on task t's gradient and loss only, Y ← Y − β(Y − H)
    row by row, and λ ← softmax(λ − γ (Y Yᵀ + ρ I) λ) commutes with a permutation P (P Y Yᵀ Pᵀ P λ =
    P Y Yᵀ λ). So over several steps, tasks given in the order P have Y and λ permuted by P and the same d
    (a task is its gradient and its loss: permuting one without the other is another problem)."""
    matrices = [random_grads(4, dim=6, seed=seed) for seed in (40, 41, 42)]
    losses = T([0.5, 2.0, 1.0, 1.5], dtype=torch.float64)
    permutation = T([2, 0, 3, 1])
    method, permuted = get("moco")(4, rho=0.5), get("moco")(4, rho=0.5)
    for grads in matrices:
        direction = method.aggregate(grads, losses)
        torch.testing.assert_close(permuted.aggregate(grads[permutation], losses[permutation]), direction)
    torch.testing.assert_close(permuted.tracked, method.tracked[permutation])
    torch.testing.assert_close(permuted.lambd, method.lambd[permutation])
    assert (method.lambd - 0.25).abs().max() > 1e-3  # λ has moved away from uniform: the check has teeth


def test_moco_state_survives_a_checkpoint():
    grads, losses = random_grads(2, dim=5, seed=34), T([1.0, 2.0])
    trained = get("moco")(2)
    trained.aggregate(grads, losses)
    restored = get("moco")(2)
    restored.load_state_dict(trained.state_dict())
    torch.testing.assert_close(restored.aggregate(grads, losses), trained.aggregate(grads, losses))


def test_moco_needs_losses_param_mode_and_one_gradient_shape(fast_config):
    with pytest.raises(ValueError, match="aggregate\\(grads, losses\\)"):
        get("moco")(2).aggregate(torch.eye(2))
    method = get("moco")(2)
    method.aggregate(torch.eye(2), T([1.0, 1.0]))
    with pytest.raises(
        ValueError, match=r"MoCo keeps a running tracked of shape \(2, 2\).*one weighting.grad.mode"
    ):
        method.aggregate(torch.ones(2, 3), T([1.0, 1.0]))
    with pytest.raises(ValueError, match="moco.yaml"):
        get("moco")(2, beta=0.0)
    from rw_mtl.config_checks import validate_config

    for mode in ("rep", "last_layer"):
        with pytest.raises(ValueError, match="set weighting.grad.mode=param"):
            validate_config(fast_config("weighting/grad=moco", f"weighting.grad.mode={mode}"))


def test_moco_training_step_moves_theta_along_its_direction(fast_config):
    """One real step (SGD, lr 1): θ moves by exactly −Yᵀλ of the first MoCo update, from G of the batch."""
    from .test_module import ONE_BATCH, applied_update, one_step

    before, after, data = one_step(fast_config(*ONE_BATCH, "weighting/loss=ew", "weighting/grad=moco"))
    arch = before.arch.train()
    predictions = arch(data.inputs)
    losses = torch.stack([task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()])
    shared = [p for p in arch.shared_parameters() if p.requires_grad]
    rows = [torch.autograd.grad(loss / 3, shared, retain_graph=True) for loss in losses]
    grads = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in rows])
    expected = get("moco")(3).aggregate(grads, losses.detach())  # EW: h_t = g_t / ‖g_t‖ · ℓ_t, as LibMTL
    update = applied_update(shared, [p for p in after.arch.shared_parameters() if p.requires_grad])
    torch.testing.assert_close(torch.cat([u.reshape(-1) for u in update]), expected, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(after.grad_weighting.step, T(1.0))


def test_moco_under_bf16_mixed_keeps_float32_state_and_gradients(fast_config):
    """bf16-mixed autocast runs the model in bfloat16; MoCo's Y, λ and the direction it writes into θ's
    .grad stay float32 and finite. (MoCo learns multi_digits too slowly in two epochs for the accuracy
    comparison of tests/test_train.py, which runs the other methods.)"""
    from hydra.utils import instantiate

    from rw_mtl.build import build_module

    from .conftest import fit_quietly

    config = fast_config("weighting/loss=ew", "weighting/grad=moco", "dataset.datamodule.train_size=256")
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    before = [p.detach().clone() for p in module.arch.shared_parameters()]
    fit_quietly(module, datamodule, max_steps=3, precision="bf16-mixed")
    method = module.grad_weighting
    assert method.tracked.dtype == torch.float32 and torch.isfinite(method.tracked).all()
    assert method.step.item() == 3.0 and torch.isfinite(method.lambd).all()
    shared = list(module.arch.shared_parameters())
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in shared)
    assert any(not torch.equal(b, p) for b, p in zip(before, shared, strict=True))


@pytest.mark.parametrize("name", ["moco", "sdmgrad", "modo"])
def test_a_skipped_step_keeps_the_methods_state(fast_config, name):
    """on_nonfinite=skip: a step with a NaN task loss leaves MoCo's Y, λ, k, SDMGrad's w and MoDo's λ as
    they were (the guard restores the methods' buffers), while the steps around it move them."""
    from hydra.utils import instantiate

    from rw_mtl.build import build_module

    from .conftest import fit_quietly
    from .test_nonfinite import PoisonAndWatch, _equal

    config = fast_config(
        "dataset.datamodule.train_size=512",
        "weighting/loss=rlw",
        f"weighting/grad={name}",
        "on_nonfinite=skip",
        "max_skipped_fraction=0.5",
    )
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    watch = PoisonAndWatch(at=2)
    initial = {key: value.clone() for key, value in module.grad_weighting.state_dict().items()}
    fit_quietly(module, datamodule, max_steps=4, callbacks=[watch])
    assert module.skipped_steps == 1
    assert _equal(watch.before["methods"], watch.after["methods"])
    # the state does move on the steps that are not skipped (from its start, whatever the data makes of
    # the last step: SDMGrad's w can stay at a vertex of the simplex from one step to the next)
    final = module.grad_weighting.state_dict()
    assert any(key not in initial or not torch.equal(final[key], initial[key]) for key in final)


@pytest.mark.parametrize("name", ["moco", "db_mtl", "excess_mtl"])
def test_a_skipped_first_step_leaves_the_gradient_shaped_state_at_zero(name):
    """The [T, D] state of MoCo (Y), DB-MTL (the gradient average) and ExcessMTL (the squared sums) is
    sized at the first step. When that step is skipped (a NaN loss under on_nonfinite=skip) the state
    keeps G's shape and returns to zeros, as every other buffer returns to its value before the step —
    the next step then starts from the state of a method that never stepped."""
    from rw_mtl.training.nonfinite import NonFiniteGuard

    grads, losses = random_grads(3, dim=5, seed=50, dtype=torch.float32), T([1.0, float("nan"), 2.0])
    method = get(name)(3)
    initial = {key: value.clone() for key, value in method.state_dict().items()}
    guard = NonFiniteGuard("skip", ["a", "b", "c"])
    guard.reset(torch.device("cpu"))
    with guard.keep_state_if_skipped([method]):
        seen = guard.begin_step(losses)
        method.aggregate(guard.gradients(grads.clone()), seen)
    (state,) = method.gradient_shaped
    assert torch.equal(getattr(method, state), torch.zeros(3, 5))
    for key, value in initial.items():
        if key != state:
            torch.testing.assert_close(method.state_dict()[key], value, rtol=0, atol=0, equal_nan=True)
    # a finite step moves it
    guard.reset(torch.device("cpu"))
    with guard.keep_state_if_skipped([method]):
        method.aggregate(guard.gradients(grads.clone()), guard.begin_step(losses.nan_to_num(1.5)))
    assert getattr(method, state).abs().sum() > 0

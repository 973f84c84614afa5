"""The gradient methods only LibMTL and their authors' repositories define (FairGrad, SDMGrad, MoDo, MoCo):
hand-computed T = 2 / 3 examples from the papers' equations, every hyperparameter's effect, the reference
solvers (scipy, as LibMTL calls it) and degenerate gradient matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares

from rw_mtl.weighting import get

T = torch.tensor
NAMES = ["fairgrad"]


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

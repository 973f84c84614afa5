"""Fast checks of the weighting code written against surviving mutants of ``make mutate``
(docs/testing.md), and standing in, within the mutation run, for the slow tests it leaves out
(``[tool.mutmut]`` in pyproject.toml): the MGDA optimality conditions without TorchJD's 100,000-step
Frank-Wolfe."""

from __future__ import annotations

import re

import pytest
import torch

from rw_mtl.weighting import get
from rw_mtl.weighting.registry import LOSS_METHODS
from rw_mtl.weighting.simplex import cagrad_weights, min_norm_weights

T = torch.tensor


def _grads(task_num: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(task_num, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_mgda_direction_meets_the_min_norm_optimality_conditions():
    """KKT of min ‖Σ w_t g_t‖² over the simplex: g_t · d ≥ ‖d‖² for every t, with equality where w_t > 0."""
    task_num = 4
    grads = _grads(task_num, dim=6, seed=3)
    method = get("mgda_ub")(task_num)
    direction = method.aggregate(grads)
    w = method.last_weights
    assert (w >= 0).all() and w.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(direction, w @ grads)
    products, norm2 = grads @ direction, direction @ direction
    assert (products >= norm2 - 1e-7).all()
    support = w > 1e-6
    assert 1 < int(support.sum()) < task_num  # a non-trivial active set
    torch.testing.assert_close(products[support], torch.full_like(products[support], norm2.item()))


@pytest.mark.parametrize("task_num", [2, 4])
def test_solvers_return_the_grams_dtype(task_num):
    gram32 = (lambda g: g @ g.T)(_grads(task_num, dim=30, seed=1)).float()
    for solve in (min_norm_weights, lambda gram: cagrad_weights(gram, 0.5)):
        w32, w64 = solve(gram32), solve(gram32.double())
        assert w32.dtype == torch.float32 and w64.dtype == torch.float64 and w32.shape == (task_num,)
        torch.testing.assert_close(w32.double(), w64, atol=1e-5, rtol=0)


# ------------------------------------------------------------------- every loss method: the contract
@pytest.mark.parametrize("name", sorted(LOSS_METHODS))
def test_loss_methods_name_a_wrong_task_count(name):
    message = f"{LOSS_METHODS[name].__name__} was built for 3 tasks but got losses for 2 tasks"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        get(name)(3).weights(torch.ones(2))


@pytest.mark.parametrize("name", ["dwa", "stch", "gradnorm"])
def test_epoch_end_names_a_wrong_task_count(name):
    method = get(name)(3)
    message = f"{type(method).__name__} was built for 3 tasks but got epoch losses for 2 tasks"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        method.epoch_end(torch.ones(2))


LEARNED = {"uw", "imtl_l"}  # λ from the method's own float32 parameters


@pytest.mark.parametrize("name", sorted(set(LOSS_METHODS) - LEARNED))
def test_loss_weights_follow_the_losses_dtype(name):
    losses = T([1.0, 0.5, 2.0], dtype=torch.float64)
    assert get(name)(3).weights(losses).dtype == torch.float64


# GLS: λ_t = (Π ℓ)^{1/T} / (T ℓ_t), the gradient of the geometric mean, has no value at ℓ_t = 0
@pytest.mark.parametrize("name", sorted(set(LOSS_METHODS) - {"gls"}))
def test_a_zero_loss_gets_finite_non_negative_weights(name):
    """ε guards (1 / (ℓ + ε), log(ℓ / nadir + ε)) keep a task whose loss reached exactly 0 finite."""
    weights = get(name)(3).weights(T([1.0, 0.0, 2.0]))
    assert torch.isfinite(weights).all() and (weights >= 0).all()


@pytest.mark.parametrize(
    ("name", "hparams", "why"),
    [
        ("db_mtl", {}, "the gradients of log ℓ_t"),
        ("gradnorm", {}, "training rates ℓ_t / ℓ_t(0)"),
        ("mgda_ub", {"normalization": "loss"}, "normalization='loss'"),
        ("moco", {}, "MoCo scales each normalised gradient by its loss"),
    ],
)
def test_gradient_methods_that_read_losses_say_why(name, hparams, why):
    method = get(name)(2, **hparams)
    message = f"{type(method).__name__} needs the per-task losses ({why}): aggregate(grads, losses)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        method.aggregate(T([[1.0, 0.0], [0.0, 1.0]]))

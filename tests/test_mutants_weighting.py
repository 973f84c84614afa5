"""Fast checks of the weighting code written against surviving mutants of ``make mutate``
(docs/testing.md), and standing in, within the mutation run, for the slow tests it leaves out
(``[tool.mutmut]`` in pyproject.toml): the MGDA optimality conditions without TorchJD's 100,000-step
Frank-Wolfe."""

# ruff: noqa: E501 (the expected messages are whole sentences of the code)
from __future__ import annotations

import math
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


# ---------------------------------------------------------------- hparam bounds: each edge, each alone
BAD_HPARAMS = [  # method, tasks, the one bad hparam, the message up to the values it reports
    (
        "upgrad",
        3,
        {"reg_eps": 0},
        "UPGrad needs norm_eps >= 0 and reg_eps > 0 (weighting.grad.hparams; reg_eps keeps the projection problem strictly convex), got",
    ),
    (
        "dualproj",
        3,
        {"norm_eps": -0.5},
        "DualProj needs norm_eps >= 0 and reg_eps > 0 (weighting.grad.hparams; reg_eps keeps the projection problem strictly convex), got",
    ),
    (
        "auto_lambda",
        3,
        {"learning_rate": 0},
        "Auto-Lambda learning_rate must be positive (weighting.loss.hparams.learning_rate), got",
    ),
    (
        "dwa",
        3,
        {"temperature": 0},
        "DWA needs temperature > 0 and weight_sum in ('tasks', 'one') (rw_mtl/conf/weighting/loss/dwa.yaml), got",
    ),
    (
        "dwa",
        3,
        {"weight_sum": "all"},
        "DWA needs temperature > 0 and weight_sum in ('tasks', 'one') (rw_mtl/conf/weighting/loss/dwa.yaml), got",
    ),
    (
        "ew",
        3,
        {"weight_sum": "all"},
        "EW: weighting.loss.hparams.weight_sum must be one of ('tasks', 'one') (rw_mtl/conf/weighting/loss/ew.yaml), got",
    ),
    (
        "famo",
        3,
        {"learning_rate": 0},
        "FAMO learning_rate must be positive (weighting.loss.hparams.learning_rate), got",
    ),
    ("famo", 3, {"gamma": -0.5}, "FAMO gamma must be >= 0 (weighting.loss.hparams.gamma), got"),
    ("forum", 3, {"phi": 0}, "FORUM phi must be positive (weighting.loss.hparams.phi), got"),
    (
        "forum",
        3,
        {"inner_steps": 0},
        "FORUM inner_steps must be an int >= 1 (weighting.loss.hparams.inner_steps), got",
    ),
    (
        "forum",
        3,
        {"inner_steps": 1.0},
        "FORUM inner_steps must be an int >= 1 (weighting.loss.hparams.inner_steps), got",
    ),
    (
        "moml",
        3,
        {"inner_lr": 0},
        "MOML inner_lr must be positive or null (rw_mtl/conf/weighting/loss/moml.yaml), got",
    ),
    ("stch", 3, {"mu": 0}, "STCH mu must be positive (weighting.loss.hparams.mu), got"),
    (
        "stch",
        3,
        {"warmup_epoch": -1},
        "STCH warmup_epoch must be an int >= 0 (weighting.loss.hparams.warmup_epoch), got",
    ),
    (
        "stch",
        3,
        {"warmup_epoch": 1.0},
        "STCH warmup_epoch must be an int >= 0 (weighting.loss.hparams.warmup_epoch), got",
    ),
    (
        "aligned_mtl",
        3,
        {"scale_mode": "max"},
        "AlignedMTL: weighting.grad.hparams.scale_mode must be one of ('min', 'median', 'rmse'), got",
    ),
    (
        "cagrad",
        3,
        {"c": -0.5},
        "CAGrad needs c >= 0 and rescale in (0, 1, 2) (rw_mtl/conf/weighting/grad/cagrad.yaml), got",
    ),
    (
        "cagrad",
        3,
        {"rescale": 3},
        "CAGrad needs c >= 0 and rescale in (0, 1, 2) (rw_mtl/conf/weighting/grad/cagrad.yaml), got",
    ),
    ("crmogm", 3, {"alpha": 1.5}, "CRMOGM: weighting.grad.hparams.alpha must be in [0, 1], got"),
    ("crmogm", 3, {"alpha": -0.5}, "CRMOGM: weighting.grad.hparams.alpha must be in [0, 1], got"),
    ("db_mtl", 3, {"beta": 1.0}, "DB_MTL beta must be in [0, 1) (weighting.grad.hparams.beta), got"),
    ("db_mtl", 3, {"beta": -0.5}, "DB_MTL beta must be in [0, 1) (weighting.grad.hparams.beta), got"),
    (
        "db_mtl",
        3,
        {"beta_sigma": -0.5},
        "DB_MTL beta_sigma must be >= 0 (weighting.grad.hparams.beta_sigma), got",
    ),
    (
        "excess_mtl",
        3,
        {"robust_step_size": -0.5},
        "ExcessMTL robust_step_size must be >= 0 (weighting.grad.hparams.robust_step_size), got",
    ),
    (
        "fairgrad",
        3,
        {"alpha": 0},
        "FairGrad needs alpha > 0 and iterations >= 1 (rw_mtl/conf/weighting/grad/fairgrad.yaml), got",
    ),
    (
        "fairgrad",
        3,
        {"iterations": 0},
        "FairGrad needs alpha > 0 and iterations >= 1 (rw_mtl/conf/weighting/grad/fairgrad.yaml), got",
    ),
    (
        "graddrop",
        3,
        {"leak": 1.5},
        "GradDrop leak must be in [0, 1] (rw_mtl/conf/weighting/grad/graddrop.yaml), got",
    ),
    (
        "graddrop",
        3,
        {"leak": -0.5},
        "GradDrop leak must be in [0, 1] (rw_mtl/conf/weighting/grad/graddrop.yaml), got",
    ),
    (
        "gradnorm",
        3,
        {"variant": "x"},
        "GradNorm: weighting.grad.hparams.variant must be one of ('libmtl', 'original') and weight_sum one of ('tasks', 'one') (rw_mtl/conf/weighting/grad/gradnorm.yaml), got",
    ),
    (
        "gradnorm",
        3,
        {"weight_sum": "x"},
        "GradNorm: weighting.grad.hparams.variant must be one of ('libmtl', 'original') and weight_sum one of ('tasks', 'one') (rw_mtl/conf/weighting/grad/gradnorm.yaml), got",
    ),
    (
        "gradvac",
        3,
        {"beta": 1.5},
        "GradVac beta must be in [0, 1] (rw_mtl/conf/weighting/grad/gradvac.yaml), got",
    ),
    (
        "gradvac",
        3,
        {"beta": -0.5},
        "GradVac beta must be in [0, 1] (rw_mtl/conf/weighting/grad/gradvac.yaml), got",
    ),
    (
        "krum",
        5,
        {"n_byzantine": -1},
        "Krum needs n_byzantine >= 0, 1 <= n_selected <= T and T >= n_byzantine + 3 tasks (weighting.grad.hparams); got",
    ),
    (
        "krum",
        5,
        {"n_selected": 0},
        "Krum needs n_byzantine >= 0, 1 <= n_selected <= T and T >= n_byzantine + 3 tasks (weighting.grad.hparams); got",
    ),
    (
        "krum",
        5,
        {"n_selected": 6},
        "Krum needs n_byzantine >= 0, 1 <= n_selected <= T and T >= n_byzantine + 3 tasks (weighting.grad.hparams); got",
    ),
    (
        "krum",
        5,
        {"n_byzantine": 3},
        "Krum needs n_byzantine >= 0, 1 <= n_selected <= T and T >= n_byzantine + 3 tasks (weighting.grad.hparams); got",
    ),
    (
        "mgda_ub",
        3,
        {"normalization": "x"},
        "MGDA-UB: weighting.grad.hparams.normalization must be one of ('none', 'l2', 'loss', 'loss+'), got",
    ),
    (
        "moco",
        3,
        {"beta": 0},
        "MoCo needs beta, gamma > 0 and beta_sigma, gamma_sigma, rho >= 0 (rw_mtl/conf/weighting/grad/moco.yaml), got",
    ),
    (
        "moco",
        3,
        {"gamma": 0},
        "MoCo needs beta, gamma > 0 and beta_sigma, gamma_sigma, rho >= 0 (rw_mtl/conf/weighting/grad/moco.yaml), got",
    ),
    (
        "moco",
        3,
        {"beta_sigma": -0.5},
        "MoCo needs beta, gamma > 0 and beta_sigma, gamma_sigma, rho >= 0 (rw_mtl/conf/weighting/grad/moco.yaml), got",
    ),
    (
        "moco",
        3,
        {"gamma_sigma": -0.5},
        "MoCo needs beta, gamma > 0 and beta_sigma, gamma_sigma, rho >= 0 (rw_mtl/conf/weighting/grad/moco.yaml), got",
    ),
    (
        "moco",
        3,
        {"rho": -0.5},
        "MoCo needs beta, gamma > 0 and beta_sigma, gamma_sigma, rho >= 0 (rw_mtl/conf/weighting/grad/moco.yaml), got",
    ),
    (
        "modo",
        3,
        {"gamma": 0},
        "MoDo needs gamma > 0 and rho >= 0 (rw_mtl/conf/weighting/grad/modo.yaml), got",
    ),
    (
        "modo",
        3,
        {"rho": -0.5},
        "MoDo needs gamma > 0 and rho >= 0 (rw_mtl/conf/weighting/grad/modo.yaml), got",
    ),
    (
        "nash_mtl",
        3,
        {"update_weights_every": 0},
        "NashMTL needs update_weights_every >= 1, optim_niter >= 1 and max_norm >= 0 (weighting.grad.hparams), got",
    ),
    (
        "nash_mtl",
        3,
        {"optim_niter": 0},
        "NashMTL needs update_weights_every >= 1, optim_niter >= 1 and max_norm >= 0 (weighting.grad.hparams), got",
    ),
    (
        "nash_mtl",
        3,
        {"max_norm": -0.5},
        "NashMTL needs update_weights_every >= 1, optim_niter >= 1 and max_norm >= 0 (weighting.grad.hparams), got",
    ),
    (
        "pcd",
        3,
        {"tau": 1.5},
        "PCD: weighting.grad.hparams.tau must be a number in [0, 1] or a list of 2 (one per secondary task), got",
    ),
    ("pcd", 3, {"beta": 1.0}, "PCD needs 0 <= beta < 1 and eps >= 0 (weighting.grad.hparams), got"),
    ("pcd", 3, {"eps": -0.5}, "PCD needs 0 <= beta < 1 and eps >= 0 (weighting.grad.hparams), got"),
    (
        "rotograd",
        3,
        {"rotation_size": 0},
        "rotation_size must be null (every channel) or >= 1 (rw_mtl/conf/weighting/grad/rotograd.yaml), got",
    ),
    (
        "sdmgrad",
        3,
        {"lamda": -0.5},
        "SDMGrad needs lamda >= 0, niter >= 0, lr > 0 and 0 <= momentum < 1 (rw_mtl/conf/weighting/grad/sdmgrad.yaml), got",
    ),
    (
        "sdmgrad",
        3,
        {"niter": -1},
        "SDMGrad needs lamda >= 0, niter >= 0, lr > 0 and 0 <= momentum < 1 (rw_mtl/conf/weighting/grad/sdmgrad.yaml), got",
    ),
    (
        "sdmgrad",
        3,
        {"lr": 0},
        "SDMGrad needs lamda >= 0, niter >= 0, lr > 0 and 0 <= momentum < 1 (rw_mtl/conf/weighting/grad/sdmgrad.yaml), got",
    ),
    (
        "sdmgrad",
        3,
        {"momentum": 1.0},
        "SDMGrad needs lamda >= 0, niter >= 0, lr > 0 and 0 <= momentum < 1 (rw_mtl/conf/weighting/grad/sdmgrad.yaml), got",
    ),
    (
        "sdmgrad",
        3,
        {"momentum": -0.5},
        "SDMGrad needs lamda >= 0, niter >= 0, lr > 0 and 0 <= momentum < 1 (rw_mtl/conf/weighting/grad/sdmgrad.yaml), got",
    ),
    (
        "trimmed_mean",
        3,
        {"trim_number": -1},
        "TrimmedMean needs 0 <= trim_number and T >= 2 * trim_number + 1 tasks (weighting.grad.hparams.trim_number); got",
    ),
    (
        "trimmed_mean",
        2,
        {"trim_number": 1},
        "TrimmedMean needs 0 <= trim_number and T >= 2 * trim_number + 1 tasks (weighting.grad.hparams.trim_number); got",
    ),
]


@pytest.mark.parametrize(("name", "task_num", "hparams", "message"), BAD_HPARAMS)
def test_each_bad_hparam_alone_is_refused_naming_its_key(name, task_num, hparams, message):
    """Each bound at its edge (0 where > 0 is needed, 1 where < 1 is) and each hparam of a joint check
    alone, with the message naming the key or YAML file."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)} "):
        get(name)(task_num, **hparams)


EDGE_HPARAMS = [  # values on the accepted side of each bound
    ("upgrad", 3, {"norm_eps": 0}),
    ("famo", 3, {"gamma": 0}),
    ("forum", 3, {"inner_steps": 1}),
    ("moml", 3, {"inner_lr": None}),
    ("stch", 3, {"warmup_epoch": 0}),
    ("cagrad", 3, {"c": 0, "rescale": 0}),
    ("crmogm", 3, {"alpha": 0}),
    ("crmogm", 3, {"alpha": 1}),
    ("db_mtl", 3, {"beta": 0, "beta_sigma": 0}),
    ("excess_mtl", 3, {"robust_step_size": 0}),
    ("fairgrad", 3, {"iterations": 1}),
    ("graddrop", 3, {"leak": 0}),
    ("graddrop", 3, {"leak": 1}),
    ("gradvac", 3, {"beta": 0}),
    ("gradvac", 3, {"beta": 1}),
    ("krum", 5, {"n_byzantine": 0, "n_selected": 5}),
    ("krum", 5, {"n_byzantine": 2}),
    ("moco", 3, {"beta_sigma": 0, "gamma_sigma": 0, "rho": 0}),
    ("modo", 3, {"rho": 0}),
    ("nash_mtl", 3, {"update_weights_every": 1, "optim_niter": 1, "max_norm": 0}),
    ("pcd", 3, {"tau": 0, "beta": 0, "eps": 0}),
    ("pcd", 3, {"tau": 1}),
    ("rotograd", 3, {"rotation_size": 1}),
    ("sdmgrad", 3, {"lamda": 0, "niter": 0, "momentum": 0}),
    ("trimmed_mean", 3, {"trim_number": 1}),
    ("trimmed_mean", 3, {"trim_number": 0}),
]


@pytest.mark.parametrize(("name", "task_num", "hparams"), EDGE_HPARAMS)
def test_hparams_on_the_edge_of_their_range_are_accepted(name, task_num, hparams):
    method = get(name)(task_num, **hparams)
    for key, value in hparams.items():
        stored = getattr(method, key, value)
        assert stored == value or isinstance(stored, torch.Tensor)


# --------------------------------------------------------------------------------------------- MoCo
def _moco_reference(grads, losses, steps, beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0):
    """MoCo (Fernando et al., 2023, Algorithm 1) written out: N = ℓ_t g_t / ‖g_t‖, Y ← Y − β_k (Y − N),
    λ ← softmax(λ − γ_k (Y Yᵀ + ρ I) λ), d = λᵀ Y, with β_k = β / k^{β_σ}, γ_k = γ / k^{γ_σ}, λ_0 = 1/T."""
    task_num = grads.shape[0]
    normalised = grads / grads.norm(dim=1, keepdim=True) * losses[:, None]
    tracked, lambd = torch.zeros_like(grads), torch.full((task_num,), 1.0 / task_num, dtype=grads.dtype)
    for k in range(1, steps + 1):
        tracked = tracked - beta / k**beta_sigma * (tracked - normalised)
        mixing = tracked @ tracked.T + rho * torch.eye(task_num, dtype=grads.dtype)
        lambd = torch.softmax(lambd - gamma / k**gamma_sigma * (mixing @ lambd), dim=0)
    return lambd @ tracked


@pytest.mark.parametrize(
    "hparams", [{}, {"beta": 0.3, "beta_sigma": 1.0, "gamma": 2.0, "gamma_sigma": 0.0, "rho": 0.5}]
)
def test_moco_follows_its_algorithm_over_three_steps(hparams):
    grads = T([[1.0, 0.0], [1.0, 0.2], [0.0, 3.0]], dtype=torch.float64)
    losses = T([1.0, 2.0, 0.5], dtype=torch.float64)
    method = get("moco")(3, **hparams)
    for steps in (1, 2, 3):
        direction = method.aggregate(grads, losses)
        torch.testing.assert_close(direction, _moco_reference(grads, losses, steps, **hparams))
    assert direction.dtype == torch.float64 and int(method.step) == 3


def test_dwa_loss_ratios_below_one_are_not_clamped():
    """Epoch losses (0.5, 0.25) then (0.25, 0.25): ratios (½, 1) as for (2, 1) then (1, 1) — the clamp only
    keeps a zero loss off the denominator: λ = 2 · softmax((½, 1) / 2) = 2 · (0.4378, 0.5622)."""
    method = get("dwa")(2)
    method.epoch_end(T([0.5, 0.25]))
    method.epoch_end(T([0.25, 0.25]))
    first = 1 / (1 + math.exp(0.25))
    torch.testing.assert_close(method.weights(torch.ones(2)), 2 * T([first, 1 - first]))


# ------------------------------------------------------------------------------------------ jacobian
def test_own_input_gradients_refuses_mismatched_inputs_saying_what_to_do():
    from rw_mtl.weighting.jacobian import own_input_gradients

    first, second = torch.ones(2, 3, requires_grad=True), torch.ones(3, 3, requires_grad=True)
    losses = torch.stack([first.sum(), second.sum()])
    message = (
        "rep mode with one input per task needs one representation per task, all of one shape "
        "(got [(2, 3), (3, 3)]); use equal per-task batch sizes with drop_last, or weighting.grad.mode=param"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        own_input_gradients(losses, [first, second])
    with pytest.raises(ValueError, match=re.escape("(got [(2, 3)])")):  # one input for two tasks
        own_input_gradients(losses, [first])


def test_own_input_gradients_give_zero_rows_to_an_input_no_loss_reaches():
    """Task 1's loss does not depend on its own input: its row is zeros, not an error."""
    from rw_mtl.weighting.jacobian import own_input_gradients

    first, second = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    losses = torch.stack([(3 * first).sum(), (2 * first).sum()])
    torch.testing.assert_close(own_input_gradients(losses, [first, second]), T([[3.0, 3.0], [0.0, 0.0]]))


# --------------------------------------------------------------------------------------------- MOML
def test_moml_update_is_the_min_norm_point_of_the_unit_alpha_rows_for_three_tasks():
    """With two tasks the α-rows H_t J are parallel (J = diag(w) − w wᵀ has rank 1) and the min-norm point
    is 0 or one row whatever their lengths; with three it depends on normalising each row to unit length."""
    from rw_mtl.weighting.interface import MetaStep

    torch.manual_seed(0)
    x_train, x_val, targets = torch.randn(8, 3), torch.randn(6, 3), torch.randn(3, 3)
    theta = {"w": torch.randn(3, requires_grad=True), "b": torch.randn(1, requires_grad=True)}

    def task_losses(params, x):
        out = x @ params["w"] + params["b"]
        return torch.stack([((out - x @ targets[t]) ** 2).mean() for t in range(3)])

    method = get("moml")(3)
    with torch.no_grad():
        method.logits.copy_(T([0.3, -0.2, 0.1]))
    meta = MetaStep(
        losses=task_losses(theta, x_train),
        params=theta,
        validation_losses=lambda p: task_losses(p, x_val),
        training_losses=lambda p: task_losses(p, x_train),
        learning_rate=1e-4,
    )
    (update,) = torch.autograd.grad(method.meta_step(meta), method.logits)
    weights = torch.softmax(method.logits.detach(), 0)
    rows = method.last_hypergradient @ (torch.diag(weights) - weights[:, None] * weights[None, :])
    rows = rows / rows.norm(dim=1, keepdim=True)
    expected = min_norm_weights(rows @ rows.T) @ rows
    assert expected.norm() > 1e-3  # not the trivial 0 of the two-task case
    torch.testing.assert_close(update, expected, atol=1e-7, rtol=1e-5)


# --------------------------------------------------------------------------------------------- STCH
@pytest.mark.parametrize(("mu", "expected"), [(1.0, [1.0, 0.5, 0.25]), (0.5, [4 / 3, 1 / 6, 1 / 12])])
def test_stch_after_warm_up_weighs_the_smoothed_max_of_nadir_ratios(mu, expected):
    """Nadir (1, 2, 4) from epoch 0; losses (2, 1, 2): ratios r = (2, ½, ½), softmax(log r / μ) = r^{1/μ} /
    Σ r^{1/μ}, λ = T · softmax / ℓ: μ = 1: 3 · (⅔, ⅙, ⅙) / (2, 1, 2); μ = ½: 3 · (4, ¼, ¼) / 4.5 / (2, 1, 2)."""
    method = get("stch")(3, mu=mu, warmup_epoch=0)
    torch.testing.assert_close(method.weights(T([2.0, 1.0, 2.0])), T([0.5, 1.0, 0.5]), rtol=1e-6, atol=0)
    method.epoch_end(T([1.0, 2.0, 4.0]))
    weights = method.weights(T([2.0, 1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(weights, T(expected, dtype=torch.float64), rtol=1e-6, atol=0)


def test_stch_keeps_a_zero_loss_finite_after_warm_up():
    """Nadir (2, 2, 4), losses (0, 1, 2): softmax weight ε / (1 + ε) on the zero loss, divided by ε · 2:
    λ_0 = 3 · ½ = 1.5 (the ε terms cancel); the others 3 · ½ / 1 and 3 · ½ / 2."""
    method = get("stch")(3, warmup_epoch=0)
    method.epoch_end(T([2.0, 2.0, 4.0]))
    weights = method.weights(T([0.0, 1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(weights, T([1.5, 1.5, 0.75], dtype=torch.float64), rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------- UPGrad / DualProj
def test_regularized_gram_is_torchjds_normalise_then_regularise():
    from rw_mtl.weighting.dual_cone import regularized_gram

    gram = T([[3.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # trace 4
    expected = gram / 4 + 0.01 * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(regularized_gram(gram, 1e-4, 0.01), expected, rtol=0, atol=1e-15)
    tiny = gram * 1e-6  # trace 4e-6 below norm_eps: only the regulariser
    torch.testing.assert_close(regularized_gram(tiny, 1e-4, 0.01), 0.01 * torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_dual_cone_methods_equal_torchjd_on_conflicting_gradients(name):
    from torchjd.aggregation import DualProj, UPGrad

    grads = T([[1.0, 0.0, 2.0], [-2.0, 1.0, -1.0], [0.5, -1.0, 0.0]], dtype=torch.float64)
    reference = {"upgrad": UPGrad, "dualproj": DualProj}[name]()(grads)
    torch.testing.assert_close(get(name)(3).aggregate(grads), reference, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------- interface errors
def test_interface_errors_say_what_is_missing():
    from rw_mtl.weighting.interface import Combination, TaskGradients

    message = "per-sample gradients exist in rep mode only; set weighting.grad.mode=rep"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TaskGradients(torch.ones(2, 3)).per_sample()
    message = "a method that returns a direction has no per-task contributions"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Combination(direction=torch.ones(3)).contributions_for(torch.ones(2, 3))


def test_moco_scales_by_the_weighted_losses_and_refuses_a_new_width():
    """With the step's λ, each normalised gradient is scaled by ℓ_t λ_t / mean(λ) (MoCo sees the weighted
    losses); a matrix of another width after the first step means the shared parameters changed."""
    from rw_mtl.weighting.interface import TaskGradients

    grads = T([[1.0, 0.0], [1.0, 0.2], [0.0, 3.0]], dtype=torch.float64)
    losses = T([1.0, 2.0, 0.5], dtype=torch.float64)
    weights = T([1.0, 3.0, 2.0], dtype=torch.float64)  # mean 2
    method = get("moco")(3)
    direction = method(TaskGradients(grads, loss_weights=weights), losses).direction
    torch.testing.assert_close(direction, _moco_reference(grads, losses * weights / 2, 1))
    message = (
        "MoCo keeps a running tracked of shape (3, 2) but got task gradients of shape (3, 4); its state "
        "belongs to one model and one weighting.grad.mode"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        method.aggregate(torch.ones(3, 4, dtype=torch.float64), losses)


@pytest.mark.parametrize("trim_number", [0, 1, 2])
def test_trimmed_mean_drops_each_columns_extremes(trim_number):
    """Column-wise: sort each column, drop trim_number from each end, average the rest (5 tasks)."""
    grads = T([[5.0, -1.0], [1.0, 2.0], [-3.0, 8.0], [2.0, 0.0], [0.0, -6.0]])
    ordered = grads.sort(dim=0).values
    expected = ordered[trim_number : 5 - trim_number].mean(dim=0)
    hand = {0: T([1.0, 0.6]), 1: T([1.0, 1.0 / 3]), 2: T([1.0, 0.0])}[trim_number]
    torch.testing.assert_close(expected, hand)
    torch.testing.assert_close(get("trimmed_mean")(5, trim_number=trim_number).aggregate(grads), hand)


@pytest.mark.parametrize(("n_selected", "direction"), [(2, [0.5, 0.0]), (3, [1 / 3, 2 / 3])])
def test_krum_averages_the_gradients_closest_to_their_neighbours(n_selected, direction):
    """g = (0, 0), (1, 0), (0, 2), (3, 0), (10, 10); n_byzantine 1: each scored by the summed distance to its
    T − 1 − 2 = 2 nearest others: 1 + 2, 1 + 2, 2 + √5, 2 + 3, √149 + √164 (the outlier): the lowest
    n_selected are averaged. TorchJD's Krum agrees."""
    from torchjd.aggregation import Krum

    grads = T([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [10.0, 10.0]], dtype=torch.float64)
    method = get("krum")(5, n_byzantine=1, n_selected=n_selected)
    result = method.aggregate(grads)
    torch.testing.assert_close(result, T(direction, dtype=torch.float64))
    torch.testing.assert_close(result, Krum(n_byzantine=1, n_selected=n_selected)(grads))
    weights = torch.zeros(5, dtype=torch.float64)
    weights[:n_selected] = 1 / n_selected  # the first n_selected gradients, each weighted 1 / n_selected
    torch.testing.assert_close(method.last_weights, weights)

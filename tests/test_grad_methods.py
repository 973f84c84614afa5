"""Gradient-balancing methods on plain [T, D] matrices: hand-computed values, defining properties, and
cross-checks with TorchJD's aggregators and with the reference CAGrad solver (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq, minimize, nnls
from torchjd.aggregation import IMTLG, MGDA
from torchjd.aggregation import GradVac as TorchJDGradVac
from torchjd.aggregation import PCGrad as TorchJDPCGrad

from rw_mtl.weighting import GRAD_METHODS, get
from rw_mtl.weighting.interface import TaskGradients
from rw_mtl.weighting.simplex import (
    EXACT_MAX_TASKS,
    cagrad_weights,
    min_norm_weights,
    project_to_simplex,
)

from .test_step_syncs import host_syncs

T = torch.tensor
DETERMINISTIC = ["mgda_ub", "imtl_g", "cagrad", "gradnorm"]
# methods that need more than two tasks (Krum: T >= n_byzantine + 3; TrimmedMean: T >= 2·trim_number + 1)
TWO_TASK_HPARAMS = {"krum": None, "trimmed_mean": {"trim_number": 0}}


def random_grads(task_num: int, dim: int = 20, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(task_num, dim, generator=generator, dtype=torch.float64)


# ------------------------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("name", sorted(GRAD_METHODS))
@pytest.mark.parametrize("task_num", [2, 3, 5])
def test_aggregate_contract(name, task_num):
    torch.manual_seed(0)
    grads = random_grads(task_num).float()
    hparams = {"rotation_size": 8} if name == "rotograd" else {}
    if task_num == 2 and name in TWO_TASK_HPARAMS:
        if TWO_TASK_HPARAMS[name] is None:
            pytest.skip(f"{name} needs at least three tasks")
        hparams = TWO_TASK_HPARAMS[name]
    method = get(name)(task_num, **hparams)
    direction = method.aggregate(grads, torch.rand(task_num) + 0.5)
    assert direction.shape == (grads.shape[1],) and torch.isfinite(direction).all()
    if method.last_weights is not None:
        assert method.last_weights.shape == (task_num,)
        torch.testing.assert_close(method.last_weights @ grads, direction, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_methods_repeat_exactly(name):
    grads, losses = random_grads(4).float(), torch.tensor([1.0, 2.0, 0.5, 1.5])
    method = get(name)(4)
    assert torch.equal(method.aggregate(grads, losses), method.aggregate(grads, losses))
    assert torch.equal(get(name)(4).aggregate(grads, losses), method.aggregate(grads, losses))


# ---------------------------------------------------------------------------------------------- MGDA-UB
def test_mgda_two_tasks_hand_computed():
    # min over w of ‖w (2,0) + (1−w) (0,1)‖² = 4w² + (1−w)²  →  w = 1/5, d = (0.4, 0.8)
    method = get("mgda_ub")(2)
    torch.testing.assert_close(method.aggregate(T([[2.0, 0.0], [0.0, 1.0]])), T([0.4, 0.8]))
    torch.testing.assert_close(method.last_weights, T([0.2, 0.8]))


def test_mgda_result_is_min_norm_point_of_hull():
    grads = random_grads(4, dim=6, seed=3)
    method = get("mgda_ub")(4)
    direction = method.aggregate(grads)
    w = method.last_weights
    assert (w >= 0).all() and w.sum().item() == pytest.approx(1.0)
    # KKT on the simplex: g_t · d ≥ ‖d‖² for every t, with equality on the support.
    products, norm2 = grads @ direction, direction @ direction
    assert (products >= norm2 - 1e-7).all()
    torch.testing.assert_close(
        products[w > 1e-6], torch.full_like(products[w > 1e-6], norm2.item()), atol=1e-7, rtol=0
    )
    # TorchJD's Frank-Wolfe stops a little short of the optimum here (KKT violated by 3e-5): same point,
    # and ours is never longer.
    torchjd_direction = MGDA(epsilon=1e-12, max_iters=100_000)(grads)
    assert norm2 <= torchjd_direction @ torchjd_direction
    torch.testing.assert_close(direction, torchjd_direction, atol=5e-4, rtol=0)


@pytest.mark.parametrize(
    ("normalization", "losses"),
    [("l2", None), ("loss", [2.0, 1.0])],  # both turn (2,0), (0,1) into (1,0), (0,1)
)
def test_mgda_normalizations_to_unit_gradients(normalization, losses):
    method = get("mgda_ub")(2, normalization=normalization)
    result = method.aggregate(T([[2.0, 0.0], [0.0, 1.0]]), None if losses is None else T(losses))
    torch.testing.assert_close(result, T([0.5, 0.5]))
    torch.testing.assert_close(method.last_weights, T([0.25, 0.5]))


def test_mgda_loss_plus_normalization():
    # n = ℓ‖g‖ = (8, 0.5): ĝ = (0.25, 0), (0, 2); min norm at w_1 = 4 / (0.0625 + 4)
    method = get("mgda_ub")(2, normalization="loss+")
    result = method.aggregate(T([[2.0, 0.0], [0.0, 1.0]]), T([4.0, 0.5]))
    w1 = 4.0 / 4.0625
    torch.testing.assert_close(result, T([w1 * 0.25, (1 - w1) * 2.0]))
    torch.testing.assert_close(method.last_weights, T([w1 / 8.0, (1 - w1) / 0.5]))


def test_mgda_loss_normalization_needs_losses():
    with pytest.raises(ValueError, match="losses"):
        get("mgda_ub")(2, normalization="loss").aggregate(torch.eye(2))
    with pytest.raises(ValueError, match="weighting.grad.hparams.normalization"):
        get("mgda_ub")(2, normalization="l1")


# ----------------------------------------------------------------------------------------------- PCGrad
def test_pcgrad_two_tasks_hand_computed():
    # g1·g2 = −1: g1' = g1 + ½ g2 = (0.5, 0.5), g2' = g2 + g1 = (0, 1)
    torch.manual_seed(0)
    grads = T([[1.0, 0.0], [-1.0, 1.0]])
    torch.testing.assert_close(get("pcgrad")(2).aggregate(grads), T([0.5, 1.5]))
    torch.testing.assert_close(get("pcgrad")(2).aggregate(grads), TorchJDPCGrad()(grads))


def test_pcgrad_leaves_agreeing_gradients_alone():
    grads = T([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(get("pcgrad")(2).aggregate(grads), T([2.0, 1.0]))


def test_pcgrad_removes_each_conflicting_component():
    # g3 is orthogonal to both others, so every random order gives the same result.
    grads = T([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    for seed in range(5):
        torch.manual_seed(seed)
        torch.testing.assert_close(get("pcgrad")(3).aggregate(grads), T([0.5, 1.5, 1.0]))


def test_pcgrad_projected_gradient_no_longer_conflicts():
    torch.manual_seed(0)
    grads = T([[2.0, 1.0], [-1.0, 0.5]])
    method = get("pcgrad")(2)
    direction = method.aggregate(grads)
    first = grads[0] - (grads[0] @ grads[1]) / (grads[1] @ grads[1]) * grads[1]
    assert first @ grads[1] == pytest.approx(0.0, abs=1e-6)
    second = grads[1] - (grads[1] @ grads[0]) / (grads[0] @ grads[0]) * grads[0]
    torch.testing.assert_close(direction, first + second)


# --------------------------------------------------------------------------------------------- GradDrop
def test_graddrop_keeps_agreeing_coordinates_whole():
    grads = T([[1.0, 2.0, -1.0], [3.0, 1.0, -2.0]])
    torch.testing.assert_close(get("graddrop")(2).aggregate(grads), T([4.0, 3.0, -3.0]))


def test_graddrop_samples_sign_by_purity():
    # P = ½(1 + (1−3)/(1+3)) = 0.25: keep +1 with probability 0.25, else −3  →  E[d] = −2
    torch.manual_seed(0)
    grads = T([[1.0], [-3.0]]).expand(2, 40_000).contiguous()
    direction = get("graddrop")(2).aggregate(grads)
    assert set(direction.unique().tolist()) == {1.0, -3.0}
    assert direction.mean().item() == pytest.approx(-2.0, abs=0.03)
    torch.testing.assert_close(get("graddrop")(2, leak=1.0).aggregate(grads), grads.sum(0))


def _rep_gradients(per_sample: torch.Tensor, rep: torch.Tensor) -> TaskGradients:
    """Rep-mode gradients as the step hands them: [T, B·F] rows, z [B, F] (or [T, B, F])."""
    return TaskGradients(per_sample.flatten(1), representation=rep, sample_shape=per_sample.shape[2:])


def test_graddrop_masks_on_a_hand_made_batch():
    """Algorithm 1: S_t = Σ_b g_{t,b} sign(z_b) per feature, one mask per feature for the whole batch.

    z = [[1, −1], [−1, 2]];  task 1: g = [[1, 2], [3, −1]],  task 2: g = [[−2, 1], [1, 1]]
    S_1 = (1 − 3, −2 − 1) = (−2, −3),  S_2 = (−2 − 1, −1 + 1) = (−3, 0)
    P = ½(1 + ΣS/Σ|S|) = (0, 0): keep the negative S of each feature — task 1 both features, task 2 only
    feature 0 (its S is 0 on feature 1), for every sample and whatever U draws.
    """
    rep = T([[1.0, -1.0], [-1.0, 2.0]])
    per_sample = T([[[1.0, 2.0], [3.0, -1.0]], [[-2.0, 1.0], [1.0, 1.0]]])
    combination = get("graddrop")(2)(_rep_gradients(per_sample, rep))
    expected = T([[[1.0, 2.0], [3.0, -1.0]], [[-2.0, 0.0], [1.0, 0.0]]])
    torch.testing.assert_close(combination.per_task, expected.flatten(1))
    # leak 0.25 keeps a quarter of what the mask drops
    leaky = get("graddrop")(2, leak=0.25)(_rep_gradients(per_sample, rep))
    torch.testing.assert_close(leaky.per_task[1], T([-2.0, 0.25, 1.0, 0.25]))
    # the sign of z decides: with z ≥ 0, S = ((4, 1), (−1, 2)) and task 2 keeps feature 1 (P = 1)
    flipped = get("graddrop")(2)(_rep_gradients(per_sample, rep.abs()))
    assert not torch.equal(flipped.per_task, combination.per_task)


def test_graddrop_one_mask_per_feature_matches_the_reference_formula():
    """Random batch: the kept gradients equal P, U and M computed by hand with the same uniform draws, and
    each feature's mask is the same for all 8 samples (per-task z_t too, as LibMTL's multi-input case)."""
    generator = torch.Generator().manual_seed(0)
    per_sample = torch.randn(3, 8, 5, generator=generator, dtype=torch.float64)
    for rep in (torch.randn(8, 5, generator=generator), torch.randn(3, 8, 5, generator=generator)):
        rep = rep.double()
        torch.manual_seed(1)
        got = get("graddrop")(3)(_rep_gradients(per_sample, rep)).per_task.view(3, 8, 5)
        statistic = (per_sample * rep.sign()).sum(1)
        purity = 0.5 * (1 + statistic.sum(0) / (statistic.abs().sum(0) + 1e-7))
        torch.manual_seed(1)
        uniform = torch.rand(5, dtype=torch.float64)
        mask = ((purity > uniform) & (statistic > 0)) | ((purity < uniform) & (statistic < 0))
        torch.testing.assert_close(got, per_sample * mask[:, None, :])
        kept = got != 0
        assert torch.equal(kept, kept[:, :1].expand_as(kept))  # the same mask for every sample


# ----------------------------------------------------------------------------------------------- IMTL-G
def test_imtlg_two_tasks_hand_computed():
    # d = a (1,0) + (1−a) (0,2); equal projections a = 2(1−a)  →  a = 2/3, d = (2/3, 2/3)
    method = get("imtl_g")(2)
    torch.testing.assert_close(method.aggregate(T([[1.0, 0.0], [0.0, 2.0]])), T([2 / 3, 2 / 3]))
    torch.testing.assert_close(method.last_weights, T([2 / 3, 1 / 3]))


def test_imtlg_equal_projections_on_every_task():
    grads = random_grads(4, seed=5)
    direction = get("imtl_g")(4).aggregate(grads)
    projections = (grads / grads.norm(dim=1, keepdim=True)) @ direction
    torch.testing.assert_close(projections, projections[:1].expand(4))
    torch.testing.assert_close(direction, IMTLG()(grads))


def test_imtlg_collinear_and_identical_rows_least_squares():
    """No inverse exists; the pseudo-inverse solution α = M⁺n / 1ᵀM⁺n. g_2 = 2 g_1: M = ‖g_1‖² a aᵀ with
    a = (1, 2), n = ‖g_1‖ a, so M⁺n = a / (5 ‖g_1‖) and α = (1/3, 2/3), d = 5/3 g_1 — in either order."""
    g = T([3.0, 4.0], dtype=torch.float64)
    method = get("imtl_g")(2)
    close = {"rtol": 1e-6, "atol": 0}
    torch.testing.assert_close(method.aggregate(torch.stack([g, 2 * g])), 5 / 3 * g, **close)
    torch.testing.assert_close(method.last_weights, T([1 / 3, 2 / 3], dtype=torch.float64), **close)
    torch.testing.assert_close(method.aggregate(torch.stack([2 * g, g])), 5 / 3 * g, **close)
    # identical rows share the weight equally; a third, independent row keeps equal projections
    grads = T([[1.0, 2.0, 0.0], [1.0, 2.0, 0.0], [0.0, -1.0, 3.0]], dtype=torch.float64)
    direction = get("imtl_g")(3).aggregate(grads)
    projections = (grads / grads.norm(dim=1, keepdim=True)) @ direction
    torch.testing.assert_close(projections, projections[:1].expand(3), **close)
    torch.testing.assert_close(direction, IMTLG()(grads), **close)
    weights = get("imtl_g")(3)
    weights.aggregate(grads)
    torch.testing.assert_close(weights.last_weights[0], weights.last_weights[1], **close)


# ---------------------------------------------------------------------------------------------- GradVac
def _gradvac_reference(grads, target, beta, order):
    """A plain loop over pairs, as in the paper's Algorithm 2 (two tasks: order is fixed)."""
    projected = grads.clone()
    for i, j in order:
        gi, gj = projected[i], grads[j]
        cosine = gi @ gj / (gi.norm() * gj.norm())
        goal = target[i, j]
        if cosine < goal:
            projected[i] = gi + gj * gi.norm() * (
                goal * (1 - cosine**2).sqrt() - cosine * (1 - goal**2).sqrt()
            ) / (gj.norm() * (1 - goal**2).sqrt())
        target[i, j] = (1 - beta) * goal + beta * cosine
    return projected.sum(0)


def test_gradvac_two_tasks_two_steps_with_ema_state():
    grads = T([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    method = get("gradvac")(2, beta=0.5)
    target = torch.zeros(2, 2, dtype=torch.float64)
    first = method.aggregate(grads)
    torch.testing.assert_close(first, _gradvac_reference(grads, target, 0.5, [(0, 1), (1, 0)]))
    torch.testing.assert_close(first, TorchJDGradVac(beta=0.5)(grads))  # φ̂ = 0 at first: as PCGrad
    torch.testing.assert_close(method.target_similarity.double(), target)
    assert target[0, 1].item() == pytest.approx(-0.5 / math.sqrt(2))
    second = method.aggregate(grads)  # now φ = −0.707 < φ̂ = −0.354: raised to φ̂, not to 0
    torch.testing.assert_close(second, _gradvac_reference(grads, target, 0.5, [(0, 1), (1, 0)]))
    assert not torch.allclose(first, second)


# ----------------------------------------------------------------------------------------------- CAGrad
def _cagrad_reference(grads: torch.Tensor, c: float) -> torch.Tensor:
    """The original implementation (scipy on the host), rescale=1."""
    gram = (grads @ grads.T).numpy()
    task_num = len(gram)
    x0 = np.ones(task_num) / task_num
    g0_norm = np.sqrt(gram.mean() + 1e-8)
    cc = c * g0_norm + 1e-8

    def objective(x):
        return x @ gram @ x0 + cc * np.sqrt(x @ gram @ x + 1e-8)

    res = minimize(
        objective,
        x0,
        bounds=[(0, 1)] * task_num,
        method="SLSQP",
        constraints={"type": "eq", "fun": lambda x: 1 - x.sum()},
        options={"ftol": 1e-14, "maxiter": 2000},
    )
    gw = torch.from_numpy(res.x) @ grads
    return (grads.mean(0) + cc / (gw.norm() + 1e-8) * gw) / (1 + c**2)


def test_cagrad_is_mean_when_c_is_zero():
    grads = random_grads(3)
    torch.testing.assert_close(get("cagrad")(3, c=0.0).aggregate(grads), grads.mean(0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cagrad_matches_reference_solver(seed):
    grads = random_grads(3, dim=8, seed=seed)
    grads[1] = -0.8 * grads[0] + 0.3 * grads[1]  # a real conflict
    got = get("cagrad")(3, c=0.5).aggregate(grads)
    torch.testing.assert_close(got, _cagrad_reference(grads, 0.5), atol=2e-5, rtol=1e-4)


def test_cagrad_improves_worst_task_over_mean():
    grads = T([[1.0, 0.0], [-0.9, 0.3]], dtype=torch.float64)
    direction, mean = get("cagrad")(2, rescale=0).aggregate(grads), grads.mean(0)
    assert (grads @ direction).min() > (grads @ mean).min()


# --------------------------------------------------------------------------------------------- GradNorm
def test_gradnorm_balance_gradient_hand_computed():
    # original variant, Σw = 1: w = (½, ½), ‖g‖ = (1, 3): G = (½, 3/2), Ḡ = 1, r = 1 → L = Σ|G − 1|,
    # ∂L/∂s = (−1, 1); ℓ(0) = the first step's losses
    method = get("gradnorm")(2, variant="original", weight_sum="one")
    grads = T([[1.0, 0.0], [0.0, 3.0]])
    direction = method.aggregate(grads, T([2.0, 1.0]))
    torch.testing.assert_close(direction, T([0.5, 1.5]))
    torch.testing.assert_close(method.logits.grad, T([-1.0, 1.0]))
    torch.testing.assert_close(method.initial_losses, T([2.0, 1.0]))
    # Σw = T: w = (1, 1), G = (1, 3), Ḡ = 2, ∂L/∂G = (−1, 1), ∂G/∂s = T p(1 − p) ‖g‖ (±): ∂L/∂s = (−2, 2)
    method = get("gradnorm")(2, variant="original")
    torch.testing.assert_close(method.aggregate(grads, T([2.0, 1.0])), T([1.0, 3.0]))
    torch.testing.assert_close(method.logits.grad, T([-2.0, 2.0]))


def test_gradnorm_libmtl_variant_is_ew_in_epoch_0_then_balances_from_its_mean_loss():
    """LibMTL (the default): epoch 0 adds the task gradients with weight 1 and leaves s alone; ℓ(0) = epoch
    0's mean losses (4, 1). Epoch 1, losses (2, 1): L̃ = (½, 1), r = (2/3, 4/3), α = 1.5 → targets
    2 r^1.5 = (1.089, 3.079) above G = (1, 3): ∂L/∂G = (−1, −1), ∂L/∂s = (1, −1) — the slow task 1 gains."""
    grads = T([[1.0, 0.0], [0.0, 3.0]])
    method = get("gradnorm")(2)
    torch.testing.assert_close(method.aggregate(grads, T([3.0, 1.0])), T([1.0, 3.0]))
    torch.testing.assert_close(method.logits.grad, T([0.0, 0.0]))
    assert method.initial_losses.isnan().all()
    method.epoch_end(T([4.0, 1.0]))
    torch.testing.assert_close(method.initial_losses, T([4.0, 1.0]))
    method.logits.grad = None
    torch.testing.assert_close(method.aggregate(grads, T([2.0, 1.0])), T([1.0, 3.0]))
    torch.testing.assert_close(method.logits.grad, T([1.0, -1.0]))
    method.epoch_end(T([1.0, 1.0]))
    torch.testing.assert_close(method.initial_losses, T([4.0, 1.0]))  # only epoch 0's mean counts
    # α = 0: targets Ḡ = 2 for both, ∂L/∂G = (−1, 1), ∂L/∂s = (−2, 2)
    flat = get("gradnorm")(2, alpha=0.0)
    flat.aggregate(grads, T([3.0, 1.0]))
    flat.epoch_end(T([4.0, 1.0]))
    flat.aggregate(grads, T([2.0, 1.0]))
    torch.testing.assert_close(flat.logits.grad, T([-2.0, 2.0]))
    # Σw = 1: epoch 0 is EW with λ = 1/T
    torch.testing.assert_close(
        get("gradnorm")(2, weight_sum="one").aggregate(grads, T([3.0, 1.0])), T([0.5, 1.5])
    )


def test_gradnorm_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant must be one of"):
        get("gradnorm")(2, variant="libMTL")


def test_gradnorm_targets_slow_tasks():
    # equal norms, task 0's loss fell to half its start while task 1's did not: r = (2/3, 4/3), α = 1.5
    method = get("gradnorm")(2, variant="original")
    method.aggregate(torch.eye(2), T([1.0, 1.0]))
    method.aggregate(torch.eye(2), T([0.5, 1.0]))
    assert method.logits.grad[1] < 0 < method.logits.grad[0]  # gradient descent raises task 1's weight


# ------------------------------------------------------------------------------------------- the solvers
def test_project_to_simplex_matches_definition():
    vector = T([0.5, 2.0, -1.0, 0.7])
    projected = project_to_simplex(vector)
    torch.testing.assert_close(projected, T([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(project_to_simplex(T([0.2, 0.3, 0.5])), T([0.2, 0.3, 0.5]))
    torch.testing.assert_close(project_to_simplex(T([1.0, 1.0])), T([0.5, 0.5]))


@pytest.mark.parametrize("task_num", [6, 12])  # exact support enumeration; FISTA beyond EXACT_MAX_TASKS
@pytest.mark.parametrize("seed", range(4))
def test_solvers_reach_scipy_optimum(seed, task_num):
    grads = random_grads(task_num, dim=30, seed=seed)
    grads[1] = -0.7 * grads[0] + 0.2 * grads[1]  # a conflict, so the optimum is not the uniform point
    gram = grads @ grads.T
    scale = gram.diagonal().mean().item()
    w = min_norm_weights(gram)
    reference = minimize(
        lambda x: x @ gram.numpy() @ x,
        np.ones(task_num) / task_num,
        bounds=[(0, 1)] * task_num,
        method="SLSQP",
        constraints={"type": "eq", "fun": lambda x: 1 - x.sum()},
        options={"ftol": 1e-15},
    )
    assert (w @ gram @ w).item() <= reference.fun + 1e-5 * scale
    uniform = torch.full((task_num,), 1 / task_num, dtype=torch.float64)
    sqrt_phi = 0.5 * (uniform @ gram @ uniform).sqrt()

    def cagrad_objective(x):
        return x @ gram @ uniform + sqrt_phi * (x @ gram @ x).sqrt()

    w = cagrad_weights(gram, 0.5)
    reference = minimize(
        lambda x: cagrad_objective(torch.from_numpy(x)).item(),
        np.ones(task_num) / task_num,
        method="SLSQP",
        bounds=[(0, 1)] * task_num,
        constraints={"type": "eq", "fun": lambda x: 1 - x.sum()},
        options={"ftol": 1e-15},
    )
    assert cagrad_objective(w).item() <= reference.fun + 1e-5 * scale


# --------------------------------------------------------------------------------------------- RotoGrad
def test_rotograd_scales_to_convergence_weighted_norm():
    method = get("rotograd")(2, rotation_size=2)
    method.task_representations(torch.zeros(1, 2))
    # first step: α = ½ each, common norm = mean(3, 1) = 2 → d = 2·(1,0) + 2·(0,1)
    torch.testing.assert_close(method.aggregate(T([[3.0, 0.0], [0.0, 1.0]])), T([2.0, 2.0]))
    # task 0's norm halved: ratios (½, 1) → α = (⅓, ⅔), common norm = 1.5/3 + 2/3
    common = 1.5 / 3 + 2 / 3
    torch.testing.assert_close(method.aggregate(T([[1.5, 0.0], [0.0, 1.0]])), T([common, common]))
    torch.testing.assert_close(method.last_weights, T([common / 1.5, common / 1.0]))


def test_rotograd_rotation_step_descends_its_loss_and_stays_orthogonal():
    torch.manual_seed(0)
    method = get("rotograd")(2, rotation_size=3)
    rep = torch.randn(4, 5)
    assert all(torch.equal(view, rep) for view in method.task_representations(rep))  # R = I at the start
    grads = torch.randn(2, 4 * 5)
    per_sample = grads.view(2, 4, 5)
    norms = per_sample.flatten(1).norm(dim=1)
    reference = (per_sample * (per_sample.mean(0).norm() / norms).view(-1, 1, 1)).mean(0)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01)
    for _ in range(5):
        fixed = [layer.weight.detach().clone() for layer in method.rotations]

        def loss(rotations, fixed=fixed):  # E_b ‖R v_b − R̄ g_b‖², R̄ = the rotation of this step
            return sum(
                (
                    torch.cat([reference[:, :3] @ r.T, reference[:, 3:]], 1)
                    - torch.cat([per_sample[t][:, :3] @ f.T, per_sample[t][:, 3:]], 1)
                )
                .square()
                .sum(1)
                .mean()
                for t, (r, f) in enumerate(zip(rotations, fixed, strict=True))
            )

        before = loss(fixed)
        optimizer.zero_grad()
        method.aggregate(grads)
        optimizer.step()
        assert loss([layer.weight.detach() for layer in method.rotations]) < before
    for layer in method.rotations:
        torch.testing.assert_close(layer.weight @ layer.weight.T, torch.eye(3), atol=1e-5, rtol=0)
    assert not torch.allclose(method.rotations[0].weight, torch.eye(3))


class _Layout:
    """An architecture stand-in that only tells RotoGrad where z's channels are."""

    def __init__(self, channels: int, dim: int) -> None:
        self.layout = (channels, dim)

    def representation_layout(self) -> tuple[int, int]:
        return self.layout


def _random_rotations(method, seed: int = 0) -> list[torch.Tensor]:
    """Every R_t set to exp(X − Xᵀ), X random (the orthogonal parametrisation's right inverse)."""
    generator = torch.Generator().manual_seed(seed)
    rotations = []
    for layer in method.rotations:
        size = layer.weight.shape[0]
        skew = torch.randn(size, size, generator=generator)
        layer.weight = torch.linalg.matrix_exp(skew - skew.T)
        rotations.append(layer.weight.detach())
    return rotations


def test_rotograd_rotates_the_channels_of_every_pixel_and_token():
    """A [B, C, H, W] z rotated equals rotating each pixel's C-vector; a [B, L, C] token z rotates each
    token's C-vector; by default every channel (rotation_size null, sized by bind)."""
    maps = get("rotograd")(2)
    maps.bind(_Layout(3, 1))
    rotations = _random_rotations(maps)
    z = torch.randn(2, 3, 4, 5)
    for view, rotation in zip(maps.task_representations(z), rotations, strict=True):
        torch.testing.assert_close(view, torch.einsum("ij,bjhw->bihw", rotation, z))
    tokens = get("rotograd")(2)
    tokens.bind(_Layout(6, -1))
    rotations = _random_rotations(tokens, seed=1)
    z = torch.randn(2, 7, 6)
    for view, rotation in zip(tokens.task_representations(z), rotations, strict=True):
        torch.testing.assert_close(view, torch.einsum("ij,blj->bli", rotation, z))
    # rotation_size 2 of 3 channels: the third channel of every pixel passes through
    partial = get("rotograd")(2, rotation_size=2)
    partial.bind(_Layout(3, 1))
    rotation = _random_rotations(partial)[0]
    z = torch.randn(2, 3, 4, 5)
    view = partial.task_representations(z)[0]
    torch.testing.assert_close(view[:, :2], torch.einsum("ij,bjhw->bihw", rotation, z[:, :2]))
    torch.testing.assert_close(view[:, 2], z[:, 2])
    with pytest.raises(ValueError, match="rotation_size=null"):
        get("rotograd")(2, rotation_size=4).bind(_Layout(3, 1))


def test_rotograd_rotation_loss_runs_over_pixels():
    """On a [B, C, H, W] z the rotation loss is the mean over every pixel of ‖R v_p − R̄ g_p‖² (channel
    vectors), not a rotation of the flattened map."""
    method = get("rotograd")(2)
    method.bind(_Layout(3, 1))
    rotations = _random_rotations(method)
    per_sample = torch.randn(2, 2, 3, 4, 5)  # [T, B, C, H, W]
    grads = TaskGradients(
        per_sample.flatten(1), representation=torch.randn(2, 3, 4, 5), sample_shape=(3, 4, 5)
    )
    loss = method(grads).method_loss
    points = per_sample.movedim(2, -1).reshape(2, -1, 3)  # [T, B·H·W, C]
    norms = points.flatten(1).norm(dim=1)
    reference = (points * (points.mean(0).norm() / norms).view(-1, 1, 1)).mean(0)
    expected = sum(
        ((reference - points[t]) @ rotation.T).square().sum(1).mean() for t, rotation in enumerate(rotations)
    )
    torch.testing.assert_close(loss, expected)


def test_rotograd_needs_rep_mode():
    with pytest.raises(ValueError, match="rotation_size"):
        get("rotograd")(2, rotation_size=8).task_representations(torch.zeros(3, 4))


def _reference_min_norm(grads: np.ndarray) -> np.ndarray:
    """The min-norm point's weights to float64 precision, independently of rw_mtl: min_{u ≥ 0}
    ‖Gᵀu‖² + (1ᵀu − 1)² (Lawson & Hanson's NNLS, a finite active-set method) has u = s w* with w* the
    min-norm weights, since for u = s w the inner minimum over s is ‖g_w‖² / (1 + ‖g_w‖²)."""
    matrix = np.vstack([grads.T, np.ones((1, grads.shape[0]))])
    target = np.zeros(matrix.shape[0])
    target[-1] = 1.0
    u, _ = nnls(matrix, target, maxiter=100 * grads.shape[0])
    return u / u.sum()


def _reference_cagrad_direction(grads: np.ndarray, c: float) -> np.ndarray:
    """CAGrad's direction to float64 precision: its optimum w* satisfies b + λ M w* = ν 1 with λ = C / ‖g_w*‖,
    which makes w* the min-norm weights of the shifted rows g_t + g_0 / λ; λ is the root of
    λ ‖g_w(λ)‖ − C, found by bisection (brentq) over exact NNLS solves."""
    mean = grads.mean(0)
    radius = c * np.linalg.norm(mean)

    def weights(lam: float) -> np.ndarray:
        return _reference_min_norm(grads + mean / lam)

    lam = brentq(lambda x: x * np.linalg.norm(weights(x) @ grads) - radius, 1e-12, 1e12, rtol=1e-15)
    mixed = weights(lam) @ grads
    return mean + radius / np.linalg.norm(mixed) * mixed


def _cagrad_direction(grads: np.ndarray, weights: np.ndarray, c: float) -> np.ndarray:
    mean, mixed = grads.mean(0), weights @ grads
    return mean + c * np.linalg.norm(mean) / np.linalg.norm(mixed) * mixed


def _forty_task_gradients(kind: str, seed: int) -> torch.Tensor:
    """Random 40-task matrices: independent rows with one conflict, or rows that share a common component
    as real task gradients do (``correlated``), also with norms 10⁻¹ … 10¹ (``correlated_scaled``)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(40, 100, generator=generator, dtype=torch.float64)
    if kind == "independent":
        noise[1] = -0.7 * noise[0] + 0.2 * noise[1]
        return noise
    grads = torch.randn(1, 100, generator=generator, dtype=torch.float64) + 0.3 * noise
    if kind == "correlated_scaled":
        grads = grads * torch.logspace(-1, 1, 40, dtype=torch.float64)[:, None]
    return grads


def _assert_solvers_near_the_reference(grads: torch.Tensor, cagrad_tolerance: float) -> None:
    """MGDA-UB's direction within 1e-6 and CAGrad's (c = 0.5) within ``cagrad_tolerance`` (relative) of
    the scipy references'."""
    gram, numpy_grads = grads @ grads.T, grads.numpy()
    expected = _reference_min_norm(numpy_grads) @ numpy_grads
    got = min_norm_weights(gram).numpy() @ numpy_grads
    assert np.linalg.norm(got - expected) <= 1e-6 * np.linalg.norm(expected)
    expected = _reference_cagrad_direction(numpy_grads, 0.5)
    got = _cagrad_direction(numpy_grads, cagrad_weights(gram, 0.5).numpy(), 0.5)
    assert np.linalg.norm(got - expected) <= cagrad_tolerance * np.linalg.norm(expected)


@pytest.mark.parametrize("kind", ["independent", "correlated", "correlated_scaled"])
@pytest.mark.parametrize("seed", range(2))
def test_40_task_solvers_within_1e6_of_a_high_precision_reference(kind, seed):
    """CelebA's 40 tasks: MGDA-UB's and CAGrad's directions within 1e-6 (relative) of the exact optimum —
    a fixed budget of 250/300 first-order steps left up to 1e-3 (correlated) and 0.6 (correlated_scaled)."""
    _assert_solvers_near_the_reference(_forty_task_gradients(kind, seed), cagrad_tolerance=1e-6)


def test_40_task_solvers_on_gradients_of_very_different_norms():
    """Norms 10⁻² … 10² (Gram entries 10⁸ apart): MGDA-UB stays exact, CAGrad within 1e-4 — its closed form
    per support loses digits to the conditioning, leaving the barrier point."""
    grads = random_grads(40, dim=100, seed=5) * torch.logspace(-2, 2, 40, dtype=torch.float64)[:, None]
    _assert_solvers_near_the_reference(grads, cagrad_tolerance=1e-4)


def test_barrier_solvers_keep_float32_and_make_no_host_sync():
    """The solves run in float64 and hand back M's dtype, with no host sync (counted as the step's test
    counts them: tests/test_step_syncs.py) — IMTL-G's least squares included."""
    grads = random_grads(EXACT_MAX_TASKS + 2, dim=30)  # past the exact enumeration: the barrier method
    gram = (grads @ grads.T).float()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        weights = [min_norm_weights(gram), cagrad_weights(gram, 0.5)]
        duplicated = torch.cat([grads[:-1], grads[:1]]).float()  # a repeated row: the least-squares path
        weights.append(get("imtl_g")(len(gram)).gram_weights(duplicated @ duplicated.T, None))
    assert all(w.dtype == torch.float32 and w.shape == (EXACT_MAX_TASKS + 2,) for w in weights)
    assert host_syncs(profile.events()) == []


@pytest.mark.parametrize("solver", [min_norm_weights, lambda gram: cagrad_weights(gram, 0.5)])
def test_solvers_survive_degenerate_gradients(solver):
    duplicated = T([[1.0, 2.0], [1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)  # rank 2 for 3 tasks
    for grads in (duplicated, torch.zeros(4, 3, dtype=torch.float64), random_grads(5, dim=2)):  # zero; D < T
        w = solver(grads @ grads.T)
        assert torch.isfinite(w).all() and (w >= 0).all() and w.sum().item() == pytest.approx(1.0)


def test_exact_min_norm_on_dependent_gradients_hand_computed():
    # g1 = g2 = (1, 0), g3 = (−1, 0): 0 is in the hull, reached by putting half the mass on g3
    grads = T([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    w = min_norm_weights(grads @ grads.T)
    assert (w @ grads).norm().item() == pytest.approx(0.0, abs=1e-6)
    assert w[2].item() == pytest.approx(0.5, abs=1e-6)

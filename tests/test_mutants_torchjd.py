"""Tests that kill the mutants of TorchJD's family of methods and of the dual-cone solver (docs/testing.md,
"Mutation: TorchJD's family"): hand-computed examples and equalities to TorchJD where the existing tests
were symmetric or loose enough for a mutant to pass."""

from __future__ import annotations

import ast

import pytest
import torch
from torchjd.aggregation import PCD as TorchJDPCD
from torchjd.aggregation import ConFIG as TorchJDConFIG
from torchjd.aggregation import IMTLGWeighting

from rw_mtl.weighting import get
from rw_mtl.weighting.dual_cone import nonnegative_qp, regularized_gram
from rw_mtl.weighting.jacobian import task_gradients

T = torch.tensor
F64 = torch.float64


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference.double()).norm() / reference.double().norm().clamp_min(1e-300)).item()


# ------------------------------------------------------------------------------------------------- PCD
def _pcd_two_tasks(grads: torch.Tensor, average: torch.Tensor, tau: float, eps: float) -> torch.Tensor:
    """PCD for T = 2 written out: d̃ = g̃_1 + max(0, (τ‖g̃_2‖² − g̃_2·g̃_1) / ‖g̃_2‖²) g̃_2, g̃_i = g_i / √(v̂_i +
    eps), rescaled to ‖g_1‖ (``average``: v̂, debiased)."""
    g1, g2 = grads / (average + eps).sqrt()[:, None]
    direction = g1 + ((tau * g2 @ g2 - g2 @ g1) / (g2 @ g2)).clamp_min(0) * g2
    return direction * grads[0].norm() / direction.norm()


def test_pcd_in_float64_keeps_tau_and_the_moving_average_in_float64():
    """τ = 0.3 and squared norms 1.09, 1.3, 11.7 are not float32 numbers: rounding either (τ, or v̂ kept in
    float32) moves d by ~1e-8 relative; the float64 answer matches the formula to 1e-11."""
    first = T([[1.0, 0.3], [-0.7, 0.9]], dtype=F64)
    second = first * T([[1.0], [3.0]], dtype=F64)
    beta, tau = 0.999, 0.3
    squared = [first.square().sum(1), second.square().sum(1)]
    debiased = (beta * (1 - beta) * squared[0] + (1 - beta) * squared[1]) / (1 - beta**2)
    method = get("pcd")(2, tau=tau)
    exact = {"rtol": 1e-11, "atol": 0.0}
    torch.testing.assert_close(method.aggregate(first), _pcd_two_tasks(first, squared[0], tau, 1e-8), **exact)
    torch.testing.assert_close(method.aggregate(second), _pcd_two_tasks(second, debiased, tau, 1e-8), **exact)


def test_pcd_with_one_task_follows_it():
    """No secondary task, no constraint: d = g_1 (TorchJD's answer too)."""
    grads = T([[0.6, -0.8, 0.3]])
    torch.testing.assert_close(get("pcd")(1).aggregate(grads), grads[0])
    torch.testing.assert_close(TorchJDPCD()(grads), grads[0])


@pytest.mark.parametrize(("tau", "zero"), [(2.13e-3, True), (2.24e-3, False)])
def test_pcd_direction_is_zero_below_ten_eps_of_the_gram_dtype(tau, zero):
    """(g, −g) in float32: d̃ = −τ g̃, counted as 0 where ‖d̃‖² ≤ 10 eps · (Σ|w_i| ‖g̃_i‖)² = 10 eps (2 + τ)²‖g̃‖²,
    i.e. τ ≤ 2.186e-3 (TorchJD's threshold, ``precision``); 11 eps would move it to 2.293e-3."""
    g = T([0.6, -0.8, 0.3])
    grads = torch.stack([g, -g])
    expected = torch.zeros(3) if zero else -g
    torch.testing.assert_close(get("pcd")(2, tau=tau).aggregate(grads), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(TorchJDPCD(tau=tau)(grads), expected, rtol=1e-4, atol=1e-4)


def test_pcd_drops_opposite_secondaries_once_their_violation_passes_its_threshold():
    """(e1, e2, −e2) in float32: the constraints e2·d ≥ τ and −e2·d ≥ τ cannot both hold; the ridged QP leaves
    them violated by exactly τ (relative to max M̃_jj), counted infeasible above 1e3 · 10 eps(float32) =
    1.1921e-3 (d = g_1, TorchJD's answer). τ = 1.1927e-3 sits 0.05 % above it (1001 · 10 eps would not)."""
    grads = torch.eye(3)
    grads[2] = -grads[1]
    tau = 1.1927e-3
    torch.testing.assert_close(get("pcd")(3, tau=tau).aggregate(grads), grads[0])
    torch.testing.assert_close(TorchJDPCD(tau=tau)(grads), grads[0])


# ---------------------------------------------------------------------------- the dual cone: UPGrad, DualProj
@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_dual_cone_with_norm_eps_zero_gives_zero_for_zero_gradients(name):
    """norm_eps = 0 is allowed; a zero G (trace 0, not below 0) still counts as M = 0: d = 0 and weights p,
    where TorchJD's ``trace < norm_eps`` divides 0 by 0 (NaN)."""
    method = get(name)(3, norm_eps=0.0)
    direction = method.aggregate(torch.zeros(3, 4, dtype=F64))
    torch.testing.assert_close(direction, torch.zeros(4, dtype=F64))
    torch.testing.assert_close(method.last_weights, torch.full((3,), 1 / 3, dtype=F64))  # M̃ = reg I: v = p


@pytest.mark.parametrize(("name", "label"), [("upgrad", "UPGrad"), ("dualproj", "DualProj")])
def test_dual_cone_pref_vector_error_names_the_method(name, label):
    with pytest.raises(ValueError, match=f"^{label}: weighting.grad.hparams.pref_vector must be null"):
        get(name)(3, pref_vector=[1.0, 2.0])


def _six_conflicting_problems() -> tuple[torch.Tensor, torch.Tensor]:
    """UPGrad's batch of six dual-cone problems (M̃, q = u M̃ for u each task's one-hot / 6) for six
    conflicting tasks, two of them nearly opposite."""
    generator = torch.Generator().manual_seed(7)
    grads = torch.randn(6, 5, generator=generator, dtype=F64)
    grads[1] = -grads[0] + 0.2 * grads[1]
    hessian = regularized_gram(grads @ grads.T, 1e-4, 1e-4)
    return hessian, torch.eye(6, dtype=F64) / 6 @ hessian


def test_nonnegative_qp_polish_puts_the_active_constraints_exactly_at_zero():
    """Six conflicting tasks (two nearly opposite), UPGrad's batch of six problems: the interior point only
    approaches the bound of an active constraint (x_i ~ 1e-10 > 0); the polish solves the system on the active
    set it found, so x_i = 0 exactly wherever the gradient (M̃x + q)_i is positive, and M̃x + q = 0 on the
    rest to rounding."""
    hessian, linear = _six_conflicting_problems()
    x = nonnegative_qp(hessian, linear)
    gradient = x @ hessian + linear
    active = gradient > 1e-12
    assert active.sum() >= 6  # each problem has active bounds
    assert (x[active] == 0).all() and (x >= 0).all()
    assert gradient[~active].abs().max() < 1e-15


def test_nonnegative_qp_keeps_the_interior_point_where_the_polish_fails_its_check():
    """The same six problems stopped after 7 interior-point steps, before the active set is identified: the
    polished point on the wrong active set violates the optimality conditions and is refused, the interior
    point (4e-4 from the optimum) returned — a polished point accepted anyway is 7e-2 away. The check is
    per problem: those whose polish passes keep it."""
    hessian, linear = _six_conflicting_problems()
    optimum = nonnegative_qp(hessian, linear)
    early = nonnegative_qp(hessian, linear, iterations=7)
    assert relative_error(early, optimum) < 1e-3
    # row by row: five of the six have found their two active bounds (polished: exactly 0), the last not yet
    assert (early == 0).sum(dim=1).tolist() == [2, 2, 2, 2, 2, 0]


# --------------------------------------------------------------------------------------------------- CR-MOGM
def test_crmogm_refusal_lists_exactly_the_methods_it_can_wrap():
    """The message's list: every registered method CR-MOGM accepts (Gram weights), itself and the
    coordinate-wise or direction-only methods left out."""
    from rw_mtl.weighting.registry import GRAD_METHODS

    with pytest.raises(ValueError, match="must be a method whose weights come from the Gram") as error:
        get("crmogm")(3, method="graddrop")
    listed = ast.literal_eval(str(error.value).split("one of ")[1].split("; got")[0])
    accepted = []
    for name in sorted(GRAD_METHODS):
        try:
            get("crmogm")(3, method=name)
        except ValueError as refused:
            assert "must be a method whose weights" in str(refused), name
        else:
            accepted.append(name)
    assert listed == [name for name in accepted if name != "crmogm"]
    assert {"mgda_ub", "upgrad", "imtl_g", "pcd"} <= set(listed)
    assert "graddrop" not in listed and "trimmed_mean" not in listed


# ---------------------------------------------------------------------------------------------------- ConFIG
def test_config_pref_vector_error_names_the_method():
    with pytest.raises(ValueError, match="^ConFIG: weighting.grad.hparams.pref_vector must be null"):
        get("config")(3, pref_vector=[1.0, 2.0])


def test_config_direction_ignores_the_scale_of_the_pref_vector():
    """û is the unit vector of Ũ⁺p: p and c·p give one direction (also for pᵀ(ŨŨᵀ)⁺p < 1, p small)."""
    grads = T([[2.0, 0.5, 0.0], [-0.3, 1.0, 0.4], [0.2, -0.6, 1.5]], dtype=F64)
    default = get("config")(3).aggregate(grads)
    torch.testing.assert_close(get("config")(3, pref_vector=[0.01] * 3).aggregate(grads), default)
    torch.testing.assert_close(
        get("config")(3, pref_vector=[0.02, 0.01, 0.03]).aggregate(grads),
        get("config")(3, pref_vector=[2.0, 1.0, 3.0]).aggregate(grads),
    )


def test_config_more_tasks_than_dimensions_equals_torchjd():
    """Five gradients in R^2 (ŨŨᵀ of rank 2: the pseudo-inverse drops three eigenvalues at rounding level,
    and a p outside its range moves d if they are kept), and three where two are nearly parallel (a small
    kept eigenvalue, 1e-4 of the largest, far above the cut-off). float64: 1e-10 of TorchJD's SVD of Ũ."""
    generator = torch.Generator().manual_seed(3)
    wide = torch.randn(5, 2, generator=generator, dtype=F64)
    g, k = torch.randn(2, 6, generator=generator, dtype=F64)
    near = torch.stack([g, 2 * g, g + 0.01 * k])
    for grads in (wide, near):
        for pref in (None, [1.0, 2.0, 3.0, 4.0, 5.0][: grads.shape[0]]):
            ours = get("config")(grads.shape[0], pref_vector=pref).aggregate(grads)
            theirs = TorchJDConFIG(pref_vector=None if pref is None else T(pref, dtype=F64))(grads)
            assert relative_error(ours, theirs) < 1e-10, (grads.shape, pref)


def test_config_gives_a_zero_gradient_weight_zero():
    grads = T([[2.0, 0.5, 0.0], [0.0, 0.0, 0.0], [0.2, -0.6, 1.5]], dtype=F64)
    method = get("config")(3)
    direction = method.aggregate(grads)
    assert method.last_weights[1] == 0
    torch.testing.assert_close(direction, get("config")(2).aggregate(grads[[0, 2]]))


# ------------------------------------------------------------------------------------------------ jacobian
def _separate_losses(dtype: torch.dtype, task_num: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """task_num scalar losses computed separately from one shared z (its heads' outputs squared)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=generator, dtype=dtype)
    weight = torch.randn(3, 2, generator=generator, dtype=dtype, requires_grad=True)
    z = x @ weight
    heads = torch.randn(task_num, 2, generator=generator, dtype=dtype)
    return [((z @ head) ** 2).mean() for head in heads], weight


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=str)
@pytest.mark.parametrize("task_num", [1, 3])
def test_task_gradients_batched_takes_separate_scalar_losses_of_any_dtype(task_num, dtype):
    """A list of T scalars (each head's loss) in the vmapped path too, float64 included (the one-hot output
    gradients take the losses' dtype), and a single task: each row the autograd gradient of its loss."""
    losses, weight = _separate_losses(dtype, task_num)
    rows = [torch.autograd.grad(loss, weight, retain_graph=True)[0] for loss in losses]
    expected = torch.stack(rows).reshape(task_num, -1)
    for batched in (False, True):
        got = task_gradients(losses, [weight], batched=batched)
        assert got.dtype == dtype
        torch.testing.assert_close(got, expected)


def test_task_gradients_refuses_losses_of_the_wrong_shape():
    weight = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"^losses must be a \[T\] vector, got shape \(2, 1\)$"):
        task_gradients((weight * 2)[:, None], [weight])
    scalar_message = r"^losses must be a \[T\] vector or a sequence of T scalar losses$"
    with pytest.raises(ValueError, match=scalar_message):
        task_gradients([], [weight])
    with pytest.raises(ValueError, match=scalar_message):
        task_gradients([weight.sum(), weight * 2], [weight])


def test_crmogm_passes_the_losses_to_the_wrapped_method():
    """MGDA-UB with loss normalisation reads ℓ: its first λ̂ (= λ_1) differs from the one without losses'
    scale — (2, 0), (0, 1) with ℓ = (1, 4): MGDA on g/ℓ = (2, 0), (0, ¼) gives (1/65, 64/65) on the
    normalised gradients, w = (1/65, 16/65) on the raw ones."""
    grads = T([[2.0, 0.0], [0.0, 1.0]], dtype=F64)
    losses = T([1.0, 4.0], dtype=F64)
    wrapped = get("mgda_ub")(2, normalization="loss")
    method = get("crmogm")(2, method_hparams={"normalization": "loss"})
    expected = wrapped.gram_weights(grads @ grads.T, losses)
    torch.testing.assert_close(method.gram_weights(grads @ grads.T, losses), expected)
    torch.testing.assert_close(expected, T([1 / 65, 16 / 65], dtype=F64))


@pytest.mark.parametrize("batched", [False, True])
def test_task_gradients_leaves_a_head_no_loss_reaches_without_gradient(batched):
    """accumulate: a parameter no loss depends on (a head switched off) keeps ``.grad`` None, in the vmapped
    path too; the used one gets Σ_t ∇ℓ_t."""
    losses, weight = _separate_losses(torch.float32, 3)
    head, unused = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)
    losses = [loss * head for loss in losses]
    task_gradients([loss.squeeze() for loss in losses], [weight], batched=batched, accumulate=[head, unused])
    assert unused.grad is None
    torch.testing.assert_close(head.grad, torch.stack(losses).sum(dim=0).detach())


def test_crmogm_initial_weights_kept_in_float64():
    """λ_1 = α λ_0 + (1 − α) λ̂_1 exactly in float64: λ_0 = (0.3, 0.7) is not a float32 pair (rounding it would
    move λ_1 by ~1e-8). IMTL-G on orthogonal (1, 0), (0, 2): λ̂ = (2/3, 1/3)."""
    method = get("crmogm")(2, method="imtl_g", alpha=0.6, initial_weights=[0.3, 0.7])
    method.aggregate(T([[1.0, 0.0], [0.0, 2.0]], dtype=F64))
    expected = 0.6 * T([0.3, 0.7], dtype=F64) + 0.4 * T([2 / 3, 1 / 3], dtype=F64)
    torch.testing.assert_close(method.last_weights, expected, rtol=1e-14, atol=0.0)


# ---------------------------------------------------------------------------------------------------- IMTL-G
@pytest.mark.parametrize("b", [0.5, 1 - 3.46e-3, 1.0])
def test_imtl_g_on_anti_parallel_gradients_and_its_cut_off(b):
    """g_1 = e_1, g_2 = −√b e_1: M = u uᵀ (u = (1, −√b)) on the scale where max M_tt = 1, v = M⁺n =
    u (1 − b) / (1 + b)², 1ᵀv = (1 − √b)(1 − b) / (1 + b)², α = v / 1ᵀv = u / (1 − √b) — TorchJD's answer.
    1ᵀv = 0.065 for b = ½ and 1.5e-6 for b = 0.99654, both above the 1e-6 cut-off; b = 1 (g, −g): 1ᵀv = 0,
    no impartial direction but 0, α = 0."""
    grads = T([[1.0, 0.0], [-(b**0.5), 0.0]], dtype=F64)
    method = get("imtl_g")(2)
    method.aggregate(grads)
    expected = torch.zeros(2, dtype=F64) if b == 1.0 else T([1.0, -(b**0.5)], dtype=F64) / (1 - b**0.5)
    torch.testing.assert_close(method.last_weights, expected, rtol=1e-9, atol=0.0)
    if b < 1.0:
        torch.testing.assert_close(IMTLGWeighting()(grads @ grads.T), expected, rtol=1e-9, atol=0.0)

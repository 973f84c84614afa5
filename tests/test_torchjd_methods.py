"""The gradient methods TorchJD also has, re-implemented on the device from the Gram matrix: equal to
TorchJD's aggregators on random and degenerate matrices, each method's defining property, and every
hyperparameter's effect on a hand-computed example.

Tolerances, relative (‖ours − TorchJD‖ ≤ tol · ‖TorchJD‖): 1e-6 for closed forms (Aligned-MTL, ConFIG,
Krum, TrimmedMean, CR-MOGM around a closed form), 1e-4 for solvers (UPGrad, DualProj, PCD: our
interior-point QP against quadprog / Goldfarb-Idnani; Nash-MTL: our Newton solve against cvxpy/ECOS).
With float32 input both start from the same float32 Gram matrix, but ours runs its T×T algebra in float64
where TorchJD's closed forms stay in float32: there ours may instead be no farther than TorchJD from the
float64 evaluation of the same input ("no worse than TorchJD"). Where TorchJD's solver fails (Nash-MTL on
identical, zero, tiny or huge gradients: ECOS errors and keeps its previous weights), ours must solve the
bargaining system at least as well as TorchJD's answer does.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from scipy.optimize import minimize
from torchjd._linalg import QuadprogProjector
from torchjd.aggregation import PCD as TorchJDPCD
from torchjd.aggregation import AlignedMTL as TorchJDAlignedMTL
from torchjd.aggregation import ConFIG as TorchJDConFIG
from torchjd.aggregation import CRMOGMWeighting, GramianWeightedAggregator, IMTLGWeighting, UPGradWeighting
from torchjd.aggregation import DualProj as TorchJDDualProj
from torchjd.aggregation import Krum as TorchJDKrum
from torchjd.aggregation import NashMTL as TorchJDNashMTL
from torchjd.aggregation import TrimmedMean as TorchJDTrimmedMean
from torchjd.aggregation import UPGrad as TorchJDUPGrad

from rw_mtl.weighting import get
from rw_mtl.weighting.dual_cone import nonnegative_qp
from rw_mtl.weighting.grad.aligned_mtl import balance_transformation
from rw_mtl.weighting.grad.nash_mtl import bargaining_weights

T = torch.tensor
TASK_COUNTS = (2, 3, 5, 10, 40)
DTYPES = (torch.float32, torch.float64)
CLOSED_FORM, SOLVER = 1e-6, 1e-4


@pytest.fixture(autouse=True)
def one_thread():
    """T×T algebra only: a second intra-op thread adds nothing but synchronisation (which costs dearly on a
    shared, loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_matrix(task_num: int, dtype: torch.dtype, dim: int = 64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1000 * seed + task_num)
    return torch.randn(task_num, dim, generator=generator, dtype=torch.float64).to(dtype)


def _rows(*seeds: int) -> list[torch.Tensor]:
    return [torch.randn(8, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in seeds]


_g, _h, _k = _rows(11, 12, 13)
DEGENERATE = {
    "identical": torch.stack([_g, _g, _g]),
    "collinear": torch.stack([_g, 2 * _g, 0.5 * _g]),
    "opposite": torch.stack([_g, -_g, _h]),
    "zero_row": torch.stack([_g, torch.zeros(8, dtype=torch.float64), _h]),
    "scale_1e-8": 1e-8 * torch.stack([_g, _h, _k]),
    "scale_1e6": 1e6 * torch.stack([_g, _h, -_g + 0.1 * _k]),
}


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference.double()).norm() / reference.double().norm().clamp_min(1e-300)).item()


def assert_matches(ours, theirs, tolerance, exact=None) -> None:
    """ours ≈ theirs within ``tolerance`` (relative), or — given the float64 evaluation ``exact`` of the same
    input — ours no farther from it than theirs is."""
    error = relative_error(ours, theirs)
    if error <= tolerance:
        return
    assert exact is not None, f"relative error {error:.2e} > {tolerance:.0e}"
    assert relative_error(ours, exact) <= max(relative_error(theirs, exact), tolerance), (
        f"relative error {error:.2e}; to the float64 result: ours {relative_error(ours, exact):.2e}, "
        f"TorchJD's {relative_error(theirs, exact):.2e}"
    )


# ------------------------------------------------------------------------- equality with TorchJD, battery
def _pairs(task_num: int, dtype: torch.dtype):
    """(config name, our hparams, TorchJD's aggregator, tolerance) for every stateless method."""
    uniform = [1.0 / task_num] * task_num
    trim = min(1, (task_num - 1) // 2)
    pairs = [
        ("upgrad", {}, TorchJDUPGrad(), SOLVER),
        ("dualproj", {}, TorchJDDualProj(), SOLVER),
        ("aligned_mtl", {}, TorchJDAlignedMTL(pref_vector=torch.ones(task_num, dtype=dtype)), CLOSED_FORM),
        ("aligned_mtl", {"pref_vector": uniform}, TorchJDAlignedMTL(), CLOSED_FORM),
        ("config", {}, TorchJDConFIG(), CLOSED_FORM),
        ("trimmed_mean", {"trim_number": trim}, TorchJDTrimmedMean(trim), CLOSED_FORM),
    ]
    if task_num >= 3:
        pairs.append(("krum", {}, TorchJDKrum(n_byzantine=0), CLOSED_FORM))
    return pairs


def _float64_evaluation(method, grads: torch.Tensor) -> torch.Tensor:
    """The method on float32 ``grads`` with its algebra in float64: a Gram method on the same rounded
    float32 Gram matrix, a coordinate-wise one on G itself."""
    if not hasattr(method, "gram_weights"):
        return method.aggregate(grads.double())
    return method.gram_weights((grads @ grads.T).double(), None) @ grads.double()


def _check_against_torchjd(grads: torch.Tensor) -> None:
    task_num = grads.shape[0]
    for name, hparams, theirs, tolerance in _pairs(task_num, grads.dtype):
        ours = get(name)(task_num, **hparams).aggregate(grads)
        reference = theirs(grads)
        exact = None
        if grads.dtype == torch.float32 and tolerance == CLOSED_FORM:
            exact = _float64_evaluation(get(name)(task_num, **hparams), grads)
        assert ours.dtype == grads.dtype and torch.isfinite(ours).all(), name
        try:
            assert_matches(ours, reference, tolerance, exact)
        except AssertionError as err:
            raise AssertionError(f"{name} {hparams}: {err}") from None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("task_num", TASK_COUNTS)
def test_equal_to_torchjd_on_random_matrices(task_num, dtype):
    _check_against_torchjd(random_matrix(task_num, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_equal_to_torchjd_on_degenerate_matrices(case, dtype):
    _check_against_torchjd(DEGENERATE[case].to(dtype))


def _nash_residual(grads: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor | None = None) -> float:
    """max_t |α_t (M α)_t − 1| in float64 (over ``rows`` only, if given)."""
    gram = (grads @ grads.T).double()
    weights = weights.double()
    residual = (weights * (gram @ weights) - 1).abs()
    return (residual if rows is None else residual[rows]).max().item()


def _torchjd_nash_weights(grads: torch.Tensor, **options) -> torch.Tensor | None:
    """TorchJD's Nash-MTL weights for ``grads`` (None where its solver raises)."""
    aggregator = TorchJDNashMTL(grads.shape[0], **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return aggregator.weighting(grads)
        except ValueError:
            return None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("task_num", TASK_COUNTS)
def test_nash_mtl_equal_to_torchjd_on_random_matrices(task_num, dtype):
    grads = random_matrix(task_num, dtype)
    for max_norm in (1.0, 0.0):  # the default clips ‖d‖ (= √T at the solution) to 1
        ours = get("nash_mtl")(task_num, max_norm=max_norm)
        direction = ours.aggregate(grads)
        theirs = _torchjd_nash_weights(grads, max_norm=max_norm)
        assert_matches(direction, theirs @ grads, SOLVER)
        assert_matches(ours.last_weights, theirs, SOLVER)
    assert _nash_residual(grads, ours.last_weights) < 1e-5  # G Gᵀ α = 1/α (max_norm=0: α unclipped)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_nash_mtl_on_degenerate_matrices_solves_the_system_at_least_as_well_as_torchjd(case, dtype):
    grads = DEGENERATE[case].to(dtype)
    ours = get("nash_mtl")(3, max_norm=0.0)
    direction = ours.aggregate(grads)
    assert torch.isfinite(direction).all() and torch.isfinite(ours.last_weights).all()
    theirs = _torchjd_nash_weights(grads, max_norm=0.0)
    if case == "opposite":
        # g and −g cancel: no solution. α grows along that pair, d tends to the unit vector of h ⊥ g (in
        # float32, α_g ≈ α_−g ≈ 1e5 leave rounding noise of ~1e-2 in their cancelling sum).
        unit = direction / direction.norm()
        assert abs(unit.double() @ _g / _g.norm()) < (0.1 if dtype == torch.float32 else 0.05)
        assert unit.double() @ _h > 0.5 * _h.norm()
        return
    rows = torch.tensor([0, 2]) if case == "zero_row" else None  # no α solves a zero gradient's equation
    residual = _nash_residual(grads, ours.last_weights, rows)
    assert residual < (1e-4 if dtype == torch.float32 else 1e-8)  # α rounded to float32 on ill-posed M
    if theirs is not None:
        assert residual <= _nash_residual(grads, theirs, rows) + 1e-6
        if case == "collinear":  # ECOS solves this one too: the same direction
            assert_matches(direction, theirs @ grads, SOLVER)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("task_num", TASK_COUNTS)
def test_stateful_methods_equal_torchjd_over_steps(task_num, dtype):
    """CR-MOGM (around UPGrad and IMTL-G) and PCD keep state across steps: four steps, conflicting."""
    steps = []
    for step in range(4):
        grads = random_matrix(task_num, dtype, seed=step) * (1 + step)
        grads[-1] = -grads[0] + 0.3 * grads[-1]  # the primary task conflicts with a secondary one
        steps.append(grads)
    # IMTL-G solves a T − 1 linear system in M's dtype (ours and TorchJD's alike): 1e-4 in float32 here
    closed_form = CLOSED_FORM if dtype == torch.float64 else SOLVER
    pairs = [
        (get("crmogm")(task_num, method="upgrad", alpha=0.7), CRMOGMWeighting(UPGradWeighting(), alpha=0.7)),
        (get("crmogm")(task_num, method="imtl_g"), CRMOGMWeighting(IMTLGWeighting())),
        (get("pcd")(task_num, tau=0.3), None),
    ]
    for (ours, weighting), tolerance in zip(pairs, (SOLVER, closed_form, SOLVER), strict=True):
        theirs = TorchJDPCD(tau=0.3) if weighting is None else GramianWeightedAggregator(weighting)
        for grads in steps:
            assert_matches(ours.aggregate(grads), theirs(grads), tolerance)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(DEGENERATE) + ["opposite_secondaries", "zero_primary"])
def test_pcd_equal_to_torchjd_on_degenerate_matrices(case, dtype):
    """Including constraints that cannot all hold (two opposite secondary gradients: d = g_1) and a zero
    primary gradient (d = 0)."""
    extra = {
        "opposite_secondaries": torch.stack([_g, _h, -_h]),
        "zero_primary": torch.stack([torch.zeros(8, dtype=torch.float64), _g, _h]),
    }
    grads = {**DEGENERATE, **extra}[case].to(dtype)
    ours, theirs = get("pcd")(3), TorchJDPCD()
    for _ in range(2):
        assert_matches(ours.aggregate(grads), theirs(grads), SOLVER)
    if case == "opposite_secondaries":
        torch.testing.assert_close(ours.aggregate(grads), grads[0])


# ----------------------------------------------------------------------------------- defining properties
@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
@pytest.mark.parametrize("task_num", [3, 10, 40])
def test_dual_cone_directions_conflict_with_no_task(name, task_num):
    """g_t · d ≥ 0 for every task, up to the regularisation: the QP's KKT conditions give
    (M v)_t ≥ −reg_eps · trace(M) · v_t, where d = Gᵀv."""
    grads = random_matrix(task_num, torch.float64)
    grads[1] = -grads[0] + 0.1 * grads[1]  # a strong conflict
    method = get(name)(task_num)
    products = grads @ method.aggregate(grads)
    assert products.min() < 0 or name == "upgrad"  # the default regularisation leaves a trace of conflict
    trace = grads.square().sum()
    assert (products >= -method.reg_eps * trace * method.last_weights - 1e-10).all()
    exact = get(name)(task_num, reg_eps=1e-12).aggregate(grads)
    assert (grads @ exact >= -1e-9 * grads.norm(dim=1) * exact.norm()).all()


def test_upgrad_is_the_mean_of_projected_gradients():
    """Eq. 5 of the paper directly: π(g_t) = argmin ‖x − g_t‖² subject to G x ≥ 0 (scipy, in R^D), then the
    mean — against our weights from the Gram-space problem (Proposition 1)."""
    grads = random_matrix(4, torch.float64, dim=6)
    grads[1] = -grads[0] + 0.3 * grads[1]
    matrix = grads.numpy()
    projections = []
    for row in matrix:
        result = minimize(
            lambda x, row=row: ((x - row) ** 2).sum(),
            row,
            jac=lambda x, row=row: 2 * (x - row),
            constraints={"type": "ineq", "fun": lambda x: matrix @ x, "jac": lambda x: matrix},
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        projections.append(torch.from_numpy(result.x))
    expected = torch.stack(projections).mean(dim=0)
    torch.testing.assert_close(
        get("upgrad")(4, reg_eps=1e-12).aggregate(grads), expected, atol=1e-7, rtol=1e-6
    )


@pytest.mark.parametrize("scale_mode", ["min", "median", "rmse"])
def test_aligned_mtl_equalises_the_singular_values(scale_mode):
    grads = random_matrix(5, torch.float64, dim=12)
    balance = balance_transformation(grads @ grads.T, scale_mode)
    singular_values = torch.linalg.svdvals(balance @ grads)
    torch.testing.assert_close(singular_values, singular_values[:1].expand(5))
    eigenvalues = torch.linalg.eigvalsh(grads @ grads.T)
    scale = {"min": eigenvalues[0], "median": eigenvalues[2], "rmse": eigenvalues.mean()}[scale_mode]
    torch.testing.assert_close(singular_values[0], scale.sqrt())
    # rank 2 of 3 (collinear pair): only the two kept directions are aligned, the third gets 0
    grads = torch.stack([_g, 2 * _g, _h])
    singular_values = torch.linalg.svdvals(balance_transformation(grads @ grads.T) @ grads)
    torch.testing.assert_close(singular_values[0], singular_values[1])
    assert singular_values[2] < 1e-6 * singular_values[0]


def test_nash_mtl_direction_gives_every_task_gain_one_over_its_weight():
    grads = random_matrix(6, torch.float64, dim=10)
    method = get("nash_mtl")(6, max_norm=0.0)
    direction = method.aggregate(grads)
    torch.testing.assert_close(grads @ direction, 1 / method.last_weights)  # g_t · d = 1/α_t
    assert direction.norm().item() == pytest.approx(6**0.5)  # ‖d‖² = αᵀMα = T


def test_config_direction_has_equal_cosines_to_every_task():
    grads = random_matrix(4, torch.float64, dim=9)
    direction = get("config")(4).aggregate(grads)
    cosines = grads @ direction / (grads.norm(dim=1) * direction.norm())
    torch.testing.assert_close(cosines, cosines[:1].expand(4))
    unit = direction / direction.norm()
    assert direction.norm().item() == pytest.approx((grads @ unit).sum().item())  # length: Σ projections


# ----------------------------------------------------------------------- hyperparameters, hand-computed
# g1 = (1, 0) and g2 = (−1, 1) conflict (g1·g2 = −1): π(g1) = g1 + ½ g2 = (½, ½), π(g2) = g2 + g1 = (0, 1).
CONFLICT = T([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
TINY_REG = {"reg_eps": 1e-12}


def test_upgrad_hand_computed_and_its_hyperparameters():
    upgrad = lambda **hp: get("upgrad")(2, **{**TINY_REG, **hp}).aggregate(CONFLICT)  # noqa: E731
    torch.testing.assert_close(upgrad(), T([0.25, 0.75], dtype=torch.float64))  # ½ (π(g1) + π(g2))
    torch.testing.assert_close(upgrad(pref_vector=[1.0, 0.0]), T([0.5, 0.5], dtype=torch.float64))  # π(g1)
    torch.testing.assert_close(upgrad(norm_eps=10.0), T([0.0, 0.5], dtype=torch.float64))  # M ← 0: the mean
    # reg_eps: the default 1e-4 and a large 1 move the projection (TorchJD's QuadprogProjector agrees)
    for reg_eps in (1e-4, 1.0):
        got = upgrad(reg_eps=reg_eps)
        assert not torch.allclose(got, upgrad(), atol=1e-6)
        projector = QuadprogProjector(reg_eps=reg_eps)
        torch.testing.assert_close(got, TorchJDUPGrad(projector=projector)(CONFLICT), atol=1e-7, rtol=1e-6)


def test_dualproj_hand_computed_and_its_hyperparameters():
    dualproj = lambda **hp: get("dualproj")(2, **{**TINY_REG, **hp}).aggregate(CONFLICT)  # noqa: E731
    torch.testing.assert_close(
        dualproj(), T([0.0, 0.5], dtype=torch.float64)
    )  # the mean: already in the cone
    torch.testing.assert_close(dualproj(pref_vector=[1.0, 0.0]), T([0.5, 0.5], dtype=torch.float64))  # π(g1)
    # norm_eps above the trace (3): M ← 0, the projection keeps the weights as they are (π = identity)
    torch.testing.assert_close(dualproj(pref_vector=[1.0, 0.0], norm_eps=10.0), CONFLICT[0])
    got = dualproj(pref_vector=[1.0, 0.0], reg_eps=1.0)
    torch.testing.assert_close(
        got,
        TorchJDDualProj(
            pref_vector=T([1.0, 0.0], dtype=torch.float64), projector=QuadprogProjector(reg_eps=1.0)
        )(CONFLICT),
    )
    assert not torch.allclose(got, T([0.5, 0.5], dtype=torch.float64))


def test_aligned_mtl_hand_computed_and_its_hyperparameters():
    # orthogonal g = (1, 0, 0), (0, 2, 0), (0, 0, 3): eigenvalues 1, 4, 9; B = √σ diag(1, ½, ⅓)
    grads = torch.diag(T([1.0, 2.0, 3.0], dtype=torch.float64))
    aligned = lambda **hp: get("aligned_mtl")(3, **hp).aggregate(grads)  # noqa: E731
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(aligned(), ones)  # σ = 1 (min), p = 1
    torch.testing.assert_close(aligned(scale_mode="median"), 2 * ones)  # σ = 4
    torch.testing.assert_close(aligned(scale_mode="rmse"), (14 / 3) ** 0.5 * ones)  # σ = mean = 14/3
    torch.testing.assert_close(aligned(pref_vector=[1 / 3] * 3), ones / 3)  # TorchJD's mean
    torch.testing.assert_close(aligned(pref_vector=[1.0, 0.0, 2.0]), T([1.0, 0.0, 2.0], dtype=torch.float64))
    # an even number of kept eigenvalues (1, 4, 9, 16): the lower median, 4, as torch.median's
    grads = torch.diag(T([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(
        get("aligned_mtl")(4, scale_mode="median").aggregate(grads), 2 * torch.ones(4, dtype=torch.float64)
    )
    # and with a rank-deficient M (4 gradients in R^3, one pair collinear: 2 or 3 kept of 4) against TorchJD
    for grads in (random_matrix(4, torch.float64, dim=3), torch.stack([_g, 3 * _g, _h, _k])):
        for scale_mode in ("median", "rmse"):
            ours = get("aligned_mtl")(4, scale_mode=scale_mode).aggregate(grads)
            theirs = TorchJDAlignedMTL(pref_vector=torch.ones(4, dtype=torch.float64), scale_mode=scale_mode)(
                grads
            )
            assert relative_error(ours, theirs) < CLOSED_FORM, scale_mode


def test_nash_mtl_hand_computed_and_its_hyperparameters():
    # orthogonal (3, 0), (0, 4): α = (1/3, 1/4), d = (1, 1), ‖d‖ = √2
    grads = T([[3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(
        get("nash_mtl")(2, max_norm=0.0).aggregate(grads), T([1.0, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        get("nash_mtl")(2).aggregate(grads), T([1.0, 1.0], dtype=torch.float64) / 2**0.5
    )
    torch.testing.assert_close(
        get("nash_mtl")(2, max_norm=2.0).aggregate(grads), T([1.0, 1.0], dtype=torch.float64)
    )
    # update_weights_every=2: the second step keeps the first step's α; the third solves again
    method, other = get("nash_mtl")(2, update_weights_every=2, max_norm=0.0), 2 * grads
    method.aggregate(grads)
    torch.testing.assert_close(method.aggregate(other), T([2.0, 2.0], dtype=torch.float64))  # old α, new G
    torch.testing.assert_close(method.aggregate(other), T([1.0, 1.0], dtype=torch.float64))  # α = (1/6, 1/8)
    sequence = [random_matrix(4, torch.float64, dim=7) * s for s in (1.0, 3.0, 0.5, 2.0)]
    ours, theirs = get("nash_mtl")(4, update_weights_every=3), TorchJDNashMTL(4, update_weights_every=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for grads in sequence:
            assert_matches(ours.aggregate(grads), theirs(grads), SOLVER)
    # optim_niter: one Newton step is not enough on conflicting gradients, 20 are
    grads = random_matrix(5, torch.float64, dim=8)
    grads[1] = -0.9 * grads[0] + 0.2 * grads[1]
    assert _nash_residual(grads, bargaining_weights(grads @ grads.T, 1)) > 1e-2
    assert _nash_residual(grads, bargaining_weights(grads @ grads.T, 20)) < 1e-8
    one_step = get("nash_mtl")(5, optim_niter=1, max_norm=0.0)
    one_step.aggregate(grads)
    torch.testing.assert_close(one_step.last_weights, bargaining_weights(grads @ grads.T, 1))


def test_config_hand_computed_and_its_pref_vector():
    grads = T([[2.0, 0.0], [0.0, 5.0]], dtype=torch.float64)  # unit rows e1, e2
    torch.testing.assert_close(get("config")(2).aggregate(grads), T([1.0, 1.0], dtype=torch.float64) * 3.5)
    # p = (2, 1): û = (2, 1)/√5, length = (2·2 + 5·1)/√5 → d = 9/5 (2, 1)
    got = get("config")(2, pref_vector=[2.0, 1.0]).aggregate(grads)
    torch.testing.assert_close(got, T([2.0, 1.0], dtype=torch.float64) * 9 / 5)
    torch.testing.assert_close(got, TorchJDConFIG(pref_vector=T([2.0, 1.0], dtype=torch.float64))(grads))


def test_krum_hand_computed_and_its_hyperparameters():
    # three gradients near (1, 0) and an outlier (10, 0); scores with T − f − 2 neighbours
    grads = T([[1.0, 0.0], [1.15, 0.0], [0.88, 0.0], [10.0, 0.0]], dtype=torch.float64)
    krum = lambda **hp: get("krum")(4, **hp).aggregate(grads)  # noqa: E731
    torch.testing.assert_close(krum(), grads[0])  # f = 0, 2 neighbours: scores .27, .42, .39, 26.97
    torch.testing.assert_close(krum(n_selected=2), (grads[0] + grads[2]) / 2)
    torch.testing.assert_close(krum(n_selected=3), grads[:3].mean(dim=0))
    # f = 1, one neighbour: scores .12, .15, .12, 8.85 — g0 and g2 tie, both kept by n_selected=2
    torch.testing.assert_close(krum(n_byzantine=1, n_selected=2), (grads[0] + grads[2]) / 2)
    for options in ({"n_selected": 2}, {"n_byzantine": 1, "n_selected": 3}):
        torch.testing.assert_close(krum(**options), TorchJDKrum(**{"n_byzantine": 0, **options})(grads))


def test_trimmed_mean_hand_computed_and_its_trim_number():
    grads = T([[1.0, 5.0], [2.0, -1.0], [10.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(get("trimmed_mean")(3).aggregate(grads), T([2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(get("trimmed_mean")(3, trim_number=0).aggregate(grads), grads.mean(dim=0))
    method = get("trimmed_mean")(3)
    method.aggregate(grads)
    assert method.last_weights is None  # coordinate-wise: no task weights
    for task_num, trim_number in ((5, 2), (40, 2), (40, 19)):  # more than one value trimmed at each end
        grads = random_matrix(task_num, torch.float64)
        ours = get("trimmed_mean")(task_num, trim_number=trim_number).aggregate(grads)
        assert relative_error(ours, TorchJDTrimmedMean(trim_number)(grads)) < CLOSED_FORM


def test_crmogm_hand_computed_and_its_hyperparameters():
    # IMTL-G inside: orthogonal (1, 0), (0, 2) give λ̂ = (2/3, 1/3); (1, 0), (0, 1) give (½, ½)
    first, second = T([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    method = get("crmogm")(2, method="imtl_g", alpha=0.25)
    method.aggregate(first)
    torch.testing.assert_close(method.last_weights, T([2 / 3, 1 / 3], dtype=torch.float64))  # λ_0 = λ̂_1
    method.aggregate(second)
    expected = 0.25 * T([2 / 3, 1 / 3], dtype=torch.float64) + 0.75 * T([0.5, 0.5], dtype=torch.float64)
    torch.testing.assert_close(method.last_weights, expected)
    default = get("crmogm")(2, method="imtl_g")  # alpha 0.9
    default.aggregate(first)
    default.aggregate(second)
    torch.testing.assert_close(default.last_weights, 0.9 * T([2 / 3, 1 / 3], dtype=torch.float64) + 0.05)
    start = get("crmogm")(2, method="imtl_g", alpha=0.5, initial_weights=[1.0, 0.0])
    start.aggregate(second)
    torch.testing.assert_close(start.last_weights, T([0.75, 0.25], dtype=torch.float64))
    # the wrapped method and its hyperparameters: MGDA-UB (default) on (2, 0), (0, 1) gives w = (1/5, 4/5);
    # with l2 normalisation the unit gradients get ½ each, w = (¼, ½) on the raw ones
    grads = T([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    mgda = get("crmogm")(2)
    mgda.aggregate(grads)
    torch.testing.assert_close(mgda.last_weights, T([0.2, 0.8], dtype=torch.float64))
    normalized = get("crmogm")(2, method_hparams={"normalization": "l2"})
    normalized.aggregate(grads)
    torch.testing.assert_close(normalized.last_weights, T([0.25, 0.5], dtype=torch.float64))


def _pcd_two_tasks(grads: torch.Tensor, squared_norm_average: torch.Tensor, tau: float, eps: float):
    """PCD for T = 2 by hand: one constraint, d̃ = g̃_1 + max(0, (τ‖g̃_2‖² − g̃_2·g̃_1) / ‖g̃_2‖²) g̃_2,
    rescaled to ‖g_1‖; ``squared_norm_average`` is v̂ (already debiased)."""
    scaled = grads / (squared_norm_average + eps).sqrt()[:, None]
    g1, g2 = scaled
    direction = g1 + ((tau * g2 @ g2 - g2 @ g1) / (g2 @ g2)).clamp_min(0) * g2
    return direction * grads[0].norm() / direction.norm()


def test_pcd_hand_computed_and_its_hyperparameters():
    first = CONFLICT
    second = CONFLICT * T([[1.0], [3.0]], dtype=torch.float64)  # task 2's gradient triples
    squared = [first.square().sum(1), second.square().sum(1)]

    def debiased(beta):  # v̂ after two steps
        return (beta * (1 - beta) * squared[0] + (1 - beta) * squared[1]) / (1 - beta**2)

    for hparams in ({}, {"tau": 0.5}, {"tau": [0.5]}, {"beta": 0.0}, {"eps": 10.0}):
        method = get("pcd")(2, **hparams)
        tau = hparams.get("tau", 0.02)
        tau = tau[0] if isinstance(tau, list) else tau
        beta, eps = hparams.get("beta", 0.999), hparams.get("eps", 1e-8)
        torch.testing.assert_close(method.aggregate(first), _pcd_two_tasks(first, squared[0], tau, eps))
        torch.testing.assert_close(method.aggregate(second), _pcd_two_tasks(second, debiased(beta), tau, eps))
    # τ = 0: π(g1) onto {g2·x ≥ 0}, (½, ½), rescaled to ‖g1‖ = 1
    torch.testing.assert_close(
        get("pcd")(2, tau=0.0).aggregate(first), T([1.0, 1.0], dtype=torch.float64) / 2**0.5
    )
    defaults = get("pcd")(2)
    for hparams in ({"tau": 0.5}, {"eps": 10.0}):
        assert not torch.allclose(get("pcd")(2, **hparams).aggregate(first), defaults.aggregate(first))
    defaults.aggregate(first)
    other = get("pcd")(2, beta=0.0)
    other.aggregate(first)
    assert not torch.allclose(other.aggregate(second), defaults.aggregate(second))


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("upgrad", {"pref_vector": [1.0, 2.0]}, "pref_vector must be null or a list of 3"),
        ("dualproj", {"reg_eps": 0.0}, "reg_eps > 0"),
        ("aligned_mtl", {"scale_mode": "max"}, "weighting.grad.hparams.scale_mode"),
        ("nash_mtl", {"update_weights_every": 0}, "update_weights_every >= 1"),
        ("config", {"pref_vector": [1.0, float("nan"), 1.0]}, "finite"),
        ("krum", {"n_byzantine": 1}, "T >= n_byzantine \\+ 3"),
        ("trimmed_mean", {"trim_number": 2}, "weighting.grad.hparams.trim_number"),
        ("crmogm", {"method": "graddrop"}, "weighting.grad.hparams.method must be a method whose weights"),
        ("crmogm", {"alpha": 1.5}, "weighting.grad.hparams.alpha"),
        ("crmogm", {"initial_weights": [1.0]}, "weighting.grad.hparams.initial_weights"),
        ("pcd", {"tau": [0.1, 0.2, 0.3]}, "a list of 2"),
        ("pcd", {"beta": 1.0}, "0 <= beta < 1"),
    ],
)
def test_bad_hyperparameters_name_the_key(name, hparams, message):
    with pytest.raises(ValueError, match=message):
        get(name)(3, **hparams)


# ------------------------------------------------------------------------------------------- the solvers
def test_nonnegative_qp_on_a_hand_computed_problem():
    # min ½ xᵀ diag(1, 2) x + (−1, 2)ᵀ x, x ≥ 0: x1 = 1 (free), x2 = 0 (bound, gradient 2 > 0)
    hessian = torch.diag(T([1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(
        nonnegative_qp(hessian, T([[-1.0, 2.0]], dtype=torch.float64)), T([[1.0, 0.0]], dtype=torch.float64)
    )


@pytest.mark.parametrize("seed", range(3))
def test_dual_cone_projection_equals_quadprog_on_ill_conditioned_grams(seed):
    """Gradients of norms spread over four orders of magnitude, some nearly opposite, T = 40 > D."""
    generator = torch.Generator().manual_seed(seed)
    grads = torch.randn(40, 24, generator=generator, dtype=torch.float64)
    grads = grads * torch.exp(2 * torch.randn(40, 1, generator=generator, dtype=torch.float64))
    grads[1:10] = -grads[:1] * torch.rand(9, 1, generator=generator, dtype=torch.float64) + 0.05 * grads[1:10]
    for name, theirs in (("upgrad", TorchJDUPGrad()), ("dualproj", TorchJDDualProj())):
        assert relative_error(get(name)(40).aggregate(grads), theirs(grads)) < 1e-6, name

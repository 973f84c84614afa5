"""Property battery for every gradient method in the registry, in the spirit of TorchJD's aggregator tests
(tests/unit/aggregation: scaled, zero, rank-deficient inputs; permutation invariance).

On matrices that training does produce — gradients scaled by 1e-8 or 1e6, all zero (a task whose loss is
flat), rank 1 (every task gradient on one line), rank-deficient (more tasks than independent directions,
or fewer coordinates than tasks) and duplicated rows (two identical tasks) — every method returns a finite
direction of the right shape, the combination of the rows it claims (``last_weights``), zero for the zero
matrix, and, scaling G by s, the direction scaled by s. Methods whose direction is a symmetric function of
the tasks give the same direction when the tasks are permuted.

Parametrized over ``registry.GRAD_METHODS``: a method registered later is covered automatically (its
constructor defaults must be valid on a 3-feature gradient; RotoGrad gets ``rotation_size=1``).
"""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import IMTLG

from rw_mtl.weighting.registry import GRAD_METHODS

#: methods whose randomness is drawn per task (a random order of the tasks, random task weights): the same
#: seed on permuted tasks gives another draw, so permutation invariance holds only in distribution
PER_TASK_RANDOMNESS = {"rgw", "pcgrad", "gradvac"}
#: constructor arguments a method needs for these small matrices
ARGUMENTS = {"rotograd": {"rotation_size": 1}}
#: methods defined only from a number of tasks on: (minimum T, why)
MINIMUM_TASKS = {
    "krum": (3, "Krum scores each gradient by its T − f − 2 ≥ 1 nearest neighbours"),
    "trimmed_mean": (3, "trimming trim_number = 1 gradient from each end leaves none of 2"),
}
#: methods whose direction is not homogeneous of degree 1 in G, by their definition or their fixed steps
NOT_SCALE_EQUIVARIANT = {
    "nash_mtl": "‖d‖² = T at any scale of G (the bargaining solution G Gᵀ α = 1/α)",
    "fairgrad": "(G Gᵀ) w = w^(−1/α): w scales as (s²)^(−α/(1+α)), so d is not linear in G",
    "moco": "the tracked gradients Y and λ move by fixed steps β, γ from their zero start",
    "modo": "λ moves by a fixed step γ along the cross-batch products",
    "sdmgrad": "w moves by projected SGD at a fixed learning rate",
    "db_mtl": "an EMA of log-loss gradients from a zero start, rescaled to the largest norm",
    "upgrad": "TorchJD's absolute norm_eps = 1e-4 on trace(G Gᵀ): at 1e-8 M counts as 0, no projection",
    "dualproj": "TorchJD's absolute norm_eps = 1e-4 on trace(G Gᵀ): at 1e-8 M counts as 0, no projection",
}
#: methods with several optimal directions on rank-deficient matrices, whose solver picks one by task order
NOT_UNIQUE_ON_RANK_DEFICIENT = {"nash_mtl", "pcd", "fairgrad"}
SEED = 0


def _random(task_num: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(task_num, dim, generator=torch.Generator().manual_seed(seed))


def _low_rank(task_num: int, dim: int, rank: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(task_num, rank, generator=generator) @ torch.randn(rank, dim, generator=generator)


def _duplicated(task_num: int, dim: int, seed: int) -> torch.Tensor:
    matrix = _random(task_num, dim, seed)
    matrix[-1] = matrix[0]
    return matrix


MATRICES = {
    "typical-2x5": _random(2, 5, 1),
    "typical-5x7": _random(5, 7, 2),
    "scaled-1e-8": 1e-8 * _random(3, 6, 3),
    "scaled-1e6": 1e6 * _random(3, 6, 4),
    "zero-3x4": torch.zeros(3, 4),
    "zero-2x1": torch.zeros(2, 1),
    "rank1-3x4": _low_rank(3, 4, 1, 5),
    "rank1-4x4-same-sign": _low_rank(4, 4, 1, 6).abs() * torch.tensor([[1.0], [1.0], [1.0], [1.0]]),
    "rank2-5x6": _low_rank(5, 6, 2, 7),
    "wide-5x3": _random(5, 3, 8),  # D < T: rank 3 for 5 tasks
    "duplicate-rows-3x5": _duplicated(3, 5, 9),
    "duplicate-rows-4x2": _duplicated(4, 2, 10),
}
METHODS = sorted(GRAD_METHODS)


def assert_same_direction(got: torch.Tensor, expected: torch.Tensor, grads: torch.Tensor) -> None:
    """Equal up to float32 rounding, measured against the gradients' size (a direction near 0 — the
    min-norm point when 0 is in the hull — is compared to 0 at that size, not to its own)."""
    scale = grads.abs().max().clamp_min(torch.finfo(grads.dtype).tiny)
    torch.testing.assert_close(got / scale, expected / scale, atol=2e-5, rtol=1e-4)


def _losses(task_num: int) -> torch.Tensor:
    """The per-task losses handed with the gradients (MGDA-UB, MoCo, DB-MTL, … read them)."""
    return torch.linspace(0.5, 2.0, task_num)


def _direction(
    name: str, grads: torch.Tensor, seed: int = SEED, losses: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fresh method's direction for ``grads`` and ``losses`` (default ``_losses``; and its
    last_weights), with the global RNG at ``seed``."""
    task_num = grads.shape[0]
    method = GRAD_METHODS[name](task_num, **ARGUMENTS.get(name, {}))
    losses = _losses(task_num) if losses is None else losses
    torch.manual_seed(seed)
    direction = method.aggregate(grads, losses)
    return direction, method.last_weights


def _skip_if_too_few_tasks(name: str, grads: torch.Tensor) -> None:
    minimum, why = MINIMUM_TASKS.get(name, (1, ""))
    if grads.shape[0] < minimum:
        pytest.skip(f"{name} needs {minimum} tasks: {why}")


@pytest.mark.parametrize("matrix", sorted(MATRICES))
@pytest.mark.parametrize("name", METHODS)
def test_direction_is_finite_and_the_claimed_combination(name, matrix):
    grads = MATRICES[matrix]
    _skip_if_too_few_tasks(name, grads)
    direction, weights = _direction(name, grads)
    assert direction.shape == (grads.shape[1],) and direction.dtype == grads.dtype
    assert torch.isfinite(direction).all(), direction
    if weights is not None:
        assert torch.isfinite(weights).all(), weights
        assert_same_direction(weights @ grads, direction, grads)
    if matrix.startswith("zero"):
        assert torch.equal(direction, torch.zeros_like(direction))


@pytest.mark.parametrize("matrix", ["typical-5x7", "rank2-5x6", "duplicate-rows-3x5", "wide-5x3"])
@pytest.mark.parametrize("scale", [1e-8, 1e6])
@pytest.mark.parametrize("name", METHODS)
def test_direction_scales_with_the_gradients(name, scale, matrix):
    if name in NOT_SCALE_EQUIVARIANT:
        pytest.skip(f"{name}: {NOT_SCALE_EQUIVARIANT[name]}")
    grads = MATRICES[matrix]
    direction, _ = _direction(name, grads)
    scaled, _ = _direction(name, scale * grads)
    assert_same_direction(scaled / scale, direction, grads)


@pytest.mark.parametrize("matrix", ["typical-5x7", "rank2-5x6", "duplicate-rows-3x5", "wide-5x3"])
@pytest.mark.parametrize("name", [name for name in METHODS if name not in PER_TASK_RANDOMNESS])
def test_direction_ignores_the_order_of_the_tasks(name, matrix):
    if name in NOT_UNIQUE_ON_RANK_DEFICIENT and matrix != "typical-5x7":
        pytest.skip(f"{name}: several optimal directions on {matrix}; the solver's pick follows task order")
    grads = MATRICES[matrix]
    _skip_if_too_few_tasks(name, grads)
    permutation = torch.randperm(grads.shape[0], generator=torch.Generator().manual_seed(1))
    assert not torch.equal(permutation, torch.arange(grads.shape[0]))
    direction, _ = _direction(name, grads)
    # a task is its gradient and its loss: both are permuted (MoCo scales g_t by ℓ_t, DB-MTL divides it)
    permuted, _ = _direction(name, grads[permutation], losses=_losses(grads.shape[0])[permutation])
    assert_same_direction(permuted, direction, grads)


@pytest.mark.parametrize("name", sorted(PER_TASK_RANDOMNESS))
def test_per_task_random_methods_are_permutation_invariant_in_distribution(name):
    """Over many seeds the mean direction is the same for permuted tasks (3 standard errors)."""
    grads = MATRICES["typical-5x7"]
    permutation = torch.tensor([3, 0, 4, 1, 2])
    runs = torch.stack(
        [
            torch.stack(
                [
                    _direction(name, grads, seed)[0],
                    _direction(name, grads[permutation], seed, _losses(5)[permutation])[0],
                ]
            )
            for seed in range(400)
        ]
    )  # [seeds, 2, D]
    difference = runs[:, 0] - runs[:, 1]
    error = difference.std(dim=0) / 400**0.5
    assert (difference.mean(dim=0).abs() <= 3 * error + 1e-6).all()


# ------------------------------------------------------------------------ IMTL-G on degenerate matrices
@pytest.mark.parametrize("matrix", sorted(MATRICES))
def test_imtl_g_is_torchjds_generalised_imtl_g_on_every_matrix(matrix):
    """v = M⁺ n, α = v / 1ᵀv (Quinton & Rey, 2024): equal to TorchJD's IMTLG, which supports linearly
    dependent rows, where Eq. 9's inverse does not exist (it raised LinAlgError on 7 of 35 such matrices)."""
    grads = MATRICES[matrix]
    direction, _ = _direction("imtl_g", grads)
    assert_same_direction(direction, IMTLG()(grads), grads)


def test_imtl_g_degenerate_cases_hand_computed():
    """A zero gradient (a task whose λ_t the Bernoulli draw zeroed) gets weight 0 and the others are
    balanced among themselves; a cancelling pair g, −g has no impartial direction but 0."""
    grads = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    method = GRAD_METHODS["imtl_g"](3)
    torch.testing.assert_close(method.aggregate(grads), torch.tensor([2 / 3, 2 / 3]))  # as for 2 tasks
    torch.testing.assert_close(method.last_weights, torch.tensor([2 / 3, 0.0, 1 / 3]))
    cancelling = torch.tensor([[1.0, -2.0], [-1.0, 2.0]])
    torch.testing.assert_close(GRAD_METHODS["imtl_g"](2).aggregate(cancelling), torch.zeros(2))


# ------------------------------------------------------------------------- Nash-MTL on a zero Gram matrix
def test_nash_mtl_keeps_its_previous_weights_when_every_gradient_is_zero():
    """M = 0 has no bargaining solution (α ⊙ Mα = 0 ≠ 1) and d = 0 for every α: the method keeps its last α
    (1 before any solve), so d is exactly 0 and the weights finite — the solve used to end at α ∝ 1/√‖M‖_F
    with ‖M‖_F = 0, infinite in float32, and d = ∞ · 0 = NaN."""
    method = GRAD_METHODS["nash_mtl"](2, max_norm=0.0)
    zeros = torch.zeros(2, 3)
    assert torch.equal(method.aggregate(zeros), torch.zeros(3))
    assert torch.equal(method.last_weights, torch.ones(2))
    method.aggregate(torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]))  # orthogonal: α = (1/3, 1/4)
    torch.testing.assert_close(method.last_weights, torch.tensor([1 / 3, 1 / 4]))
    assert torch.equal(method.aggregate(zeros), torch.zeros(3))
    torch.testing.assert_close(method.last_weights, torch.tensor([1 / 3, 1 / 4]))  # the previous α, kept


# ------------------------------------------------------ why UPGrad and DualProj are not scale-equivariant
@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_dual_cone_methods_stop_projecting_below_torchjds_absolute_norm_eps(name):
    """TorchJD's ``normalize(M, norm_eps)`` replaces M by 0 when trace M = ‖G‖_F² < norm_eps = 1e-4, an
    absolute threshold: then every constraint holds and d is the plain mean (Gᵀp, p = 1/T). Just above it
    the conflicting pair g_1 = (1, 0), g_2 = (−1, 0.1) is projected (d has no conflict with g_2), just
    below it it is not. Ours equals TorchJD on both sides; ``norm_eps=0`` projects at every scale."""
    from torchjd.aggregation import DualProj, UPGrad

    torchjd = {"upgrad": UPGrad, "dualproj": DualProj}[name]
    pair = torch.tensor([[1.0, 0.0], [-1.0, 0.1]], dtype=torch.float64)  # ‖G‖_F² = 2.01
    above, below = pair * (1.01e-4 / 2.01) ** 0.5, pair * (0.99e-4 / 2.01) ** 0.5
    for grads in (above, below):
        assert_same_direction(GRAD_METHODS[name](2).aggregate(grads), torchjd()(grads), grads)
    assert (above @ GRAD_METHODS[name](2).aggregate(above)).min() >= 0  # projected: no conflict
    torch.testing.assert_close(GRAD_METHODS[name](2).aggregate(below), below.mean(dim=0))  # not projected
    exact = GRAD_METHODS[name](2, norm_eps=0.0)
    assert (below @ exact.aggregate(below)).min() >= 0


# --------------------------------------------------------------- PCD on float32 rank-deficient matrices
@pytest.mark.parametrize("matrix", ["wide-5x3", "rank2-5x6"])
def test_pcd_keeps_dependent_gradients_dependent_in_float32(matrix):
    """Five gradients of rank 3 (or 2) in float32: M's rounding (~1e-7 relative) gives it eigenvalues
    where 0 is exact. With a ridge below that, the infeasible constraints looked feasible (multipliers of
    ~1e5, d̃ ≈ 0: d = 0); TorchJD, whose dependence tolerance is float32's precision, finds them infeasible
    and returns g_1. So does PCD now, at every scale of the battery."""
    from torchjd.aggregation import PCD

    grads = MATRICES[matrix]
    for scale in (1.0, 1e6):
        direction, _ = _direction("pcd", scale * grads)
        assert_same_direction(direction, PCD()(scale * grads), scale * grads)
        assert_same_direction(direction, scale * grads[0], scale * grads)

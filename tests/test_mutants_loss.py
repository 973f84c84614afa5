"""Fast checks of the loss methods and the weighting's shared code written against surviving mutants of
``make mutate`` (docs/testing.md, "Mutation: loss methods, shared code and report"): the cases the
existing tests did not reach (FORUM where its ε is of the order of the gradients, float32 under the
methods' own autocast guard, the graph a meta step must leave to the training step) and the defaults of
the original papers' code."""

# ruff: noqa: E501 (the expected messages are whole sentences of the code)
from __future__ import annotations

import itertools

import pytest
import torch

import tests.test_loss_methods as loss_tests
from rw_mtl.choices import GRAD_MODES
from rw_mtl.weighting import get
from rw_mtl.weighting.base import GradWeighting, backward_into_own_parameters
from rw_mtl.weighting.interface import Combination, TaskGradients
from rw_mtl.weighting.loss.forum import subproblem_weights
from rw_mtl.weighting.loss.virtual_params import flat_gradient, moved
from rw_mtl.weighting.preference import preference_vector
from rw_mtl.weighting.random_weights import CODE_VARIANTS, DISTRIBUTIONS, sample_simplex_weights
from rw_mtl.weighting.registry import GRAD_METHODS, LOSS_METHODS, resolve
from rw_mtl.weighting.simplex import min_norm_weights
from tests.test_loss_methods import _forum_reference, _forum_update, _meta, _regression_problem

T = torch.tensor


def _scaled_problem(train_scale: float, validation_scale: float, dtype=torch.float64):
    """The two-task regression of test_loss_methods.py with its training and validation losses scaled."""
    theta, task_losses, x_train, x_val = _regression_problem(dtype)

    def scaled(params, x):
        return (train_scale if x is x_train else validation_scale) * task_losses(params, x)

    return theta, scaled, x_train, x_val


# ------------------------------------------------------------------------------------------------ FORUM
def _recorded_forum_reference(problem, alpha, monkeypatch):
    """The official step (test_loss_methods._forum_reference) and the π it hands its QP solver."""
    seen = {}
    solve = loss_tests._scipy_subproblem

    def recording(gram, pi, c):
        seen["pi"] = pi.detach().clone()
        return solve(gram, pi, c)

    monkeypatch.setattr(loss_tests, "_scipy_subproblem", recording)
    update, average = _forum_reference(problem, alpha, torch.zeros(2, dtype=torch.float64), 0)
    return update, average, seen["pi"]


@pytest.mark.parametrize(
    ("train_scale", "validation_scale"),
    [(1.0, 1.0), (1e-5, 1e-8), (1.0, 3e-9)],
    ids=["unit", "constraint_gradient_of_order_eps", "validation_gradients_of_order_eps"],
)
def test_forum_keeps_the_official_eps_where_the_gradients_are_of_its_order(
    train_scale, validation_scale, monkeypatch
):
    """ε = 1e-8 is added to ‖g_q‖² (in π and in the subproblem's φ‖g_q‖²) and to ‖∇ℓ_t^val‖: with the
    training losses scaled by 1e-5 ‖g_q‖² is ~1e-8, with the validation losses scaled by 3e-9 ‖∇ℓ^val‖ is
    ~1e-8, and π, λ̄ and α's step still equal the official code's (subtracting ε flips π's sign there)."""
    problem = _scaled_problem(train_scale, validation_scale)
    method = get("forum")(2).double()
    with torch.no_grad():
        method.logits.copy_(T([0.4, -0.3]))
    expected, average, pi = _recorded_forum_reference(problem, method.logits, monkeypatch)
    update = _forum_update(method, problem)
    subproblem = method.last_subproblem
    torch.testing.assert_close(subproblem["pi"], pi, rtol=1e-9, atol=0)
    torch.testing.assert_close(method.weight_average, average, atol=1e-6, rtol=0)
    torch.testing.assert_close(subproblem["weights"], method.weight_average)  # epoch 0: λ̄ = w
    torch.testing.assert_close(subproblem["nu"], (average @ pi).clamp_min(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(update, expected, atol=1e-9, rtol=1e-5)


@pytest.mark.parametrize("name", ["forum", "moml", "auto_lambda"])
def test_float32_meta_steps_keep_float32_precision(name):
    """The meta step's algebra runs with autocast disabled: a float32 model gives α's float64 step to
    float32 precision (CPU autocast would round the products to bfloat16, 3 significant digits). MOML's
    two α-rows are parallel for two tasks (its update is 0): its hypergradient is compared."""
    updates = []
    for dtype in (torch.float32, torch.float64):
        theta, task_losses, x_train, x_val = _regression_problem(dtype)
        method = get(name)(2).to(dtype)
        own = next(method.parameters())
        with torch.no_grad():
            own.copy_(T([0.4, -0.3]) if name != "auto_lambda" else T([0.7, 1.3]))
        surrogate = method.meta_step(_meta(theta, task_losses, x_train, x_val, 1e-2))
        update = torch.autograd.grad(surrogate, own)[0]
        updates.append(method.last_hypergradient if name == "moml" else update)
    assert updates[1].abs().max() > 1e-3
    torch.testing.assert_close(updates[0].double(), updates[1], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", ["forum", "moml", "auto_lambda"])
def test_meta_steps_leave_the_training_steps_graph(name):
    """The training step back-propagates its losses after the meta step (rw_mtl/training/step.py): the
    meta step must retain their graph, and the model's gradient is that of the weighted losses."""
    theta, task_losses, x_train, x_val = _regression_problem()
    method = get(name)(2).double()
    meta = _meta(theta, task_losses, x_train, x_val, 1e-2)
    method.meta_step(meta)
    weights = method.weights(meta.losses)
    (weights * meta.losses).sum().backward()
    expected = torch.autograd.grad((weights * task_losses(theta, x_train)).sum(), list(theta.values()))
    for parameter, gradient in zip(theta.values(), expected, strict=True):
        torch.testing.assert_close(parameter.grad, gradient)


def test_forum_alpha_trains_in_its_own_group_at_the_official_rate():
    """α: Adam at 1e-3 without weight decay (``--outer_lr``/the FORUM README; MTLModule builds its group)."""
    method = get("forum")(2)
    assert (method.learning_rate, method.weight_decay) == (1e-3, 0.0)
    assert get("forum")(2, learning_rate=0.01).learning_rate == 0.01


def _subproblem(task_num, seed, c_factor=0.1, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    upper = torch.randn(task_num, 30, generator=generator, dtype=torch.float64)
    upper = upper / upper.norm(dim=1, keepdim=True)
    constraint = torch.randn(30 + task_num, generator=generator, dtype=torch.float64)
    rows = torch.cat(
        [torch.cat([torch.zeros(task_num, task_num, dtype=torch.float64), upper], 1), constraint[None]]
    )
    gram = rows @ rows.T
    pi = 0.1 - gram[:-1, -1] / gram[-1, -1]
    return gram * scale, pi, c_factor * gram[-1, -1] * scale


@pytest.mark.parametrize("task_num", [2, 3, 5])
def test_forum_subproblem_with_an_interior_mu(task_num):
    """With c = 5 M_TT the unconstrained μ*(w) = (c − 2 M_T,:T w)/(2 M_TT) lies above wᵀπ, so the
    closed-form μ is the free one (FORUM's own c = φ M_TT never gets there): still scipy's optimum."""
    gram, pi, c = _subproblem(task_num, seed=task_num, c_factor=5.0)
    weights = subproblem_weights(gram, pi, c)
    reference = loss_tests._scipy_subproblem(gram, pi, c)
    mu_free = (c - 2 * gram[:-1, -1] @ reference) / (2 * gram[-1, -1])
    assert mu_free > max(0.0, (reference @ pi).item()) + 0.5
    torch.testing.assert_close(weights, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scale", [1e-6, 1e4])
def test_forum_subproblem_is_invariant_to_the_problems_scale(scale):
    """Scaling M and c by s > 0 scales the objective: the minimiser, and FISTA's iterates with step
    1/L, are unchanged."""
    gram, pi, c = _subproblem(4, seed=7)
    torch.testing.assert_close(
        subproblem_weights(gram * scale, pi, c * scale), subproblem_weights(gram, pi, c), atol=1e-9, rtol=0
    )


# ---------------------------------------------------------------------------------------------- Auto-λ
def _quartic_problem(validation_scale: float):
    """Two quartic regression tasks on one linear model: Auto-λ's central difference is not exact."""
    generator = torch.Generator().manual_seed(1)
    x_train = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    x_val = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    targets = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    theta = {
        "w": torch.randn(3, generator=generator, dtype=torch.float64).requires_grad_(True),
        "b": torch.randn(1, generator=generator, dtype=torch.float64).requires_grad_(True),
    }

    def task_losses(params, x):
        out = x @ params["w"] + params["b"]
        losses = torch.stack([((out - x @ targets[t]) ** 4).mean() for t in range(2)])
        return losses * (validation_scale if x is x_val else 1.0)

    return theta, task_losses, x_train, x_val


@pytest.mark.parametrize(("validation_scale", "norm"), [(1.0, 3.582), (0.1, 0.3582)])
def test_auto_lambda_central_difference_steps_by_the_official_eps(validation_scale, norm):
    """The official finite difference: ε = 0.01 / ‖d‖ along d = ∇θ' L^val (not 0.01 ‖d‖, nor 0.01 where
    ‖d‖ < 1). On quartic losses the difference is not exact, so ε shows (by 1e-4 relative)."""
    problem = _quartic_problem(validation_scale)
    theta, task_losses, x_train, x_val = problem
    method = get("auto_lambda")(2).double()
    weights, lr = method.meta_weights.detach().clone(), 1e-2
    method.meta_step(_meta(theta, task_losses, x_train, x_val, lr))
    params = list(theta.values())
    step = torch.autograd.grad((weights * task_losses(theta, x_train)).sum(), params)
    virtual = {
        n: (p - lr * g).detach().requires_grad_(True) for (n, p), g in zip(theta.items(), step, strict=True)
    }
    direction = torch.autograd.grad(task_losses(virtual, x_val).sum(), list(virtual.values()))
    assert torch.cat([d.reshape(-1) for d in direction]).norm().item() == pytest.approx(norm, rel=1e-3)
    epsilon = 0.01 / torch.cat([d.reshape(-1) for d in direction]).norm()
    with torch.no_grad():
        ahead = task_losses(
            {n: p + epsilon * d for (n, p), d in zip(theta.items(), direction, strict=True)}, x_train
        )
        behind = task_losses(
            {n: p - epsilon * d for (n, p), d in zip(theta.items(), direction, strict=True)}, x_train
        )
    torch.testing.assert_close(
        method.last_hypergradient, -lr * (ahead - behind) / (2 * epsilon), rtol=1e-9, atol=0
    )


# ------------------------------------------------------------------------------------------------- FAMO
def test_famo_default_gamma_is_the_official_001():
    """γ = 0.01 (the official ``famo.py``): the default's logits after three updates are γ = 0.01's, and
    LibMTL's γ = 1e-3 gives others."""
    default = loss_tests._famo_logits(0.025, 0.01)[0]
    built = get("famo")(3).double()
    sequence = [losses.double() for losses in loss_tests.FAMO_LOSS_SEQUENCE]
    for before, after in zip(sequence, sequence[1:], strict=False):
        built.after_step(loss_tests._famo_context(before, after))
    assert (built.learning_rate, built.gamma) == (0.025, 0.01)
    torch.testing.assert_close(built.logits, default, atol=0, rtol=0)
    assert not torch.allclose(loss_tests._famo_logits(0.025, 1e-3)[0], default, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------- virtual_params
def test_flat_gradient_gives_zeros_to_parameters_the_loss_does_not_reach():
    theta = {"used": T([1.0, 2.0], requires_grad=True), "unused": torch.ones(2, 2, requires_grad=True)}
    meta = _meta(theta, lambda p, x: (p["used"] ** 2).sum()[None], None, None, 0.1)
    flat = flat_gradient((theta["used"] ** 2).sum(), theta, meta)
    torch.testing.assert_close(flat, T([2.0, 4.0, 0.0, 0.0, 0.0, 0.0]))


def test_moved_adds_the_scaled_chunks_in_order_as_new_leaves():
    theta = {"a": T([1.0, 2.0], requires_grad=True), "b": T([[3.0]], requires_grad=True)}
    direction = T([1.0, -1.0, 2.0])
    frozen, trainable = moved(theta, direction, 0.5), moved(theta, direction, 0.5, trainable=True)
    for result in (frozen, trainable):
        torch.testing.assert_close(result["a"], T([1.5, 1.5]))
        torch.testing.assert_close(result["b"], T([[4.0]]))
        assert all(t.is_leaf for t in result.values())
    assert not any(t.requires_grad for t in frozen.values())
    assert all(t.requires_grad for t in trainable.values())


# ------------------------------------------------------------------------- modes (the config check's rule)
SUPPORTED_MODES = {  # every other gradient method runs in all three
    "db_mtl": ("param",),
    "graddrop": ("param", "rep"),
    "moco": ("param",),
    "rotograd": ("rep",),
    "trimmed_mean": ("param", "rep"),
}


@pytest.mark.parametrize("name", sorted(GRAD_METHODS))
def test_each_gradient_method_accepts_exactly_its_modes(name):
    """The rule test_reliability.py checks through the config, on the classes directly (fast)."""
    method = GRAD_METHODS[name]
    allowed = SUPPORTED_MODES.get(name, GRAD_MODES)
    assert method.supported_modes() == allowed
    for mode in GRAD_MODES:
        if mode in allowed:
            method.check_mode(mode, name)
            method.check_mode(mode)
            continue
        with pytest.raises(ValueError) as error:
            method.check_mode(mode, name)
        text = str(error.value)
        assert text.startswith(
            f"weighting/grad={name} is defined for weighting.grad.mode in {list(allowed)} only"
        )
        assert text.endswith(f", got `{mode}`; set weighting.grad.mode={' or '.join(allowed)}")
        with pytest.raises(ValueError, match=f"^{method.__name__} is defined for"):
            method.check_mode(mode)


@pytest.mark.parametrize(
    ("name", "mode", "why"),
    [
        ("rotograd", "param", " (it transforms the shared representation z)"),
        ("rotograd", "last_layer", " (it transforms the shared representation z)"),
        (
            "graddrop",
            "last_layer",
            " (it gives per-task results, not task weights, which the last shared layer's gradients alone cannot give)",
        ),
        (
            "trimmed_mean",
            "last_layer",
            " (it gives direction results, not task weights, which the last shared layer's gradients alone cannot give)",
        ),
        ("moco", "rep", ""),
        (
            "db_mtl",
            "last_layer",
            " (it gives direction results, not task weights, which the last shared layer's gradients alone cannot give)",
        ),
    ],
)
def test_a_refused_mode_says_why(name, mode, why):
    allowed = GRAD_METHODS[name].supported_modes()
    message = (
        f"weighting/grad={name} is defined for weighting.grad.mode in {list(allowed)} only{why}, got `{mode}`; "
        f"set weighting.grad.mode={' or '.join(allowed)}"
    )
    with pytest.raises(ValueError) as error:
        GRAD_METHODS[name].check_mode(mode, name)
    assert str(error.value) == message


@pytest.mark.parametrize("name", sorted(GRAD_METHODS))
def test_multi_input_data_refuses_rep_mode_only_for_methods_giving_one_direction(name):
    """Office-31's per-task z_t: weights and per-task results split over them, one direction does not."""
    method = GRAD_METHODS[name]
    for mode in method.supported_modes():
        method.check_mode(mode, name, multi_input=False)
        if mode == "rep" and method.produces == "direction":
            with pytest.raises(ValueError) as error:
                method.check_mode(mode, name, multi_input=True)
            assert str(error.value) == (
                f"weighting/grad={name} gives one direction, which cannot be split over the per-task "
                "representations of a multi-input dataset; set weighting.grad.mode=param for this dataset"
            )
        else:
            method.check_mode(mode, name, multi_input=True)
    assert GRAD_METHODS["trimmed_mean"].produces == "direction"  # the case above is reached


# ------------------------------------------------------------------------------- TaskGradients.inner
def test_inner_products_of_two_batches():
    first, second = T([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]), T([[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    product = TaskGradients(first).inner(TaskGradients(second))
    torch.testing.assert_close(product, T([[1.0, 4.0], [1.0, 1.0]]))


def test_inner_products_of_ranks_local_columns_are_summed_not_gathered():
    """Data-parallel rep mode: each rank multiplies its own columns (``local``) and the T×T products are
    summed over the ranks (here a fake sum that doubles); the gathered matrices are never read."""
    local_a, local_b = T([[1.0, 2.0], [0.0, 1.0]]), T([[3.0, 1.0], [1.0, 1.0]])
    unreadable = lambda: pytest.fail("the gathered G was read")  # noqa: E731
    a = TaskGradients(matrix_fn=unreadable, local=local_a, sum_over_ranks=lambda t: 2 * t)
    b = TaskGradients(matrix_fn=unreadable, local=local_b, sum_over_ranks=lambda t: 2 * t)
    torch.testing.assert_close(a.inner(b), 2 * local_a @ local_b.T)
    plain = TaskGradients(T([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
    with_local = TaskGradients(
        T([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]]), local=local_a, sum_over_ranks=lambda t: 2 * t
    )
    torch.testing.assert_close(plain.inner(with_local), T([[1.0, 2.0], [1.0, 0.0]]))  # one side local: G Hᵀ


def test_inner_products_need_equally_many_columns_saying_what_to_set():
    message = (
        "inner products of two batches' gradients need equally many columns, got 4 and 6: in rep mode give "
        "the training batches equal sizes (drop_last, dataset.datamodule.batch_size) or set "
        "weighting.grad.mode=param"
    )
    with pytest.raises(ValueError) as error:
        TaskGradients(torch.ones(2, 4)).inner(TaskGradients(torch.ones(2, 6)))
    assert str(error.value) == message


# ---------------------------------------------------------------------------------- preference vectors
def test_preference_vector_default_and_given():
    default = preference_vector("UPGrad", 3, None, 1 / 3)
    assert default.dtype == torch.float64
    torch.testing.assert_close(default, torch.full((3,), 1 / 3, dtype=torch.float64))
    given = preference_vector("UPGrad", 3, [1, 0.5, 2], 1 / 3)
    assert given.dtype == torch.float64
    torch.testing.assert_close(given, T([1.0, 0.5, 2.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "value",
    [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, float("nan"), 1.0], [1.0, float("inf"), 1.0], [[1.0, 1.0, 1.0]]],
)
def test_preference_vector_refuses_a_wrong_list_naming_the_key(value):
    message = (
        "ConFIG: weighting.grad.hparams.pref_vector must be null or a list of 3 finite numbers (one per "
        f"task), got {list(value)!r}"
    )
    with pytest.raises(ValueError) as error:
        preference_vector("ConFIG", 3, value, 1.0)
    assert str(error.value) == message


# ----------------------------------------------------------------------------------- the base contracts
class _WrongCount(GradWeighting):
    """A method whose combination is built for one task too many."""

    def combine(self, grads, losses):
        return Combination(weights=torch.ones(self.task_num + 1))


def test_a_combination_for_the_wrong_task_count_is_named():
    with pytest.raises(ValueError) as error:
        _WrongCount(2).aggregate(torch.ones(2, 3))
    assert str(error.value) == "_WrongCount was built for 2 tasks but got a combination for 3 tasks"


@pytest.mark.parametrize(
    ("grads", "message"),
    [
        (torch.ones(3), "grads must be a float [T, D] matrix, got (3,) torch.float32"),
        (torch.ones(2, 3, dtype=torch.long), "grads must be a float [T, D] matrix, got (2, 3) torch.int64"),
        (torch.ones(3, 4), "PCGrad was built for 2 tasks but got a gradient matrix for 3 tasks"),
    ],
)
def test_aggregate_refuses_what_is_not_a_task_gradient_matrix(grads, message):
    with pytest.raises(ValueError) as error:
        get("pcgrad")(2).aggregate(grads)
    assert str(error.value) == message


def test_task_gradients_need_exactly_one_source():
    for kwargs in ({}, {"matrix": torch.ones(2, 2), "matrix_fn": lambda: torch.ones(2, 2)}):
        with pytest.raises(ValueError) as error:
            TaskGradients(**kwargs)
        assert str(error.value) == "TaskGradients needs exactly one of matrix and matrix_fn"
    for matrix, shown in (
        (torch.ones(3), "(3,) torch.float32"),
        (torch.ones(2, 3, dtype=torch.int32), "(2, 3) torch.int32"),
    ):
        with pytest.raises(ValueError) as error:
            TaskGradients(matrix)
        assert str(error.value) == f"grads must be a float [T, D] matrix, got {shown}"
    for kwargs in ({"local": torch.ones(2, 2)}, {"sum_over_ranks": lambda t: t}):
        with pytest.raises(ValueError) as error:
            TaskGradients(torch.ones(2, 2), **kwargs)
        assert str(error.value) == "TaskGradients needs both or neither of local and sum_over_ranks"


def test_random_gradient_weights_never_read_the_gradients():
    """RGW draws its weights: it computes no Gram matrix (no all-reduce across ranks, EW's cost)."""
    unreadable = lambda: pytest.fail("RGW read the task gradients")  # noqa: E731
    torch.manual_seed(0)
    weights = get("rgw")(3).combine(TaskGradients(matrix_fn=unreadable, gram_fn=unreadable), None).weights
    assert weights.shape == (3,) and weights.sum().item() == pytest.approx(1.0)


def test_last_weights_are_none_until_a_method_gives_weights():
    """Per-task methods (GradDrop) have no task weights: ``last_weights`` stays None, as before any step."""
    method = get("graddrop")(2)
    assert method.last_weights is None
    method.aggregate(T([[1.0, -1.0], [1.0, 1.0]]))
    assert method.last_weights is None


def test_rgw_keeps_nothing_in_checkpoints():
    """Its device anchor is not persistent: RGW's state dict is empty (old checkpoints load strictly)."""
    method = get("rgw")(3)
    assert method.state_dict() == {}
    method.load_state_dict({}, strict=True)


def test_a_method_loss_reaching_only_some_own_parameters_leaves_the_others_alone():
    class _TwoParameters(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = torch.nn.Parameter(T([1.0, 2.0])), torch.nn.Parameter(T([3.0]))

    method = _TwoParameters()
    backward_into_own_parameters(method, (method.used**2).sum())
    torch.testing.assert_close(method.used.grad, T([2.0, 4.0]))
    assert method.unused.grad is None or not method.unused.grad.any()


# ------------------------------------------------------------------------------------------- registry
def test_resolve_names_the_valid_choices_and_the_custom_target_format():
    with pytest.raises(ValueError) as error:
        resolve("loss", "nope")
    assert str(error.value) == (
        f"weighting/loss: unknown method `nope`; valid choices: {sorted([*LOSS_METHODS, 'custom'])}"
    )
    for target in (None, "", 123, "NoDots"):
        with pytest.raises(ValueError) as error:
            resolve("grad", "custom", target)
        assert str(error.value) == (
            f"weighting/grad=custom needs weighting.grad.target=<module>.<Class> (a dotted path), got {target!r}"
        )


# ------------------------------------------------------------------------------------ random weights
@pytest.mark.parametrize("distribution", sorted({**DISTRIBUTIONS, **CODE_VARIANTS}))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_random_weights_have_the_requested_dtype(distribution, dtype):
    torch.manual_seed(0)
    weights = sample_simplex_weights(distribution, 4, dtype=dtype)
    assert weights.dtype == dtype and weights.shape == (4,)
    assert get("rlw")(4, distribution=distribution).weights(torch.ones(4, dtype=dtype)).dtype == dtype


# ------------------------------------------------------------------------------ PCGrad, GradVac, MGDA
# g1 and g2 conflict, g3 is orthogonal to both: every order of the surgery gives the same result,
# g1' = g1 + ½ g2, g2' = g2 + g1, g3' = g3 (GradVac's first step with φ̂ = 0 is PCGrad's projection)
ONE_CONFLICT = T([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("name", ["pcgrad", "gradvac"])
@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_surgery_on_one_conflicting_pair_by_hand(name, scale):
    """Weights (2, 1.5, 1), d = (0.5, 1.5, 1) scale, for any draw of the orders and any scale of G."""
    for seed in range(4):
        torch.manual_seed(seed)
        method = get(name)(3).double()
        direction = method.aggregate(scale * ONE_CONFLICT)
        torch.testing.assert_close(method.last_weights, T([2.0, 1.5, 1.0], dtype=torch.float64))
        torch.testing.assert_close(direction, scale * T([0.5, 1.5, 1.0], dtype=torch.float64))
        if name == "gradvac":  # φ̂_ij ← ½ cos(g_i, g_j) before the surgery: only the pair (1, 2) conflicts
            conflict = 0.5 * -(0.5**0.5)
            expected = T([[0.0, conflict, 0.0], [conflict, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
            torch.testing.assert_close(method.target_similarity, expected)


@pytest.mark.parametrize("name", ["pcgrad", "gradvac"])
def test_surgery_on_one_task_returns_its_gradient(name):
    method = get(name)(1)
    torch.testing.assert_close(method.aggregate(T([[1.0, -2.0]])), T([1.0, -2.0]))
    torch.testing.assert_close(method.last_weights, T([1.0]))


def test_mgda_l2_normalisation_is_scale_free():
    """n_t = ‖g_t‖: the normalised problem is the same for G and 0.1 G, and the weights on the raw
    gradients scale by 10 (norms below 1 are not clamped)."""
    grads = T([[0.3, 0.1], [-0.1, 0.2], [0.05, -0.3]], dtype=torch.float64)
    method = get("mgda_ub")(3, normalization="l2")
    method.aggregate(grads)
    weights = method.last_weights
    method.aggregate(0.1 * grads)
    torch.testing.assert_close(method.last_weights, 10 * weights)
    norms = grads.norm(dim=1)
    unit = grads / norms[:, None]
    torch.testing.assert_close(weights * norms, min_norm_weights(unit @ unit.T))


# ------------------------------------------------------------------------------------------- GradDrop
def test_graddrop_drops_a_task_whose_sign_statistic_is_zero_and_ignores_zero_activations():
    """Rep mode, two samples, two features. Feature 0: task 1's statistic is 1·1 + (−1)·1 = 0 — its
    Algorithm 1 mask is 0 whatever U (neither S > 0 nor S < 0) — and task 2's is 2, so P = 1 and task 2
    is kept. Feature 1: sample 2's activation is 0, so its gradients do not count: S = (1, 1), P = 1,
    both kept."""
    representation = T([[1.0, 1.0], [2.0, 0.0]])
    per_sample = T([[[1.0, 1.0], [-1.0, 5.0]], [[1.0, 1.0], [1.0, 1.0]]])  # [T, N, F]
    grads = TaskGradients(per_sample.flatten(1), representation=representation, sample_shape=(2,))
    for seed in range(4):
        torch.manual_seed(seed)
        per_task = get("graddrop")(2)(grads).per_task
        expected = T([[[0.0, 1.0], [0.0, 5.0]], [[1.0, 1.0], [1.0, 1.0]]]).flatten(1)
        torch.testing.assert_close(per_task, expected)


def test_pcgrad_projects_against_the_tasks_one_at_a_time_in_a_random_order():
    """Three tasks with two conflicts for g1: the direction is one of the sequential surgeries' results
    (every task i in one of the 3! orders of all tasks, itself included, as LibMTL shuffles them), never
    a simultaneous projection, and different orders are drawn."""
    grads = T([[1.0, 0.0], [-1.0, 0.5], [-0.2, -1.0]], dtype=torch.float64)

    def surgery(i, order):
        g = grads[i].clone()
        for j in order:
            dot = g @ grads[j]
            g = g - dot.clamp_max(0.0) / (grads[j] @ grads[j]) * grads[j]
        return g

    options = [[surgery(i, order) for order in itertools.permutations(range(3))] for i in range(3)]
    possible = torch.stack([sum(choice) for choice in itertools.product(*options)])
    directions = []
    for seed in range(6):
        torch.manual_seed(seed)
        direction = get("pcgrad")(3).double().aggregate(grads)
        assert (possible - direction).abs().amax(dim=1).min() < 1e-12
        directions.append(direction)
    assert len({tuple(d.round(decimals=9).tolist()) for d in directions}) > 2


def test_rgw_draws_in_the_models_dtype():
    torch.manual_seed(0)
    weights = (
        get("rgw")(3).double().combine(TaskGradients(torch.ones(3, 2, dtype=torch.float64)), None).weights
    )
    assert weights.dtype == torch.float64 and weights.sum().item() == pytest.approx(1.0)

"""Fast checks of the loss methods and the weighting's shared code written against surviving mutants of
``make mutate`` (docs/testing.md, "Mutation: loss methods, shared code and report"): the cases the
existing tests did not reach (FORUM where its ε is of the order of the gradients, float32 under the
methods' own autocast guard, the graph a meta step must leave to the training step) and the defaults of
the original papers' code."""

from __future__ import annotations

import pytest
import torch

import tests.test_loss_methods as loss_tests
from rw_mtl.weighting import get
from rw_mtl.weighting.loss.forum import subproblem_weights
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

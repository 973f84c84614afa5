"""Loss-balancing methods: weights, penalties and their optima on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rw_mtl.weighting import LOSS_METHODS, get
from rw_mtl.weighting.interface import MetaStep

T = torch.tensor


@pytest.mark.parametrize("name", sorted(LOSS_METHODS))
def test_weights_contract(name):
    torch.manual_seed(0)
    weights = get(name)(3).weights(T([1.0, 2.0, 3.0]))
    assert weights.shape == (3,) and (weights > 0).all()


def test_uw_initial_weights_and_penalty():
    method = get("uw")(2)
    torch.testing.assert_close(method.weights(T([1.0, 4.0])), torch.full((2,), 0.5 * math.exp(0.5)))
    torch.testing.assert_close(method.regularization(), T(-0.5))


def test_uw_learns_log_variance_equal_to_log_loss():
    # ∂/∂s [ℓ e^{−s}/2 + s/2] = 0  ⇔  s = log ℓ
    method = get("uw")(2)
    losses = T([0.5, 4.0])
    optimizer = torch.optim.Adam(method.parameters(), lr=0.05)
    for _ in range(2000):
        optimizer.zero_grad()
        ((method.weights(losses) * losses).sum() + method.regularization()).backward()
        optimizer.step()
    torch.testing.assert_close(method.log_variance.detach(), losses.log(), atol=1e-3, rtol=0)


def test_imtl_l_stationary_where_scaled_losses_equal_one():
    # ∂/∂s [e^{s} ℓ − s] = 0  ⇔  e^{s} ℓ = 1
    method = get("imtl_l")(3)
    losses = T([0.5, 2.0, 8.0])
    with torch.no_grad():
        method.log_scale.copy_(-losses.log())
    total = (method.weights(losses) * losses).sum() + method.regularization()
    (grad,) = torch.autograd.grad(total, method.log_scale)
    torch.testing.assert_close(grad, torch.zeros(3))
    torch.testing.assert_close(method.weights(losses) * losses, torch.ones(3))


def test_dwa_is_ew_for_two_epochs_then_softmax_of_loss_ratios():
    method = get("dwa")(2, temperature=2.0, weight_sum="one")
    torch.testing.assert_close(method.weights(torch.ones(2)), T([0.5, 0.5]))
    method.epoch_end(T([2.0, 1.0]))
    torch.testing.assert_close(method.weights(torch.ones(2)), T([0.5, 0.5]))
    method.epoch_end(T([1.0, 1.0]))  # ratios (0.5, 1): task 1 learns slower → more weight
    expected = torch.softmax(T([0.5, 1.0]) / 2.0, dim=0)
    torch.testing.assert_close(method.weights(torch.ones(2)), expected)
    method.epoch_end(T([0.5, 1.5]))  # ratios now (0.5, 1.5)
    torch.testing.assert_close(method.weights(torch.ones(2)), torch.softmax(T([0.5, 1.5]) / 2.0, dim=0))


def test_dwa_weights_sum_to_t_by_default():
    """LibMTL's DWA: λ = 1 for two epochs, then T · softmax(r / temperature)."""
    method = get("dwa")(3)
    torch.testing.assert_close(method.weights(torch.ones(3)), torch.ones(3))
    method.epoch_end(T([2.0, 1.0, 4.0]))
    torch.testing.assert_close(method.weights(torch.ones(3)), torch.ones(3))
    method.epoch_end(T([1.0, 1.0, 1.0]))  # ratios (0.5, 1, 0.25)
    expected = 3 * torch.softmax(T([0.5, 1.0, 0.25]) / 2.0, dim=0)
    torch.testing.assert_close(method.weights(torch.ones(3)), expected)
    hot = get("dwa")(3, temperature=0.5)
    hot.epoch_end(T([2.0, 1.0, 4.0]))
    hot.epoch_end(T([1.0, 1.0, 1.0]))
    torch.testing.assert_close(
        hot.weights(torch.ones(3)), 3 * torch.softmax(T([0.5, 1.0, 0.25]) / 0.5, dim=0)
    )


def test_dwa_state_survives_a_checkpoint():
    method = get("dwa")(2)
    method.epoch_end(T([2.0, 1.0]))
    method.epoch_end(T([1.0, 1.0]))
    restored = get("dwa")(2)
    restored.load_state_dict(method.state_dict())
    torch.testing.assert_close(restored.weights(torch.ones(2)), method.weights(torch.ones(2)))


def test_moml_hypergradient_is_exact_for_the_one_step_unroll():
    """H[t, s] = ∂ℓ_t^val(θ − η Σ λ_s ∇ℓ_s^train(θ)) / ∂λ_s, checked against autograd through the unroll."""
    torch.manual_seed(0)
    x_train, x_val = torch.randn(6, 3), torch.randn(5, 3)
    targets = torch.randn(2, 3)
    theta = {"w": torch.randn(3, requires_grad=True), "b": torch.randn(1, requires_grad=True)}

    def task_losses(params, x):
        out = x @ params["w"] + params["b"]
        return torch.stack([((out - x @ targets[t]) ** 2).mean() for t in range(2)])

    method = get("moml")(2)  # inner_lr 0.1, whatever the model's learning rate
    with torch.no_grad():
        method.logits.copy_(T([0.3, -0.2]))
    lr = 0.1
    meta = MetaStep(
        losses=task_losses(theta, x_train),
        params=theta,
        validation_losses=lambda p: task_losses(p, x_val),
        training_losses=lambda p: task_losses(p, x_train),
        learning_rate=1e-4,
    )
    surrogate = method.meta_step(meta)
    hyper = method.last_hypergradient

    lam = torch.softmax(method.logits.detach(), 0).requires_grad_(True)
    grads = [torch.autograd.grad(task_losses(theta, x_train)[s], list(theta.values())) for s in range(2)]
    virtual = {
        name: value - lr * sum(lam[s] * grads[s][i] for s in range(2))
        for i, (name, value) in enumerate(theta.items())
    }
    expected = torch.stack(
        [torch.autograd.grad(task_losses(virtual, x_val)[t], lam, retain_graph=True)[0] for t in range(2)]
    )
    torch.testing.assert_close(hyper, expected, atol=1e-6, rtol=1e-5)

    # the update direction: the min-norm combination of the unit α-rows H_t J / ‖H_t J‖
    weights = lam.detach()
    jacobian = torch.diag(weights) - weights[:, None] * weights[None, :]
    rows = hyper @ jacobian
    rows = rows / rows.norm(dim=1, keepdim=True)
    gram = rows @ rows.T
    first = ((gram[1, 1] - gram[0, 1]) / (gram[0, 0] + gram[1, 1] - 2 * gram[0, 1])).clamp(0, 1)
    beta = torch.stack([first, 1 - first])
    (update,) = torch.autograd.grad(surrogate, method.logits)
    torch.testing.assert_close(update, beta @ rows, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(method.weights(torch.ones(2)), weights)
    assert not method.weights(torch.ones(2)).requires_grad
    # inner_lr=null: the virtual step takes the model's learning rate, and H scales with it
    model_lr = get("moml")(2, inner_lr=None)
    with torch.no_grad():
        model_lr.logits.copy_(T([0.3, -0.2]))
    meta.learning_rate = lr
    model_lr.meta_step(meta)
    torch.testing.assert_close(model_lr.last_hypergradient, expected, atol=1e-6, rtol=1e-5)
    meta.learning_rate = 0.05
    model_lr.meta_step(meta)
    assert not torch.allclose(model_lr.last_hypergradient, expected, rtol=1e-3)


def test_moml_alpha_has_its_own_group_without_weight_decay(fast_config):
    """α trains at lr 1e-3 with weight decay 0 even where the model's Adam decays its weights."""
    from hydra.utils import instantiate

    from rw_mtl.build import build_module

    config = fast_config("weighting/loss=moml", "dataset.optimizer.weight_decay=1e-2")
    module = build_module(config, instantiate(config.dataset.datamodule).tasks)
    model_group, alpha_group = module.configure_optimizers().param_groups
    assert alpha_group["params"] == [module.loss_weighting.logits]
    assert (alpha_group["lr"], alpha_group["weight_decay"]) == (1e-3, 0.0)
    assert model_group["weight_decay"] == 1e-2


# ------------------------------------------------------------------------------------------------- GLS
def test_gls_weights_are_the_gradient_of_the_geometric_mean():
    # L = √(ℓ1 ℓ2) at (1, 4) is 2: ∂L/∂ℓ1 = √ℓ2 / (2√ℓ1) = 1, ∂L/∂ℓ2 = √ℓ1 / (2√ℓ2) = 1/4
    torch.testing.assert_close(get("gls")(2).weights(T([1.0, 4.0])), T([1.0, 0.25]))
    losses = T([0.5, 2.0, 8.0], dtype=torch.float64).requires_grad_(True)
    (expected,) = torch.autograd.grad(losses.prod() ** (1 / 3), losses)
    weights = get("gls")(3).weights(losses)
    torch.testing.assert_close(weights, expected)  # L = 2: λ = 2 / (3 ℓ) = (4/3, 1/3, 1/12)
    torch.testing.assert_close(weights, T([4 / 3, 1 / 3, 1 / 12], dtype=torch.float64))
    assert not weights.requires_grad


def test_gls_is_stable_for_forty_small_losses():
    """(Π ℓ)^{1/40} of forty losses of 1e-3 underflows as a product (1e-120) but not as exp(mean log)."""
    weights = get("gls")(40).weights(torch.full((40,), 1e-3))
    torch.testing.assert_close(weights, torch.full((40,), 1 / 40))


# ------------------------------------------------------------------------------------------------ STCH
def _stch_objective_gradient(losses, nadir, mu):
    """∂/∂ℓ of T μ log Σ exp(log(ℓ/n + ε)/μ), the official objective after the warm-up."""
    losses = losses.clone().requires_grad_(True)
    objective = len(losses) * mu * torch.logsumexp(torch.log(losses / nadir + 1e-20) / mu, dim=0)
    return torch.autograd.grad(objective, losses)[0]


def test_stch_warms_up_on_log_losses_then_takes_the_nadir_and_the_smooth_max():
    method = get("stch")(2, warmup_epoch=1)
    losses = T([0.5, 2.0])
    for epoch_mean in (T([3.0, 3.0]), T([1.0, 2.0])):  # epochs 0 and 1: Σ log ℓ, λ = 1/ℓ
        torch.testing.assert_close(method.weights(losses), T([2.0, 0.5]))
        method.epoch_end(epoch_mean)
    torch.testing.assert_close(method.nadir, T([1.0, 2.0]))  # the mean losses of epoch warmup_epoch
    # epoch 2: ℓ/n = (0.5, 1) → s = (1/3, 2/3), λ = T s / ℓ = (4/3, 2/3)
    torch.testing.assert_close(method.weights(losses), T([4 / 3, 2 / 3]))
    torch.testing.assert_close(method.weights(losses), _stch_objective_gradient(losses, T([1.0, 2.0]), 1.0))
    method.epoch_end(T([9.0, 9.0]))  # later epochs leave the nadir alone
    torch.testing.assert_close(method.nadir, T([1.0, 2.0]))


def test_stch_mu_sharpens_the_smooth_max():
    # μ = 0.5: s = softmax(2 log(ℓ/n)) = (0.25, 1) / 1.25 = (0.2, 0.8), λ = 2 s / ℓ = (0.8, 0.8)
    method = get("stch")(2, mu=0.5, warmup_epoch=0)
    method.epoch_end(T([1.0, 2.0]))
    losses = T([0.5, 2.0])
    torch.testing.assert_close(method.weights(losses), T([0.8, 0.8]))
    torch.testing.assert_close(method.weights(losses), _stch_objective_gradient(losses, T([1.0, 2.0]), 0.5))


def test_stch_warmup_epoch_sets_when_the_nadir_is_taken():
    short, default = get("stch")(2, warmup_epoch=0), get("stch")(2)
    assert default.warmup_epoch == 4
    losses = T([0.5, 2.0])
    for method in (short, default):
        method.epoch_end(T([1.0, 2.0]))
    torch.testing.assert_close(short.weights(losses), T([4 / 3, 2 / 3]))  # past its warm-up
    torch.testing.assert_close(default.weights(losses), T([2.0, 0.5]))  # still warming up
    torch.testing.assert_close(default.nadir, T([1.0, 1.0]))  # not taken yet


def test_stch_state_survives_a_checkpoint_and_bad_settings_name_the_key():
    method = get("stch")(2, warmup_epoch=0)
    method.epoch_end(T([1.0, 2.0]))
    restored = get("stch")(2, warmup_epoch=0)
    restored.load_state_dict(method.state_dict())
    torch.testing.assert_close(restored.weights(T([0.5, 2.0])), method.weights(T([0.5, 2.0])))
    with pytest.raises(ValueError, match="weighting.loss.hparams.mu"):
        get("stch")(2, mu=0.0)
    with pytest.raises(ValueError, match="weighting.loss.hparams.warmup_epoch"):
        get("stch")(2, warmup_epoch=-1)


# ------------------------------------------------------------------------------------------------ FAMO
def _famo_context(before, after, skipped=None):
    from rw_mtl.weighting.interface import StepContext

    return StepContext(losses=before, recompute_losses=lambda: after, step=0, skipped=skipped)


def test_famo_weights_are_the_gradient_of_its_log_objective():
    # ξ = 0: z = (½, ½); ℓ = (1, 4): c = ½ + ⅛ = 0.625, λ = z / (c ℓ) = (0.8, 0.2)
    method = get("famo")(2)
    losses = T([1.0, 4.0])
    torch.testing.assert_close(method.weights(losses), T([0.8, 0.2]))
    with torch.no_grad():
        method.logits.copy_(T([0.3, -0.4]))
    leaf = losses.clone().requires_grad_(True)
    z = torch.softmax(method.logits, 0)
    c = (z / (losses + 1e-8)).sum()
    (expected,) = torch.autograd.grad((z / c * torch.log(leaf + 1e-8)).sum(), leaf)
    torch.testing.assert_close(method.weights(losses), expected)


def test_famo_first_update_favours_the_task_that_improved_less():
    # δ = (log 2, 0); Jᵀδ = z ⊙ (δ − z·δ) = (+, −) log 2 / 4; Adam's first step is lr · sign: ξ = (−lr, +lr)
    method = get("famo")(2)
    method.after_step(_famo_context(T([1.0, 4.0]), T([0.5, 4.0])))
    torch.testing.assert_close(method.logits, T([-0.025, 0.025]))
    torch.testing.assert_close(method.weights(T([1.0, 1.0])), torch.softmax(T([-0.025, 0.025]), 0))


FAMO_LOSS_SEQUENCE = [T([2.0, 1.0, 0.5]), T([1.5, 0.9, 0.5]), T([1.4, 0.5, 0.45]), T([1.0, 0.45, 0.44])]


def _famo_logits(learning_rate: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ξ after three updates (float64), and the official update's: Adam(ξ, lr, weight_decay=γ) stepping
    on ∂softmax(ξ)/∂ξ ᵀ δ."""
    method = get("famo")(3, learning_rate=learning_rate, gamma=gamma).double()
    reference = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([reference], lr=learning_rate, weight_decay=gamma)
    sequence = [losses.double() for losses in FAMO_LOSS_SEQUENCE]
    for before, after in zip(sequence, sequence[1:], strict=False):
        method.after_step(_famo_context(before, after))
        delta = torch.log(before + 1e-8) - torch.log(after + 1e-8)
        (reference.grad,) = torch.autograd.grad(torch.softmax(reference, 0), reference, delta)
        optimizer.step()
    return method.logits, reference.detach()


@pytest.mark.parametrize(("learning_rate", "gamma"), [(0.025, 0.01), (0.1, 0.01), (0.025, 0.5)])
def test_famo_updates_equal_torch_adam_on_the_official_gradient(learning_rate, gamma):
    logits, reference = _famo_logits(learning_rate, gamma)
    torch.testing.assert_close(logits, reference, atol=1e-12, rtol=1e-10)


def test_famo_learning_rate_and_gamma_change_the_logits():
    default = _famo_logits(0.025, 0.01)[0]
    faster, decayed = _famo_logits(0.1, 0.01)[0], _famo_logits(0.025, 0.5)[0]
    # three Adam steps of size ≈ lr: the logits scale with lr; strong decay pulls them towards 0
    assert faster.abs().sum() > 3 * default.abs().sum()
    assert decayed.abs().sum() < default.abs().sum()


def test_famo_keeps_its_state_when_the_step_was_skipped():
    method = get("famo")(2)
    method.after_step(_famo_context(T([1.0, 4.0]), T([0.5, 4.0])))
    state = {name: value.clone() for name, value in method.state_dict().items()}
    method.after_step(_famo_context(T([1.0, 4.0]), T([1.0, 2.0]), skipped=torch.tensor(True)))
    for name, value in method.state_dict().items():
        assert torch.equal(value, state[name]), name
    method.after_step(_famo_context(T([1.0, 4.0]), T([1.0, 2.0]), skipped=torch.tensor(False)))
    assert not torch.equal(method.logits, state["logits"])


# ------------------------------------------------------------------------------------ ExcessMTL (G side)
def _excess_risk_reference(steps, step_size):
    """LibMTL's loop, written out: AdaGrad accumulators, E_t = g_t · g_t / √(Σg² + 1e-7), w ← w e^{η E/E(0)}
    renormalised to Σ w = T from the second step on."""
    squared, weights, initial, directions = torch.zeros_like(steps[0]), torch.ones(len(steps[0])), None, []
    for grads in steps:
        squared = squared + grads**2
        risk = (grads * grads / torch.sqrt(squared + 1e-7)).sum(dim=1)
        if initial is None:
            initial = risk
        else:
            weights = weights * torch.exp(step_size * risk / initial)
            weights = weights / weights.sum() * len(weights)
        directions.append(weights @ grads)
    return weights, directions


def test_excess_mtl_two_tasks_hand_computed():
    # step 1: E(0) = (1²/1, 2²/2) = (1, 2), w = (1, 1); step 2: Σg² = (2, 5), E = (1/√2, 1/√5),
    # w ∝ (e^{0.01/√2}, e^{0.01/(2√5)}) with Σ w = 2
    method = get("excess_mtl")(2)
    torch.testing.assert_close(method.aggregate(T([[1.0, 0.0], [0.0, 2.0]])), T([1.0, 2.0]))
    direction = method.aggregate(T([[1.0, 0.0], [0.0, 1.0]]))
    grown = T([math.exp(0.01 / math.sqrt(2)), math.exp(0.01 / (2 * math.sqrt(5)))])
    torch.testing.assert_close(method.last_weights, 2 * grown / grown.sum(), atol=1e-6, rtol=0)
    torch.testing.assert_close(method.last_weights, T([1.002417, 0.997583]), atol=1e-6, rtol=0)
    torch.testing.assert_close(direction, method.last_weights)


@pytest.mark.parametrize("step_size", [1e-2, 0.5])
def test_excess_mtl_follows_the_reference_loop_and_its_step_size(step_size):
    generator = torch.Generator().manual_seed(0)
    steps = [torch.randn(3, 6, generator=generator) * scale for scale in (1.0, 0.5, 2.0, 0.1)]
    method = get("excess_mtl")(3, robust_step_size=step_size)
    directions = [method.aggregate(grads) for grads in steps]
    weights, expected = _excess_risk_reference(steps, step_size)
    torch.testing.assert_close(method.last_weights, weights)
    torch.testing.assert_close(torch.stack(directions), torch.stack(expected))
    assert (weights - 1).abs().max() > (0.2 if step_size == 0.5 else 0.003)


def test_excess_mtl_rep_mode_sums_the_samples_gradients():
    """Rows of per-sample gradients w.r.t. z ([T, N·F]) enter the statistics summed over the N samples."""
    from rw_mtl.weighting.interface import TaskGradients

    generator = torch.Generator().manual_seed(1)
    per_sample = [torch.randn(2, 4, 3, generator=generator) for _ in range(2)]  # [T, N, F]
    method = get("excess_mtl")(2, robust_step_size=0.5)
    for grads in per_sample:
        method(TaskGradients(grads.flatten(1), sample_shape=(3,)))
    weights, _ = _excess_risk_reference([grads.sum(dim=1) for grads in per_sample], 0.5)
    torch.testing.assert_close(method.last_weights, weights)


def test_excess_mtl_state_survives_a_checkpoint():
    generator = torch.Generator().manual_seed(2)
    steps = [torch.randn(2, 5, generator=generator) for _ in range(3)]
    method = get("excess_mtl")(2, robust_step_size=0.5)
    for grads in steps[:2]:
        method.aggregate(grads)
    restored = get("excess_mtl")(2, robust_step_size=0.5)
    restored.load_state_dict(method.state_dict())
    assert restored.squared_sum.shape == (2, 5)
    torch.testing.assert_close(restored.aggregate(steps[2]), method.aggregate(steps[2]))
    with pytest.raises(ValueError, match="weighting.grad.mode"):
        method.aggregate(torch.ones(2, 4))


# ------------------------------------------------------------------------------------------ DB-MTL (G side)
DB_STEPS = [(T([[2.0, 0.0], [0.0, 1.0]]), T([1.0, 0.5])), (T([[3.0, 0.0], [0.0, 1.0]]), T([1.0, 1.0]))]


def _db_mtl_directions(**hparams):
    method = get("db_mtl")(2, **hparams)
    return [method.aggregate(grads, losses) for grads, losses in DB_STEPS]


def test_db_mtl_two_tasks_hand_computed():
    # step 1: log-loss rows g/ℓ = (2, 0), (0, 2); average 0.1 × rows; equal norms: d = (0.2, 0.2)
    # step 2: rows (3, 0), (0, 1); average 0.9 × previous + 0.1 × rows = (0.48, 0), (0, 0.28);
    #         the second scaled by 0.48 / 0.28 to the first's norm: d = (0.48, 0.48)
    first, second = _db_mtl_directions()
    torch.testing.assert_close(first, T([0.2, 0.2]))
    torch.testing.assert_close(second, T([0.48, 0.48]))


def test_db_mtl_beta_and_beta_sigma_change_the_average():
    # β = 0.5: averages (1, 0), (0, 1) then (2, 0), (0, 1) → d = (2, 2)
    torch.testing.assert_close(_db_mtl_directions(beta=0.5)[1], T([2.0, 2.0]))
    # σ = 1: β_2 = 0.9 / 2: average 0.45 × (0.2, 0.2) + 0.55 × (3, 1) = (1.74, 0.64) → d = (1.74, 1.74)
    torch.testing.assert_close(_db_mtl_directions(beta_sigma=1.0)[1], T([1.74, 1.74]))


def test_db_mtl_rows_are_log_loss_gradients():
    """g_t / (ℓ_t + 1e-8) = ∇ log(ℓ_t + 1e-8): one step of a two-task quadratic, checked with autograd."""
    theta = T([0.3, -1.2, 0.7], dtype=torch.float64, requires_grad=True)
    losses = torch.stack([(theta**2).sum(), ((theta - 1) ** 2).sum() * 3])
    grads = torch.stack([torch.autograd.grad(loss, theta, retain_graph=True)[0] for loss in losses])
    logs = torch.stack(
        [torch.autograd.grad(torch.log(loss + 1e-8), theta, retain_graph=True)[0] for loss in losses]
    )
    direction = get("db_mtl")(2).double().aggregate(grads, losses.detach())
    average = 0.1 * logs
    norms = average.norm(dim=1)
    torch.testing.assert_close(direction, (norms.max() / (norms + 1e-8)) @ average)


def test_db_mtl_refuses_rep_mode_and_needs_losses():

    method = get("db_mtl")(2)
    assert get("db_mtl").supported_modes() == ("param",)
    with pytest.raises(ValueError, match="weighting.grad.mode=param"):
        get("db_mtl").check_mode("rep", "db_mtl")
    with pytest.raises(ValueError, match="losses"):
        method.aggregate(torch.ones(2, 6))
    with pytest.raises(ValueError, match="weighting.grad.hparams.beta"):
        get("db_mtl")(2, beta=1.0)


# ----------------------------------------------------------------------------------------------- Auto-λ
def _regression_problem(dtype=torch.float64):
    """Two least-squares tasks on one linear model: losses quadratic in θ = (w, b)."""
    generator = torch.Generator().manual_seed(0)
    x_train, x_val = torch.randn(6, 3, generator=generator), torch.randn(5, 3, generator=generator)
    targets = torch.randn(2, 3, generator=generator)
    theta = {
        "w": torch.randn(3, generator=generator).to(dtype).requires_grad_(True),
        "b": torch.randn(1, generator=generator).to(dtype).requires_grad_(True),
    }

    def task_losses(params, x):
        x = x.to(dtype)
        out = x @ params["w"] + params["b"]
        return torch.stack([((out - x @ targets[t].to(dtype)) ** 2).mean() for t in range(2)])

    return theta, task_losses, x_train, x_val


def _meta(theta, task_losses, x_train, x_val, lr):
    return MetaStep(
        losses=task_losses(theta, x_train),
        params=theta,
        validation_losses=lambda p: task_losses(p, x_val),
        training_losses=lambda p: task_losses(p, x_train),
        learning_rate=lr,
    )


def _unrolled_validation_gradient(theta, task_losses, x_train, x_val, weights, lr):
    """∂ Σ_t ℓ_t^val(θ − η Σ_s λ_s ∇ℓ_s^train(θ)) / ∂λ, by autograd through the unroll."""
    weights = weights.detach().clone().requires_grad_(True)
    grads = [torch.autograd.grad(task_losses(theta, x_train)[s], list(theta.values())) for s in range(2)]
    virtual = {
        name: value - lr * sum(weights[s] * grads[s][i] for s in range(2))
        for i, (name, value) in enumerate(theta.items())
    }
    return torch.autograd.grad(task_losses(virtual, x_val).sum(), weights)[0]


@pytest.mark.parametrize("init", [0.1, 0.5])
def test_auto_lambda_hypergradient_is_the_unrolled_validation_gradient(init):
    """The central difference is exact for these quadratic losses: ∂L^val(θ')/∂λ to float64 precision."""
    theta, task_losses, x_train, x_val = _regression_problem()
    method = get("auto_lambda")(2, init=init).double()
    torch.testing.assert_close(method.weights(torch.ones(2)), torch.full((2,), init))
    surrogate = method.meta_step(_meta(theta, task_losses, x_train, x_val, lr=0.1))
    expected = _unrolled_validation_gradient(theta, task_losses, x_train, x_val, method.meta_weights, 0.1)
    torch.testing.assert_close(method.last_hypergradient, expected, atol=1e-10, rtol=1e-7)
    (update,) = torch.autograd.grad(surrogate, method.meta_weights)
    torch.testing.assert_close(update, expected, atol=1e-10, rtol=1e-7)


def test_auto_lambda_init_and_learning_rate_change_the_step():
    theta, task_losses, x_train, x_val = _regression_problem()
    by_init = [
        _unrolled_validation_gradient(theta, task_losses, x_train, x_val, torch.full((2,), init), 0.1)
        for init in (0.1, 0.5)
    ]
    assert not torch.allclose(by_init[0], by_init[1])  # θ' depends on λ's initial value
    slow, fast = get("auto_lambda")(2), get("auto_lambda")(2, learning_rate=1e-2)
    assert (slow.learning_rate, slow.weight_decay, fast.learning_rate) == (1e-4, 0.0, 1e-2)
    for method in (slow, fast):  # one Adam step of λ in its own group moves it by its learning rate
        optimizer = torch.optim.Adam(
            [{"params": [method.meta_weights], "lr": method.learning_rate}], weight_decay=0.0
        )
        method.meta_weights.grad = by_init[0].float()
        optimizer.step()
    torch.testing.assert_close(slow.meta_weights.detach(), 0.1 - 1e-4 * by_init[0].sign().float())
    torch.testing.assert_close(fast.meta_weights.detach(), 0.1 - 1e-2 * by_init[0].sign().float())


# ------------------------------------------------------------------------------------------------ FORUM
def _scipy_subproblem(gram, pi, c):
    """FORUM's Eq. 14 as the official code states it for cvxpy, in the T + 1 variables v = (w, μ) ≥ 0:
    min vᵀ M v − μ c s.t. Σ w = 1, μ ≥ wᵀπ — solved by SLSQP from several starts."""
    from scipy.optimize import minimize

    gram, pi, c = gram.double().numpy(), pi.double().numpy(), float(c)
    task_num, best = len(pi), None
    for seed in range(4):
        start = np.random.default_rng(seed).dirichlet(np.ones(task_num))
        result = minimize(
            lambda v: v @ gram @ v - v[-1] * c,
            np.append(start, max(0.0, start @ pi) + 0.1),
            jac=lambda v: 2 * gram @ v - np.append(np.zeros(task_num), c),
            constraints=[
                {"type": "eq", "fun": lambda v: v[:-1].sum() - 1},
                {"type": "ineq", "fun": lambda v: v[-1] - v[:-1] @ pi},
            ],
            bounds=[(0, None)] * (task_num + 1),
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        best = result if best is None or result.fun < best.fun else best
    return torch.from_numpy(best.x[:-1])


@pytest.mark.parametrize("task_num", [2, 3, 5, 10])
@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_forum_subproblem_matches_scipy(task_num, scale):
    from rw_mtl.weighting.loss.forum import subproblem_weights

    generator = torch.Generator().manual_seed(task_num)
    upper = torch.randn(task_num, 30, generator=generator, dtype=torch.float64)
    upper = upper / upper.norm(dim=1, keepdim=True)
    constraint = torch.randn(30 + task_num, generator=generator, dtype=torch.float64) * scale
    rows = torch.cat(
        [torch.cat([torch.zeros(task_num, task_num, dtype=torch.float64), upper], 1), constraint[None]]
    )
    gram = rows @ rows.T
    pi = 0.1 - gram[:-1, -1] / (gram[-1, -1] + 1e-8)
    c = 0.1 * (gram[-1, -1] + 1e-8)
    weights = subproblem_weights(gram, pi, c)
    assert weights.min() >= 0 and weights.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(weights, _scipy_subproblem(gram, pi, c), atol=1e-4, rtol=0)


def _forum_reference(problem, alpha, average, epoch, inner_lr=0.1, inner_steps=5, phi=0.1):
    """The official ``train_FORUM`` step for α (github.com/Baijiong-Lin/FORUM, LibMTL/trainer.py), written
    out with autograd and scipy: returns α's gradient and the new λ̄."""
    theta, task_losses, x_train, x_val = problem
    params = list(theta.values())
    alpha = alpha.detach().clone().requires_grad_(True)

    def lower_level(values):
        return (torch.softmax(alpha, 0) * task_losses(dict(zip(theta, values, strict=True)), x_train)).sum()

    g_f = torch.autograd.grad(lower_level(params), [alpha, *params])
    g_f = torch.cat([g.reshape(-1) for g in g_f])
    inner = [p.detach().clone().requires_grad_(True) for p in params]
    optimizer = torch.optim.SGD(inner, lr=inner_lr)
    for _ in range(inner_steps):
        loss = lower_level(inner)
        if loss.item() > 1e5:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    (g_f_hat_alpha,) = torch.autograd.grad(lower_level(inner), alpha)
    g_q = g_f.clone()
    g_q[:2] = g_q[:2] - g_f_hat_alpha
    val_losses = task_losses(theta, x_val)
    upper = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(val_losses[t], params, retain_graph=True)])
            for t in range(2)
        ]
    )
    upper = upper / (1e-8 + upper.norm(dim=1, keepdim=True))
    upper = torch.cat([torch.zeros(2, 2, dtype=upper.dtype), upper], dim=1)
    pi = phi - (upper @ g_q) / (g_q.norm() ** 2 + 1e-8)
    rows = torch.cat([upper, g_q[None]])
    weights = _scipy_subproblem(rows @ rows.T, pi, phi * (g_q.norm() ** 2 + 1e-8))
    average = average + (1 / (epoch + 1) ** 0.75) * (weights - average)
    nu = max((average * pi).sum().item(), 0.0)
    return nu * g_q[:2], average


def _forum_update(method, problem):
    """α's gradient from one meta step of ``method`` on the regression problem."""
    theta, task_losses, x_train, x_val = problem
    surrogate = method.meta_step(_meta(theta, task_losses, x_train, x_val, 1e-3))
    return torch.autograd.grad(surrogate, method.logits)[0]


FORUM_SETTINGS = {
    "default": {},
    "phi": {"phi": 0.9},
    "inner_lr": {"inner_lr": 0.3},
    "inner_steps": {"inner_steps": 2},
}


@pytest.mark.parametrize("setting", sorted(FORUM_SETTINGS))
def test_forum_meta_step_equals_the_official_algorithm(setting):
    problem = _regression_problem()
    method = get("forum")(2, **FORUM_SETTINGS[setting]).double()
    with torch.no_grad():
        method.logits.copy_(T([0.4, -0.3]))
    expected, average = _forum_reference(problem, method.logits, torch.zeros(2), 0, **FORUM_SETTINGS[setting])
    update = _forum_update(method, problem)
    torch.testing.assert_close(method.weight_average, average, atol=1e-4, rtol=0)
    torch.testing.assert_close(update, expected, atol=1e-6, rtol=1e-3)
    assert update.abs().max() > 1e-4  # ν > 0: α moves
    if setting != "default":  # every setting changes α's step
        default_update, _ = _forum_reference(problem, method.logits, torch.zeros(2), 0)
        assert not torch.allclose(update, default_update, atol=1e-6, rtol=1e-3)


def test_forum_averages_the_subproblem_weights_at_the_epoch_rate():
    """λ̄ ← λ̄ + (e + 1)^{−3/4} (w − λ̄): at epoch 0 it is w, at epoch 1 it moves by 2^{−3/4}."""
    problem = _regression_problem()
    theta, task_losses, x_train, x_val = problem
    method = get("forum")(2).double()
    method.meta_step(_meta(theta, task_losses, x_train, x_val, 1e-3))
    torch.testing.assert_close(method.weight_average, method.last_subproblem["weights"])
    first = method.weight_average.clone()
    method.epoch_end(torch.ones(2))
    with torch.no_grad():
        method.logits.copy_(T([-2.0, 2.0]))
    expected, average = _forum_reference(problem, method.logits, first, 1)
    update = _forum_update(method, problem)
    weights = method.last_subproblem["weights"]
    torch.testing.assert_close(method.weight_average, first + 2**-0.75 * (weights - first))
    torch.testing.assert_close(method.weight_average, average, atol=1e-4, rtol=0)
    torch.testing.assert_close(update, expected, atol=1e-6, rtol=1e-3)
    assert (weights - first).abs().max() > 0.03 and update.abs().max() > 1e-3


def test_forum_inner_loop_stops_where_the_lower_level_diverges():
    """inner_lr 40 makes the inner SGD blow up: the official loop breaks once f > 1e5, and so do we."""
    problem = _regression_problem()
    theta, task_losses, x_train, x_val = problem
    method = get("forum")(2, inner_lr=40.0, inner_steps=6).double()
    meta = _meta(theta, task_losses, x_train, x_val, 1e-3)
    inner = method._inner_solution(meta, torch.full((2,), 0.5).double())
    assert 1e5 < (0.5 * task_losses(inner, x_train)).sum() < 1e12  # frozen after crossing, not at 1e30
    expected, _ = _forum_reference(problem, method.logits, torch.zeros(2), 0, inner_lr=40.0, inner_steps=6)
    update = _forum_update(method, problem)
    torch.testing.assert_close(update, expected, atol=1e-6, rtol=1e-3)

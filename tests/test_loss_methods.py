"""Loss-balancing methods: weights, penalties and their optima on hand-computed examples."""

from __future__ import annotations

import math

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

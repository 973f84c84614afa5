"""Contracts of design.md for the loss and gradient methods of the foundation (EW, RLW, RGW)."""

from __future__ import annotations

import pytest
import torch

from rw_mtl.weighting import GRAD_METHODS, LOSS_METHODS, GradWeighting, LossWeighting, get
from rw_mtl.weighting.grad.rgw import RGW
from rw_mtl.weighting.loss.ew import EW
from rw_mtl.weighting.loss.rlw import RLW


def test_get_returns_registered_classes_by_config_name():
    assert get("ew") is EW and get("rlw") is RLW and get("rgw") is RGW
    assert all(issubclass(cls, LossWeighting) for cls in LOSS_METHODS.values())
    assert all(issubclass(cls, GradWeighting) for cls in GRAD_METHODS.values())


def test_get_unknown_lists_methods():
    with pytest.raises(KeyError, match="rlw"):
        get("does_not_exist")


def test_ew_weights_are_one_by_default_and_one_over_t_on_request():
    """LibMTL's EW (the paper's runs) adds the losses, λ = 1; weight_sum=one is the paper's text, λ = 1/T."""
    losses = torch.tensor([3.0, 1.0, 2.0, 9.0])
    torch.testing.assert_close(EW(4).weights(losses), torch.ones(4))
    torch.testing.assert_close(EW(4, weight_sum="one").weights(losses), torch.full((4,), 0.25))
    with pytest.raises(ValueError, match="weight_sum must be one of"):
        EW(4, weight_sum="T")


def test_rlw_fresh_draw_each_step():
    torch.manual_seed(0)
    method = RLW(3)
    first, second = method.weights(torch.ones(3)), method.weights(torch.ones(3))
    assert not torch.equal(first, second)
    assert first.sum().item() == pytest.approx(1.0)


def test_rlw_checks_task_count():
    with pytest.raises(ValueError, match="3 tasks"):
        RLW(3).weights(torch.ones(4))


def test_rgw_aggregate_is_weighted_sum_with_last_weights():
    torch.manual_seed(0)
    grads = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, -1.0]])
    method = RGW(2)
    direction = method.aggregate(grads)
    weights = method.last_weights
    assert weights.shape == (2,) and weights.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(direction, weights[0] * grads[0] + weights[1] * grads[1])


def test_rgw_draws_the_paper_weights_and_follows_the_matrix_dtype():
    """λ = softmax(λ̃), λ̃ ~ N(0, I) drawn where the method lives; the direction has the matrix's dtype."""
    grads = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]], dtype=torch.float64)
    torch.manual_seed(3)
    expected = torch.softmax(torch.randn(3), dim=0)
    torch.manual_seed(3)
    direction = RGW(3).aggregate(grads)
    assert direction.dtype == torch.float64
    torch.testing.assert_close(direction, expected.double() @ grads)


def test_rgw_with_constrained_bernoulli_picks_one_task_gradient():
    torch.manual_seed(0)
    grads = torch.arange(12.0).reshape(3, 4)
    direction = RGW(3, distribution="constrained_bernoulli").aggregate(grads)
    assert any(torch.equal(direction, row) for row in grads)


def test_rgw_rejects_bad_matrix():
    with pytest.raises(ValueError, match="2 tasks"):
        RGW(2).aggregate(torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        RGW(2).aggregate(torch.ones(2, 5, 1))

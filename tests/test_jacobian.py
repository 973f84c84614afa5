"""The per-task gradient engine against autograd's own Jacobian."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rw_mtl.weighting.jacobian import assign_flat_grad, own_input_gradients, task_gradients


def _toy_problem():
    torch.manual_seed(0)
    shared = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    heads = [nn.Linear(3, 1) for _ in range(3)]
    x = torch.randn(8, 5)
    z = shared(x)
    losses = torch.stack([(h(z) ** 2).mean() * (t + 1) for t, h in enumerate(heads)])
    return shared, z, losses


def _reference(losses, inputs):
    rows = []
    for t in range(len(losses)):
        grads = torch.autograd.grad(losses[t], inputs, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("batched", [False, True])
def test_param_mode_matches_reference(batched):
    shared, _, losses = _toy_problem()
    params = list(shared.parameters())
    expected = _reference(losses, params)
    got = task_gradients(losses, params, batched=batched)
    assert got.shape == (3, sum(p.numel() for p in params))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("batched", [False, True])
def test_rep_mode_matches_reference_and_keeps_graph(batched):
    _, z, losses = _toy_problem()
    got = task_gradients(losses, [z], batched=batched)
    torch.testing.assert_close(got, _reference(losses, [z]))
    losses.sum().backward()  # graph was retained for the later backward of the training step


def test_unused_input_gives_zero_rows():
    a, b = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    losses = torch.stack([(a * 2).sum(), (a * 3).sum()])
    got = task_gradients(losses, [a, b])
    torch.testing.assert_close(got, torch.tensor([[2.0, 2, 0, 0, 0], [3.0, 3, 0, 0, 0]]))


def test_fills_given_buffer():
    shared, _, losses = _toy_problem()
    params = list(shared.parameters())
    buffer = torch.full((3, sum(p.numel() for p in params)), float("nan"))
    assert task_gradients(losses, params, out=buffer) is buffer
    assert torch.isfinite(buffer).all()
    with pytest.raises(ValueError, match="shape"):
        task_gradients(losses, params, out=torch.empty(2, 2))


def test_assign_flat_grad_writes_views():
    params = [nn.Parameter(torch.zeros(2, 2)), nn.Parameter(torch.zeros(3))]
    direction = torch.arange(7.0)
    assign_flat_grad(direction, params)
    torch.testing.assert_close(params[0].grad, torch.tensor([[0.0, 1], [2, 3]]))
    torch.testing.assert_close(params[1].grad, torch.tensor([4.0, 5, 6]))
    with pytest.raises(ValueError, match="flat"):
        assign_flat_grad(torch.zeros(6), params)


@pytest.mark.parametrize("batched", [False, True])
def test_bfloat16_representation_gives_float32_rows(batched):
    """Under bf16-mixed, z is bfloat16; G's rows are float32 (the exact bf16 gradients, upcast)."""
    rep = torch.tensor([[1.5, -2.0], [0.25, 3.0]], dtype=torch.bfloat16, requires_grad=True)
    losses = torch.stack([(rep * rep).sum(), (3 * rep).sum()])
    grads = task_gradients(losses, [rep], batched=batched)
    assert grads.dtype == torch.float32
    torch.testing.assert_close(grads, torch.tensor([[3.0, -4.0, 0.5, 6.0], [3.0, 3.0, 3.0, 3.0]]))
    own = own_input_gradients(losses, [rep, rep])
    assert own.dtype == torch.float32
    torch.testing.assert_close(own, grads)

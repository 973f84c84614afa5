"""The per-task gradient engine against autograd's own Jacobian."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rw_mtl.weighting.jacobian import assign_flat_grad, own_input_gradients, task_gradients


def _toy_problem(with_heads: bool = False):
    torch.manual_seed(0)
    shared = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    heads = [nn.Linear(3, 1) for _ in range(3)]
    x = torch.randn(8, 5)
    z = shared(x)
    losses = torch.stack([(h(z) ** 2).mean() * (t + 1) for t, h in enumerate(heads)])
    return (shared, z, losses, heads) if with_heads else (shared, z, losses)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("mode", ["param", "rep"])
def test_heads_get_their_gradients_from_the_same_passes(batched, mode):
    """accumulate=heads: G is unchanged and every head's .grad is ∇ Σ_t ℓ_t (only its own task's term)."""
    shared, z, losses, heads = _toy_problem(with_heads=True)
    head_params = [p for head in heads for p in head.parameters()]
    expected_heads = torch.autograd.grad(losses.sum(), head_params, retain_graph=True)
    inputs = list(shared.parameters()) if mode == "param" else [z]
    expected = _reference(losses, inputs)
    torch.testing.assert_close(
        task_gradients(losses, inputs, batched=batched, accumulate=head_params), expected
    )
    for param, want in zip(head_params, expected_heads, strict=True):
        torch.testing.assert_close(param.grad, want)


def test_own_input_gradients_accumulate_the_heads_too():
    torch.manual_seed(0)
    heads = [nn.Linear(3, 1) for _ in range(2)]
    reps = [torch.randn(4, 3, requires_grad=True) for _ in range(2)]
    losses = torch.stack([(head(rep) ** 2).mean() for head, rep in zip(heads, reps, strict=True)])
    params = [p for head in heads for p in head.parameters()]
    expected = torch.autograd.grad(losses.sum(), params, retain_graph=True)
    rows = own_input_gradients(losses, reps, accumulate=params)
    torch.testing.assert_close(
        rows[1], torch.autograd.grad(losses[1], reps[1], retain_graph=True)[0].reshape(-1)
    )
    for param, want in zip(params, expected, strict=True):
        torch.testing.assert_close(param.grad, want)


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


@pytest.mark.parametrize("batched", [False, True])
def test_unused_input_gives_zero_rows(batched):
    """An input no loss reaches (BERT's pooler under token outputs) gets zero columns, its full width in
    both ways — the vmapped call materialises such a gradient without the task dimension."""
    a, b = torch.ones(2, requires_grad=True), torch.ones(3, 2, requires_grad=True)
    losses = torch.stack([(a * 2).sum(), (a * 3).sum()])
    got = task_gradients(losses, [a, b], batched=batched)
    torch.testing.assert_close(got, torch.tensor([[2.0, 2, 0, 0, 0, 0, 0, 0], [3.0, 3, 0, 0, 0, 0, 0, 0]]))


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


def test_separate_loss_terms_run_each_head_backward_once():
    """Rows from T separate scalars: the same G, and task t's pass runs only head t's backward."""
    torch.manual_seed(0)
    z = torch.randn(8, 3, requires_grad=True)
    heads = [nn.Linear(3, 1) for _ in range(3)]
    calls = [0, 0, 0]
    for index, head in enumerate(heads):
        head.register_full_backward_hook(lambda *_, index=index: calls.__setitem__(index, calls[index] + 1))
    terms = [(head(z) ** 2).mean() for head in heads]
    stacked = task_gradients(torch.stack(terms), [z])
    assert calls == [3, 3, 3]  # every pass from a stacked vector runs every head
    calls[:] = [0, 0, 0]
    torch.testing.assert_close(task_gradients(terms, [z]), stacked)
    assert calls == [1, 1, 1]

"""One real training step (Lightning, SGD at lr 1) of every TorchJD-derived gradient method, in param and
rep mode: the applied update equals Algorithm 2's gradients for the weights the method reported (or, for
TrimmedMean, the trimmed mean of the per-task gradients computed here by hand)."""

from __future__ import annotations

import pytest
import torch

from rw_mtl.weighting import get

from .test_module import ONE_BATCH, applied_update, expected_gradients, one_step

METHODS = ["upgrad", "dualproj", "aligned_mtl", "nash_mtl", "config", "krum", "crmogm", "pcd"]
FAST_STEP = [*ONE_BATCH, "weighting/loss=ew", "weighting.grad.batched_jacobian=false"]


def _check_update(before, after, data, grad_weights) -> None:
    shared_expected, heads_expected = expected_gradients(before, after.last_loss_weights, grad_weights, data)
    shared_update = applied_update(before.arch.shared_parameters(), after.arch.shared_parameters())
    head_update = applied_update(before.arch.task_parameters(), after.arch.task_parameters())
    for got, want in zip(shared_update + head_update, [*shared_expected, *heads_expected], strict=True):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("mode", ["param", "rep"])
@pytest.mark.parametrize("name", METHODS)
def test_one_step_applies_the_method_weights(fast_config, name, mode):
    before, after, data = one_step(
        fast_config(*FAST_STEP, f"weighting/grad={name}", f"weighting.grad.mode={mode}")
    )
    weights = after.grad_weighting.last_weights
    assert weights is not None and torch.isfinite(weights).all()
    if name != "dualproj":  # at initialisation the mean gradient conflicts with no task: DualProj keeps it
        assert not torch.allclose(weights, torch.full_like(weights, weights.mean()))
    _check_update(before, after, data, weights)


@pytest.mark.parametrize("mode", ["param", "rep"])
def test_one_step_of_trimmed_mean(fast_config, mode):
    """The shared parameters move by the trimmed mean (here: the median of 3) of the per-task gradients θ
    receives — in rep mode, those of z pulled back through the encoder."""
    before, after, data = one_step(
        fast_config(*FAST_STEP, "weighting/grad=trimmed_mean", f"weighting.grad.mode={mode}")
    )
    arch = before.arch.train()
    shared = arch.shared_parameters()
    if mode == "param":
        predictions = arch(data.inputs)
        losses = [task.loss(predictions[n], data.targets[n]) / 3 for n, task in before.tasks.items()]
        rows = [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)])
            for loss in losses
        ]
        direction = torch.stack(rows).median(dim=0).values
        expected = direction.split([p.numel() for p in shared])
    else:
        rep = arch.encode(data.inputs)
        leaf = rep.detach().requires_grad_(True)
        predictions = arch.decode(leaf)
        losses = [task.loss(predictions[n], data.targets[n]) / 3 for n, task in before.tasks.items()]
        rows = torch.stack(
            [torch.autograd.grad(loss, leaf, retain_graph=True)[0].reshape(-1) for loss in losses]
        )
        direction = get("trimmed_mean")(3).aggregate(rows)
        expected = torch.autograd.grad(rep, shared, grad_outputs=direction.view_as(rep))
    for got, want in zip(applied_update(shared, after.arch.shared_parameters()), expected, strict=True):
        torch.testing.assert_close(got, want.view_as(got), atol=2e-5, rtol=1e-4)
    assert after.grad_weighting.last_weights is None

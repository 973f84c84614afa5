"""Every TorchJD-derived gradient method in training: one real step (Lightning, SGD at lr 1) in param and
rep mode applies Algorithm 2's gradients for the weights the method reported (TrimmedMean: the trimmed mean
of the per-task gradients, by hand); one bf16-mixed step moves the parameters as float32 does; and the
methods make no host synchronisation."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch.profiler import ProfilerActivity, profile

from rw_mtl.build import build_module
from rw_mtl.weighting import get

from .test_module import ONE_BATCH, applied_update, expected_gradients, one_step
from .test_step_syncs import host_syncs

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
        losses = [task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()]
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
        losses = [task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()]
        rows = torch.stack(
            [torch.autograd.grad(loss, leaf, retain_graph=True)[0].reshape(-1) for loss in losses]
        )
        direction = get("trimmed_mean")(3).aggregate(rows)
        expected = torch.autograd.grad(rep, shared, grad_outputs=direction.view_as(rep))
    for got, want in zip(applied_update(shared, after.arch.shared_parameters()), expected, strict=True):
        torch.testing.assert_close(got, want.view_as(got), atol=2e-5, rtol=1e-4)
    assert after.grad_weighting.last_weights is None


ALL_METHODS = [*METHODS, "trimmed_mean"]


@pytest.mark.parametrize("name", ALL_METHODS)
def test_bf16_mixed_step_matches_float32(fast_config, name):
    """Under bf16-mixed the model runs in bfloat16 but G, the method's T×T algebra and the shared
    parameters' gradients stay float32: one step moves the parameters as the float32 step does, up to
    bfloat16's precision."""
    config = fast_config(*FAST_STEP, f"weighting/grad={name}")
    updates = {}
    for precision in ("32-true", "bf16-mixed"):
        L.seed_everything(0)
        datamodule = instantiate(config.dataset.datamodule)
        datamodule.setup("fit")
        module = build_module(config, datamodule.tasks)
        before = [p.detach().clone() for p in module.arch.shared_parameters()]
        trainer = L.Trainer(
            max_steps=1,
            precision=precision,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(module, datamodule=datamodule)
        assert all(p.grad is None or p.grad.dtype == torch.float32 for p in module.arch.shared_parameters())
        updates[precision] = torch.cat(
            [
                (b - p.detach()).reshape(-1)
                for b, p in zip(before, module.arch.shared_parameters(), strict=True)
            ]
        )
    assert torch.isfinite(updates["bf16-mixed"]).all()
    assert not torch.equal(updates["bf16-mixed"], updates["32-true"])  # bfloat16 did run
    cosine = torch.nn.functional.cosine_similarity(updates["bf16-mixed"], updates["32-true"], dim=0)
    assert cosine > 0.98, cosine


@pytest.mark.parametrize("name", ALL_METHODS)
def test_methods_make_no_host_sync(name):
    """Three calls of the method on a [T, D] matrix, profiled on CPU: no read of a tensor's value on the host
    and no op with a data-dependent output size (both would stall a GPU) — tests/test_step_syncs.py's
    criterion, applied to the methods alone."""
    task_num = 5
    method = get(name)(task_num)
    grads = torch.randn(task_num, 300, generator=torch.Generator().manual_seed(0))
    method.aggregate(grads)  # first call outside the profile: lazy set-up, if any
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for scale in (1.0, 2.0, 0.5):
            method.aggregate(grads * scale)
    syncs = [(e.name, e.cpu_parent.name if e.cpu_parent else None) for e in host_syncs(profiler.events())]
    assert syncs == [], syncs

"""One real training step (Lightning, manual optimization) against the gradients of Algorithms 1 and 2.

With plain SGD at lr=1 and no weight decay, every parameter moves by exactly minus its gradient, so the
update of a real ``trainer.fit`` step can be compared to gradients computed by hand on the same batch.
"""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from rw_mtl.build import build_module

from .conftest import fit_one_step, fit_quietly

ONE_BATCH = [
    "dataset.datamodule.train_size=32",
    "dataset.datamodule.batch_size=32",
    "dataset.optimizer={_target_:torch.optim.SGD,lr:1.0}",
]


def one_step(config):
    L.seed_everything(0)
    datamodule = instantiate(config.dataset.datamodule)
    datamodule.setup("fit")
    module = build_module(config, datamodule.tasks)
    before = copy.deepcopy(module)
    fit_one_step(module, datamodule)
    return before, module, datamodule.splits["train"]


def expected_gradients(before, loss_weights, grad_weights, data):
    """Algorithm 1 (grad_weights None) or 2: shared θ gets Σ_t w_t ∇θ(λ_t ℓ_t), heads get ∇ψ Σ λ_t ℓ_t."""
    arch = before.arch.train()
    predictions = arch(data.inputs)
    losses = torch.stack([task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()])
    weighted = loss_weights * losses
    shared, heads = arch.shared_parameters(), arch.task_parameters()
    head_grads = torch.autograd.grad(weighted.sum(), heads, retain_graph=True)
    if grad_weights is None:
        shared_grads = torch.autograd.grad(weighted.sum(), shared)
    else:
        per_task = [torch.autograd.grad(weighted[t], shared, retain_graph=True) for t in range(len(losses))]
        shared_grads = [
            sum(w * g[i] for w, g in zip(grad_weights, per_task, strict=True)) for i in range(len(shared))
        ]
    return shared_grads, head_grads


def applied_update(before_params, after_params):
    return [b.detach() - a.detach() for b, a in zip(before_params, after_params, strict=True)]


CASES = {
    "ew": ["weighting/loss=ew", "weighting/grad=none"],
    "rlw": ["weighting/loss=rlw", "weighting/grad=none"],
    "rlw-bernoulli": ["weighting/loss=rlw", "weighting.loss.hparams.distribution=bernoulli"],
    "rgw-rep": ["weighting/loss=ew", "weighting/grad=rgw"],
    "rgw-param": ["weighting/loss=ew", "weighting/grad=rgw", "weighting.grad.mode=param"],
    "rgw-param-batched": [
        "weighting/loss=ew",
        "weighting/grad=rgw",
        "weighting.grad.mode=param",
        "weighting.grad.batched_jacobian=true",
    ],
    "rlw+rgw": ["weighting/loss=rlw", "weighting/grad=rgw"],
    "uw": ["weighting/loss=uw"],
    "imtl_l+imtl_g": ["weighting/loss=imtl_l", "weighting/grad=imtl_g"],
    "mgda_ub-rep": ["weighting/loss=ew", "weighting/grad=mgda_ub"],
    "rlw+cagrad": ["weighting/loss=rlw", "weighting/grad=cagrad"],
    "uw+pcgrad": ["weighting/loss=uw", "weighting/grad=pcgrad"],
    "gradvac": ["weighting/loss=ew", "weighting/grad=gradvac"],
    "gradnorm": ["weighting/loss=ew", "weighting/grad=gradnorm"],  # param mode, epoch 0: EW (LibMTL)
    "gradnorm-original-last_layer": [
        "weighting/loss=ew",
        "weighting/grad=gradnorm",
        "weighting.grad.mode=last_layer",
        "weighting.grad.hparams.variant=original",
    ],
    "gradnorm-rep": ["weighting/loss=ew", "weighting/grad=gradnorm", "weighting.grad.mode=rep"],
    "uw+mgda_ub-last_layer": [
        "weighting/loss=uw",
        "weighting/grad=mgda_ub",
        "weighting.grad.mode=last_layer",
    ],
    "nddr_cnn+imtl_g-last_layer": [
        "arch=nddr_cnn",
        "weighting/grad=imtl_g",
        "weighting.grad.mode=last_layer",
    ],
    "rotograd": ["weighting/loss=ew", "weighting/grad=rotograd"],  # R = I at the first step
    "moml": ["weighting/loss=moml"],
    "cross_stitch+pcgrad": ["arch=cross_stitch", "weighting/grad=pcgrad"],
    "mtan+rlw+cagrad": ["arch=mtan", "weighting/loss=rlw", "weighting/grad=cagrad"],
    "nddr_cnn+rgw-param": ["arch=nddr_cnn", "weighting/grad=rgw", "weighting.grad.mode=param"],
    "moml+mgda_ub": ["weighting/loss=moml", "weighting/grad=mgda_ub"],
    "gls": ["weighting/loss=gls"],
    "stch": ["weighting/loss=stch"],
    "stch-after-warm-up+pcgrad": [
        "weighting/loss=stch",
        "weighting.loss.hparams.warmup_epoch=0",
        "weighting/grad=pcgrad",
    ],
    "famo": ["weighting/loss=famo"],
    "famo+cagrad-rep": ["weighting/loss=famo", "weighting/grad=cagrad", "weighting.grad.mode=rep"],
    "excess_mtl": ["weighting/grad=excess_mtl"],
    "uw+excess_mtl-rep": ["weighting/loss=uw", "weighting/grad=excess_mtl", "weighting.grad.mode=rep"],
    "auto_lambda": ["weighting/loss=auto_lambda"],
    "auto_lambda+imtl_g": ["weighting/loss=auto_lambda", "weighting/grad=imtl_g"],
    "forum": ["weighting/loss=forum"],
    "forum+rgw-rep": ["weighting/loss=forum", "weighting/grad=rgw"],
    "fairgrad": ["weighting/loss=ew", "weighting/grad=fairgrad"],  # mode param
    "rlw+fairgrad-rep": ["weighting/loss=rlw", "weighting/grad=fairgrad", "weighting.grad.mode=rep"],
    "sdmgrad": ["weighting/loss=ew", "weighting/grad=sdmgrad"],  # + 2 extra batches per step
    "uw+sdmgrad-rep": ["weighting/loss=uw", "weighting/grad=sdmgrad", "weighting.grad.mode=rep"],
    "rlw+modo": ["weighting/loss=rlw", "weighting/grad=modo"],
    "modo-rep": ["weighting/loss=ew", "weighting/grad=modo", "weighting.grad.mode=rep"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_step_applies_algorithm_gradients(fast_config, case):
    before, after, data = one_step(fast_config(*ONE_BATCH, *CASES[case]))
    loss_weights = after.last_loss_weights
    grad_weights = after.grad_weighting.last_weights if after.grad_weighting is not None else None
    if after.loss_weighting.__class__.__name__ == "RLW":
        assert loss_weights.sum().item() == pytest.approx(1.0)
    if after.loss_weighting.__class__.__name__ == "EW":  # LibMTL's λ = 1
        assert torch.equal(loss_weights, torch.ones_like(loss_weights))
    shared_expected, heads_expected = expected_gradients(before, loss_weights, grad_weights, data)

    shared_update = applied_update(before.arch.shared_parameters(), after.arch.shared_parameters())
    head_update = applied_update(before.arch.task_parameters(), after.arch.task_parameters())
    for got, want in zip(
        shared_update + head_update, list(shared_expected) + list(heads_expected), strict=True
    ):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)

    scales = list(before.loss_weighting.parameters())  # UW / IMTL-L: trained by Σ λ_t ℓ_t + penalty
    if before.loss_weighting.regularization() is not None:
        predictions = before.arch(data.inputs)
        losses = torch.stack([task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()])
        total = (
            before.loss_weighting.weights(losses) * losses.detach()
        ).sum() + before.loss_weighting.regularization()
        expected = torch.autograd.grad(total, scales)
        for got, want in zip(
            applied_update(scales, after.loss_weighting.parameters()), expected, strict=True
        ):
            torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


def test_last_layer_mode_weighs_by_the_last_shared_layer_gradients(fast_config):
    """The weights come from the per-task gradients on W = the encoder's last Linear (weight, bias) only."""
    from rw_mtl.weighting import get

    config = fast_config(
        *ONE_BATCH, "weighting/loss=ew", "weighting/grad=mgda_ub", "weighting.grad.mode=last_layer"
    )
    before, after, data = one_step(config)
    last = before.arch.last_shared_layer()
    linear = before.arch.encoder.stages[-1][2]
    assert [p.shape for p in last] == [linear.weight.shape, linear.bias.shape]
    predictions = before.arch.train()(data.inputs)
    losses = torch.stack([task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()])
    rows = [torch.autograd.grad(loss / 3, last, retain_graph=True) for loss in losses]
    grads = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in rows])
    reference = get("mgda_ub")(3)
    reference.aggregate(grads, losses.detach())
    torch.testing.assert_close(
        after.grad_weighting.last_weights, reference.last_weights, atol=1e-5, rtol=1e-4
    )


def test_last_layer_mode_needs_a_gram_method(fast_config):
    with pytest.raises(ValueError, match="weighting.grad.mode=param or rep"):
        build_module(fast_config("weighting/grad=graddrop", "weighting.grad.mode=last_layer"), _digit_tasks())


def _digit_tasks():
    from rw_mtl.tasks import ClassificationTask

    return {f"digit{i}": ClassificationTask(num_classes=10) for i in range(3)}


def test_rgw_leaves_head_gradients_unweighted(fast_config):
    """Algorithm 2, line 10: with EW (λ = 1) head t moves by ∇ψ_t ℓ_t whatever RGW drew."""
    before, after, data = one_step(fast_config(*ONE_BATCH, "weighting/loss=ew", "weighting/grad=rgw"))
    grad_weights = after.grad_weighting.last_weights
    assert not torch.allclose(grad_weights, torch.full_like(grad_weights, 1 / 3))
    predictions = before.arch.train()(data.inputs)
    for name, task in before.tasks.items():
        head_before, head_after = before.arch.heads[name], after.arch.heads[name]
        loss = task.loss(predictions[name], data.targets[name])
        expected = torch.autograd.grad(loss, list(head_before.parameters()))
        for got, want in zip(
            applied_update(head_before.parameters(), head_after.parameters()), expected, strict=True
        ):
            torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


def test_rep_mode_needs_a_shared_representation(fast_config):
    config = fast_config("weighting/grad=rgw")
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    module.arch.supports_rep_mode = False
    from rw_mtl.module import MTLModule

    with pytest.raises(ValueError, match="weighting.grad.mode=param"):
        MTLModule(module.arch, module.tasks, module.loss_weighting, module.grad_weighting, grad_mode="rep")


def test_moml_meta_step_leaves_batchnorm_statistics_alone(fast_config):
    """The virtual forward on a validation batch must not leak into BatchNorm's running statistics."""
    _, plain, _ = one_step(fast_config(*ONE_BATCH, "weighting/loss=ew"))
    _, meta, _ = one_step(fast_config(*ONE_BATCH, "weighting/loss=moml"))
    assert meta.loss_weighting.logits.abs().sum() > 0  # α moved
    for (name, expected), got in zip(plain.arch.named_buffers(), meta.arch.buffers(), strict=True):
        torch.testing.assert_close(got, expected, msg=name)


def test_rotograd_refuses_param_mode(fast_config):
    with pytest.raises(ValueError, match="weighting.grad.mode=rep"):
        config = fast_config("weighting/grad=rotograd", "weighting.grad.mode=param")
        build_module(config, instantiate(config.dataset.datamodule).tasks)


def test_rotograd_rotations_get_their_own_learning_rate(fast_config):
    config = fast_config("weighting/grad=rotograd", "weighting.grad.hparams.learning_rate=0.5")
    module = build_module(config, instantiate(config.dataset.datamodule).tasks)
    groups = module.configure_optimizers().param_groups
    assert [group["lr"] for group in groups] == [config.dataset.optimizer.lr, 0.5]
    assert sum(p.numel() for p in groups[1]["params"]) == 3 * 64 * 64


def test_fp16_with_gradient_method_is_refused(fast_config):
    config = fast_config(*ONE_BATCH, "weighting/grad=rgw")
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.precision_plugin.precision = "16-mixed"
    with pytest.raises(ValueError, match="bf16-mixed"):
        trainer.fit(module, datamodule=datamodule)


def test_db_mtl_step_moves_the_shared_parameters_along_its_direction(fast_config):
    """First step: the average is 0.1 × the log-loss gradients ∇(λ_t ℓ_t) / ℓ_t (EW: λ_t = 1), each
    rescaled to the largest norm; the heads get ∇ Σ λ_t ℓ_t."""
    config = fast_config(*ONE_BATCH, "weighting/loss=ew", "weighting/grad=db_mtl")
    before, after, data = one_step(config)
    arch = before.arch.train()
    predictions = arch(data.inputs)
    losses = torch.stack([task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()])
    shared = arch.shared_parameters()
    rows = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)])
            / (loss.detach() + 1e-8)
            for loss in losses
        ]
    )
    average = 0.1 * rows
    norms = average.norm(dim=1)
    expected = (norms.max() / (norms + 1e-8)) @ average
    got = torch.cat([g.reshape(-1) for g in applied_update(shared, after.arch.shared_parameters())])
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    heads = torch.autograd.grad(losses.sum(), arch.task_parameters())
    for got, want in zip(
        applied_update(arch.task_parameters(), after.arch.task_parameters()), heads, strict=True
    ):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


def test_db_mtl_refuses_rep_mode_before_anything_runs(fast_config):
    """DB-MTL declares ``modes = ("param",)``: the config check refuses rep mode, and so does building the
    module (for code that builds it without the check), naming the key and the allowed mode."""
    from rw_mtl.config_checks import validate_config

    config = fast_config(*ONE_BATCH, "weighting/grad=db_mtl", "weighting.grad.mode=rep")
    message = r"weighting/grad=db_mtl is defined for weighting.grad.mode in \['param'\] only"
    with pytest.raises(ValueError, match=message + r".*got `rep`; set weighting.grad.mode=param$"):
        validate_config(config)
    with pytest.raises(ValueError, match=r"DB_MTL is defined .* only.*set weighting.grad.mode=param"):
        build_module(config, _digit_tasks())


@pytest.mark.parametrize(("method", "default"), [("auto_lambda", 1e-4), ("forum", 1e-3)])
def test_bilevel_weights_get_their_own_learning_rate_without_decay(fast_config, method, default):
    for override, expected in (([], default), ([f"weighting.loss.hparams.learning_rate={0.5}"], 0.5)):
        config = fast_config(f"weighting/loss={method}", *override)
        module = build_module(config, instantiate(config.dataset.datamodule).tasks)
        groups = module.configure_optimizers().param_groups
        assert [group["lr"] for group in groups] == [config.dataset.optimizer.lr, expected]
        assert groups[1]["weight_decay"] == 0.0 and sum(p.numel() for p in groups[1]["params"]) == 3


@pytest.mark.parametrize("rep_gram", ["batch_sum", "per_sample"])
def test_rep_mode_gram_conventions(fast_config, rep_gram):
    """Rep mode: MGDA-UB's weights come from the Gram matrix of each task's ∇_z summed over the batch
    (LibMTL's ``_get_grads``, the default) or of the flattened per-sample gradients (the original code)."""
    from rw_mtl.weighting import get

    config = fast_config(
        *ONE_BATCH, "weighting/loss=ew", "weighting/grad=mgda_ub", f"weighting.grad.rep_gram={rep_gram}"
    )
    before, after, data = one_step(config)
    arch = before.arch.train()
    rep = arch.encode(data.inputs)
    leaf = rep.detach().requires_grad_(True)
    predictions = arch.decode(leaf)
    losses = [task.loss(predictions[n], data.targets[n]) for n, task in before.tasks.items()]
    weights = after.last_loss_weights
    per_sample = torch.stack(
        [
            torch.autograd.grad(w * loss, leaf, retain_graph=True)[0]
            for w, loss in zip(weights, losses, strict=True)
        ]
    )  # [T, B, F]
    rows = per_sample.sum(dim=1) if rep_gram == "batch_sum" else per_sample.flatten(1)
    expected = get("mgda_ub")(3).gram_weights(rows @ rows.T, None)
    torch.testing.assert_close(after.grad_weighting.last_weights, expected, atol=1e-5, rtol=1e-4)
    other = per_sample.flatten(1) if rep_gram == "batch_sum" else per_sample.sum(dim=1)
    assert not torch.allclose(get("mgda_ub")(3).gram_weights(other @ other.T, None), expected, atol=1e-3)


def test_unknown_rep_gram_is_refused(fast_config):
    from rw_mtl.config_checks import validate_config

    with pytest.raises(
        ValueError, match=r"weighting.grad.rep_gram must be one of \['batch_sum', 'per_sample'\]"
    ):
        validate_config(fast_config("weighting/grad=mgda_ub", "weighting.grad.rep_gram=summed"))


BF16_STEPS = {
    "gls": ["weighting/loss=gls"],
    "stch+pcgrad": ["weighting/loss=stch", "weighting.loss.hparams.warmup_epoch=0", "weighting/grad=pcgrad"],
    "famo": ["weighting/loss=famo"],
    "rlw+excess_mtl-rep": ["weighting/loss=rlw", "weighting/grad=excess_mtl", "weighting.grad.mode=rep"],
    "uw+db_mtl": ["weighting/loss=uw", "weighting/grad=db_mtl"],
    "auto_lambda": ["weighting/loss=auto_lambda"],
    "forum+mgda_ub": [
        "weighting/loss=forum",
        "weighting/grad=mgda_ub",
        "weighting.loss.hparams.inner_steps=2",
    ],
}


@pytest.mark.parametrize("case", sorted(BF16_STEPS))
def test_new_loss_based_methods_step_under_bf16_mixed(fast_config, case):
    """Two real steps under bf16-mixed autocast: the methods' algebra (log losses, meta steps, running
    gradient state, FAMO's update) stays float32, every parameter keeps its dtype and moves, finitely."""
    config = fast_config(*ONE_BATCH, *BF16_STEPS[case], "dataset.optimizer.lr=0.01")
    L.seed_everything(0)
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    fit_quietly(module, datamodule, max_steps=2, precision="bf16-mixed")
    for name, param in module.named_parameters():
        assert param.dtype == torch.float32 and torch.isfinite(param).all(), name
    shared = {id(p) for p in module.arch.shared_parameters()}
    moved = [not torch.equal(p, before[n]) for n, p in module.named_parameters() if id(p) in shared]
    assert moved and all(moved)
    assert torch.isfinite(module.last_loss_weights).all()
    for buffer in module.loss_weighting.buffers():
        assert torch.isfinite(buffer.float()).all()

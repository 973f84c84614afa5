"""A gradient method's ``extra_batches`` (SDMGrad, MoDo): the training step draws that many further training
batches from the data module's training loader every step and hands their per-task gradients, taken in the
step's mode and with its λ, to the method as ``TaskGradients.extra``."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from rw_mtl.build import build_datamodule, build_module
from rw_mtl.training.batches import split_in_halves
from rw_mtl.weighting.base import GramWeighting
from rw_mtl.weighting.interface import Combination
from rw_mtl.weighting.simplex import project_to_simplex

from .conftest import compose_config, fit_one_step
from .datasets import tiny_dataset_overrides

BATCH = 16
SMALL = [
    "dataset.datamodule.train_size=64",
    f"dataset.datamodule.batch_size={BATCH}",
    "dataset.optimizer={_target_:torch.optim.SGD,lr:0.1}",
]


class RecordsExtraBatches(GramWeighting):
    """Equal weights; records G of the step's batch and of its two extra batches, and λ."""

    extra_batches = 2
    needs_gram = False
    seen: list = []

    def combine(self, grads, losses):
        extra = [batch.matrix.clone() for batch in grads.extra]
        RecordsExtraBatches.seen.append((grads.matrix.clone(), extra, grads.loss_weights.clone()))
        return Combination(weights=torch.ones(self.task_num, device=grads.matrix.device))


def _per_task_gradients(module, inputs, targets, loss_weights, mode):
    """G of λ_t ℓ_t on one batch at ``module``'s parameters, w.r.t. θ (param) or z (rep)."""
    arch = module.arch.train()
    if mode == "param":
        predictions, wrt = arch(inputs), [p for p in arch.shared_parameters() if p.requires_grad]
    else:
        leaf = arch.encode(inputs).detach().requires_grad_(True)
        predictions, wrt = arch.decode(leaf, list(module.tasks)), [leaf]
    rows = []
    for weight, (name, task) in zip(loss_weights, module.tasks.items(), strict=True):
        loss = weight * task.loss(predictions[name], targets[name])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, wrt, retain_graph=True)]))
    return torch.stack(rows)


def _recording_config(fast_config, recorder: type, mode: str):
    """The small model with RLW's losses and ``recorder`` (a gradient method of this file that records what
    the step hands it) as the custom gradient method in ``mode``."""
    return fast_config(
        *SMALL,
        "weighting/loss=rlw",
        "weighting/grad=custom",
        f"weighting.grad.target={__name__}.{recorder.__name__}",
        f"weighting.grad.mode={mode}",
    )


def _half_losses(module, train, k: int) -> torch.Tensor:
    """The [T] losses of half ``k`` (0 or 1) of the first BATCH training samples, with their graph."""
    part = slice(k * BATCH // 2, (k + 1) * BATCH // 2)
    predictions = module.arch.train()(train.inputs[part])
    return torch.stack(
        [task.loss(predictions[name], train.targets[name][part]) for name, task in module.tasks.items()]
    )


def _in_known_order(config):
    """The seeded datamodule (its training loader unshuffled, in BATCH-sized batches), its training split,
    the module, and a copy of the module before any step."""
    L.seed_everything(0)
    datamodule = instantiate(config.dataset.datamodule)
    datamodule.setup("fit")
    train = datamodule.splits["train"]
    datamodule.train_dataloader = lambda: DataLoader(train, BATCH, shuffle=False)  # a known order
    module = build_module(config, datamodule.tasks)
    return datamodule, train, module, copy.deepcopy(module)


def _record_batch_sizes(module) -> list[int]:
    """The number of samples of every input the encoder sees from now on."""
    encode, sizes = module.arch.encode, []
    module.arch.encode = lambda inputs: sizes.append(len(inputs)) or encode(inputs)
    return sizes


@pytest.mark.parametrize("mode", ["param", "rep"])
def test_step_hands_the_next_training_batches_to_the_method(fast_config, mode):
    config = _recording_config(fast_config, RecordsExtraBatches, mode)
    datamodule, train, module, before = _in_known_order(config)
    RecordsExtraBatches.seen = []
    fit_one_step(module, datamodule)

    ((main, extra, loss_weights),) = RecordsExtraBatches.seen
    assert not torch.allclose(loss_weights, loss_weights.mean().expand(3))  # RLW: λ is a random draw
    torch.testing.assert_close(loss_weights, module.last_loss_weights)
    # the step's loop and the extra batches' endless pass are two iterators over the same loader: the
    # step trains on batch 0, the extra batches are batches 0 and 1 of the extra pass
    batches = [(train.inputs[k * BATCH : (k + 1) * BATCH], k) for k in range(2)]
    expected = [
        _per_task_gradients(
            before,
            inputs,
            {name: y[k * BATCH : (k + 1) * BATCH] for name, y in train.targets.items()},
            loss_weights,
            mode,
        )
        for inputs, k in batches
    ]
    torch.testing.assert_close(main, expected[0], atol=1e-6, rtol=1e-4)
    assert len(extra) == 2
    for got, want in zip(extra, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)
    assert not torch.allclose(extra[0], extra[1])


def test_rep_mode_extra_batches_run_the_encoder_without_a_graph(fast_config):
    """Their G stops at z, so recording the encoder's graph would cost memory and time for nothing (issue 11's
    SDMGrad/MoDo step time); the step's own batch keeps its graph, which the combined z-gradient traverses."""
    config = fast_config(*SMALL, "weighting/grad=sdmgrad", "weighting.grad.mode=rep")
    L.seed_everything(0)
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    encode, recorded = module.arch.encode, []

    def recording_encode(inputs):
        rep = encode(inputs)
        recorded.append(rep.grad_fn is not None)
        return rep

    module.arch.encode = recording_encode
    fit_one_step(module, datamodule)
    assert recorded == [True, False, False]


@pytest.mark.parametrize("loss", ["ew", "rlw"])
def test_halves_take_the_cross_products_from_the_steps_own_batch(fast_config, loss):
    """``sampling=halves``: no extra batch is drawn (the encoder runs once a step) and MoDo's weights move
    along C = N/h · G(first half) G(second half)ᵀ of the step's own rep-mode G, read at LibMTL's scale."""
    gamma = 100.0  # rep mode's per-sample pairs make C ~1e-4 on this model
    config = fast_config(
        *SMALL,
        f"weighting/loss={loss}",
        "weighting/grad=modo",
        "weighting.grad.mode=rep",
        "weighting.grad.hparams.sampling=halves",
        f"weighting.grad.hparams.gamma={gamma}",
        "weighting.grad.hparams.rho=0",
    )
    datamodule, train, module, before = _in_known_order(config)
    calls = _record_batch_sizes(module)
    fit_one_step(module, datamodule)

    assert calls == [BATCH]
    loss_weights = module.last_loss_weights
    targets = {name: y[:BATCH] for name, y in train.targets.items()}
    grads = _per_task_gradients(before, train.inputs[:BATCH], targets, loss_weights, "rep")
    half = grads.shape[1] // 2
    cross = 2 * grads[:, :half] @ grads[:, half:].T / loss_weights.mean() ** 2
    start = torch.full((3,), 1 / 3)
    expected = project_to_simplex(start - gamma * cross @ start)
    assert not torch.allclose(expected, start, atol=1e-3)  # the step moved the weights
    torch.testing.assert_close(module.grad_weighting.lambd, expected, atol=1e-6, rtol=1e-4)


class RecordsHalves(GramWeighting):
    """Equal weights; records G of the step, the halves' own gradients the step hands over and its losses."""

    batch_halves = True
    needs_gram = False
    seen: list = []

    def combine(self, grads, losses):
        extra = [half.matrix.clone() for half in grads.extra]
        RecordsHalves.seen.append((grads.matrix.clone(), extra, losses.clone()))
        return Combination(weights=torch.ones(self.task_num, device=grads.matrix.device))


@pytest.mark.parametrize("mode", ["param", "last_layer"])
def test_outside_rep_mode_the_halves_run_one_after_the_other(fast_config, mode):
    """``batch_halves`` in param / last_layer mode: the encoder runs on each half of the step's batch, the
    method gets each half's own G(ξ_h) as ``extra`` and G of their mean loss, and the step's losses are
    the halves' means — the gradients of one process running each half through the model alone."""
    config = _recording_config(fast_config, RecordsHalves, mode)
    datamodule, train, module, before = _in_known_order(config)
    calls = _record_batch_sizes(module)
    RecordsHalves.seen = []
    fit_one_step(module, datamodule)

    assert calls == [BATCH // 2, BATCH // 2]
    ((main, halves, losses),) = RecordsHalves.seen
    assert len(halves) == 2
    torch.testing.assert_close(main, (halves[0] + halves[1]) / 2)
    # the step's losses are the halves' means
    task_losses = (_half_losses(before, train, 0) + _half_losses(before, train, 1)) / 2
    torch.testing.assert_close(losses, task_losses.detach(), atol=1e-6, rtol=1e-5)
    if mode == "param":
        loss_weights = module.last_loss_weights
        for k, got in enumerate(halves):
            part = slice(k * BATCH // 2, (k + 1) * BATCH // 2)
            targets = {name: y[part] for name, y in train.targets.items()}
            expected = _per_task_gradients(before, train.inputs[part], targets, loss_weights, "param")
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)
        assert not torch.allclose(halves[0], halves[1])
        # the heads took one SGD step (lr 0.1) along the gradient of the halves' mean loss
        mean_loss = (loss_weights * task_losses).sum()
        start = before.task_specific_parameters()
        for after, initial, grad in zip(
            module.task_specific_parameters(), start, torch.autograd.grad(mean_loss, start), strict=True
        ):
            torch.testing.assert_close(after, initial - 0.1 * grad, atol=1e-6, rtol=1e-4)


def test_halves_need_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples.*sampling=batches"):
        split_in_halves({"inputs": torch.ones(1, 3), "targets": {"a": torch.ones(1)}})
    first, second = split_in_halves({"inputs": torch.arange(5), "targets": {"a": [torch.arange(5)]}, "n": 5})
    assert first["inputs"].tolist() == [0, 1] and first["targets"]["a"][0].tolist() == [0, 1]
    assert second["inputs"].tolist() == [2, 3, 4] and second["targets"]["a"][0].tolist() == [2, 3, 4]
    assert first["n"] == second["n"] == 5  # not a tensor: kept as it is


def test_a_model_failing_on_a_half_names_the_fix(fast_config):
    """BatchNorm on 1×1 features (NYUv2's ASPP image pooling) cannot train on a 1-sample half."""
    config = fast_config(
        "dataset.datamodule.train_size=8",
        "dataset.datamodule.batch_size=2",
        "weighting/grad=modo",
        "weighting.grad.hparams.sampling=halves",
    )
    L.seed_everything(0)
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    encode = module.arch.encode

    def needs_two_samples(inputs):
        if len(inputs) < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        return encode(inputs)

    module.arch.encode = needs_two_samples
    with pytest.raises(ValueError, match="two halves.*more than 1 value.*sampling=batches"):
        fit_one_step(module, datamodule)


@pytest.mark.parametrize("dataset", ["office31", "xtreme_pi"])
def test_halves_split_every_batch_format(tmp_path, dataset):
    """Multi-input batches (a batch per task) and dict inputs (token ids and masks) split into halves too:
    one param-mode step of SDMGrad moves its weights w from 1/T by the halves' cross products."""
    config = compose_config(
        [
            f"dataset={dataset}",
            *tiny_dataset_overrides(dataset, tmp_path / "data"),
            "weighting/grad=sdmgrad",
            "weighting.grad.hparams.sampling=halves",
            "logger=none",
        ],
        output_dir=tmp_path / "run",
    )
    L.seed_everything(0)
    datamodule = build_datamodule(config)
    module = build_module(config, datamodule.tasks, multi_input=getattr(datamodule, "multi_input", False))
    encode, sizes = module.arch.encode, []

    def recording_encode(inputs):
        first = inputs if isinstance(inputs, torch.Tensor) else next(iter(inputs.values()))
        sizes.append(len(first))
        return encode(inputs)

    module.arch.encode = recording_encode
    fit_one_step(module, datamodule)
    assert config.dataset.datamodule.batch_size == 4 and sizes and set(sizes) == {2}
    weights = module.grad_weighting.w
    assert torch.isfinite(weights).all()
    assert not torch.allclose(weights, torch.full_like(weights, 1 / len(weights)), atol=1e-4)


def test_famo_compares_the_losses_as_the_step_took_them(fast_config):
    """With the batch run as two halves, the step's losses are the halves' means (each half with its own
    BatchNorm statistics); FAMO's re-evaluation after the step must take them the same way. With a model
    learning rate of 0 nothing moves, so the loss change δ and FAMO's logits stay exactly 0."""
    config = fast_config(
        *SMALL[:2],
        "dataset.optimizer={_target_:torch.optim.SGD,lr:0.0}",
        "weighting/loss=famo",
        "weighting/grad=modo",
        "weighting.grad.hparams.sampling=halves",
    )
    L.seed_everything(0)
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())
    fit_one_step(module, datamodule)
    assert int(module.loss_weighting.updates) == 1
    torch.testing.assert_close(module.loss_weighting.logits, torch.zeros(3), atol=0, rtol=0)

"""Details of the weighting contracts, the embedded benchmark and the report that mutation testing (`make
mutate`, docs/testing.md) showed no test pinned down: error messages that name the fix, dtypes that follow
the inputs, views and offsets, determinism of the data seed, constructor defaults = config files."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from rw_mtl.data.multi_digits import MultiDigitsDataModule, MultiTaskTensorDataset, compose_digits
from rw_mtl.tasks import SurfaceNormalTask
from rw_mtl.weighting import get
from rw_mtl.weighting.base import (
    GradWeighting,
    LossWeighting,
    backward_into_own_parameters,
    own_parameters,
)
from rw_mtl.weighting.interface import Combination, TaskGradients, surrogate_loss

T = torch.tensor
LOSS_METHODS = ["ew", "rlw", "uw", "dwa", "imtl_l", "moml"]


# --------------------------------------------------------------------------------------- loss methods
@pytest.mark.parametrize("name", LOSS_METHODS)
def test_loss_methods_name_the_task_count_they_were_built_for(name):
    with pytest.raises(
        ValueError, match=rf"{type(get(name)(3)).__name__} was built for 3 tasks but got losses for 4"
    ):
        get(name)(3).weights(torch.ones(4))


@pytest.mark.parametrize(("name", "total"), [("ew", 3.0), ("rlw", 1.0), ("moml", 1.0)])
def test_fixed_weights_follow_the_losses_dtype_and_carry_no_gradient(name, total):
    """EW's default weight_sum (ew.yaml: tasks): λ_t = 1, Σλ = T; RLW's draws, MOML's softmax sum to 1."""
    losses = torch.ones(3, dtype=torch.float64, requires_grad=True)
    weights = get(name)(3).weights(losses)
    assert weights.dtype == torch.float64 and not weights.requires_grad
    assert weights.sum().item() == pytest.approx(total)


def test_moml_keeps_its_learning_rate_for_its_own_group():
    assert get("moml")(3).learning_rate == 1e-3 and get("moml")(3, learning_rate=0.25).learning_rate == 0.25


def test_task_num_must_be_a_positive_int():
    for bad in (0, 2.0, "3"):
        with pytest.raises(ValueError, match="task_num must be a positive int"):
            get("ew")(bad)


def test_loss_method_without_meta_step_says_so():
    class NeedsValidation(LossWeighting):
        needs_validation_batch = True

    with pytest.raises(
        NotImplementedError, match="NeedsValidation sets needs_validation_batch but has no meta_step"
    ):
        NeedsValidation(2).meta_step(None)


# ------------------------------------------------------------------------------------- the interface
def test_task_gradients_per_sample_view_and_its_mode():
    matrix = torch.arange(24.0).reshape(2, 12)
    grads = TaskGradients(matrix, sample_shape=(2, 3))
    per_sample = grads.per_sample()
    assert per_sample.shape == (2, 2, 2, 3) and torch.equal(per_sample[1, 1, 0], T([18.0, 19.0, 20.0]))
    with pytest.raises(ValueError, match="weighting.grad.mode=rep"):
        TaskGradients(matrix).per_sample()


def test_task_gradients_take_exactly_one_float_matrix_and_compute_once():
    with pytest.raises(ValueError, match="exactly one of matrix and matrix_fn"):
        TaskGradients()
    with pytest.raises(ValueError, match="exactly one of matrix and matrix_fn"):
        TaskGradients(torch.ones(2, 2), matrix_fn=lambda: torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"float \[T, D\] matrix, got \(2,\) torch.int64"):
        TaskGradients(T([1, 2]))
    calls = []
    grads = TaskGradients(matrix_fn=lambda: calls.append(1) or T([[1.0, 2.0], [0.0, 3.0]]))
    torch.testing.assert_close(grads.gram(), T([[5.0, 6.0], [6.0, 9.0]]))
    assert grads.matrix is grads.matrix and len(calls) == 1
    assert TaskGradients(torch.eye(2), gram_fn=lambda: torch.full((2, 2), 7.0)).gram()[0, 1].item() == 7.0


def test_combination_contributions_and_directions():
    matrix = T([[1.0, 2.0], [3.0, -1.0]])
    weights = Combination(weights=T([0.5, 2.0], dtype=torch.float64))
    torch.testing.assert_close(weights.contributions_for(matrix), T([[0.5, 1.0], [6.0, -2.0]]))
    torch.testing.assert_close(weights.direction_for(matrix), T([6.5, -1.0]))
    per_task = Combination(per_task=T([[1.0, 0.0], [0.0, 4.0]]))
    assert torch.equal(per_task.contributions_for(matrix), per_task.per_task)
    torch.testing.assert_close(per_task.direction_for(matrix), T([1.0, 4.0]))
    direction = Combination(direction=T([9.0, 9.0]))
    assert direction.kind == "direction" and torch.equal(direction.direction_for(matrix), T([9.0, 9.0]))
    with pytest.raises(ValueError, match="a method that returns a direction has no per-task contributions"):
        direction.contributions_for(matrix)
    with pytest.raises(
        ValueError, match=r"exactly one of weights, per_task, direction; got \['weights', 'direction'\]"
    ):
        _ = Combination(weights=T([1.0]), direction=T([1.0])).kind


def test_surrogate_loss_hands_its_gradient_in_the_parameters_dtype():
    parameter = torch.zeros(3, requires_grad=True)
    loss = surrogate_loss(parameter, T([1.0, -2.0, 0.5], dtype=torch.float64))
    assert loss.dtype == torch.float32
    (grad,) = torch.autograd.grad(loss, parameter)
    torch.testing.assert_close(grad, T([1.0, -2.0, 0.5]))


def test_grad_method_must_return_what_it_declares():
    class Lies(GradWeighting):
        def combine(self, grads, losses):
            return Combination(direction=grads.matrix.sum(0))

    with pytest.raises(
        TypeError, match="Lies.combine returned direction, but the class says it produces weights"
    ):
        Lies(2).aggregate(torch.eye(2))

    class Unknown(GradWeighting):
        produces = "something"

    with pytest.raises(TypeError, match="Unknown.produces must be one of weights, per_task, direction"):
        Unknown(2)


def test_method_loss_needs_trainable_parameters():
    method = get("ew")(2)
    assert own_parameters(method) == []
    backward_into_own_parameters(method, None)  # nothing to do
    with pytest.raises(ValueError, match="EW returned a method loss but has no trainable parameters"):
        backward_into_own_parameters(method, torch.ones((), requires_grad=True))
    uw = get("uw")(2)
    backward_into_own_parameters(uw, (uw.log_variance * T([1.0, 3.0])).sum())
    torch.testing.assert_close(uw.log_variance.grad, T([1.0, 3.0]))


# ---------------------------------------------------------------------------------------- the tasks
def test_surface_normals_are_upsampled_to_the_label_size():
    prediction = torch.randn(1, 3, 2, 3)
    aligned = SurfaceNormalTask().align(prediction, torch.zeros(1, 3, 4, 6))
    assert aligned.shape == (1, 3, 4, 6)
    torch.testing.assert_close(aligned[..., 0, 0], prediction[..., 0, 0])  # corners kept (align_corners)
    torch.testing.assert_close(aligned[..., -1, -1], prediction[..., -1, -1])


# ------------------------------------------------------------------------------------- multi_digits
def test_multi_task_dataset_items_and_length_check():
    dataset = MultiTaskTensorDataset(torch.arange(6.0).reshape(3, 2), {"a": T([1, 2, 3]), "b": T([4, 5, 6])})
    assert len(dataset) == 3
    item = dataset[1]
    assert set(item) == {"inputs", "targets"} and torch.equal(item["inputs"], T([2.0, 3.0]))
    assert {task: target.item() for task, target in item["targets"].items()} == {"a": 2, "b": 5}
    with pytest.raises(ValueError, match="every task needs one target per input"):
        MultiTaskTensorDataset(torch.zeros(3, 2), {"a": T([1, 2])})


def test_compose_digits_overlays_shifted_digits_scaled_to_one():
    images = np.stack([np.full((8, 8), 16.0), np.full((8, 8), 8.0)])
    inputs, labels = compose_digits(images, np.array([3, 7]), 50, 2, 3, np.random.default_rng(0))
    assert inputs.shape == (50, 1, 11, 11) and labels.shape == (50, 2)
    assert set(labels.flatten().tolist()) == {3, 7}  # both source digits are drawn, index 0 included
    first = labels[:, 0] == 3
    assert torch.all(inputs[first, 0, 0, 0] == 1.0) and torch.all(inputs[~first, 0, 0, 0] == 0.5)
    assert torch.all(inputs[:, 0, 0, 10] == 0.0)  # outside both digits


def test_data_seed_fixes_the_composites():
    def inputs(seed):
        datamodule = MultiDigitsDataModule(train_size=20, val_size=5, test_size=5, data_seed=seed)
        datamodule.setup()
        return datamodule.splits["train"].inputs

    assert torch.equal(inputs(3), inputs(3)) and not torch.equal(inputs(3), inputs(4))


# ------------------------------------------------------------------------------ constructor arguments
def _yaml_hparams(kind: str, name: str) -> dict:
    import yaml

    from rw_mtl.resources import CONFIG_DIR

    text = (Path(CONFIG_DIR) / "weighting" / kind / f"{name}.yaml").read_text()
    return yaml.safe_load(text).get("hparams") or {}


@pytest.mark.parametrize(
    ("kind", "name"),
    [("loss", n) for n in LOSS_METHODS]
    + [
        ("grad", n)
        for n in [
            "rgw",
            "mgda_ub",
            "gradnorm",
            "pcgrad",
            "graddrop",
            "imtl_g",
            "gradvac",
            "cagrad",
            "rotograd",
        ]
    ],
)
def test_constructor_defaults_are_the_config_files(kind, name):
    """A method built without arguments is the method of its YAML file: every hparam the YAML names is a
    constructor argument with the YAML's value as its default."""
    defaults = {
        key: parameter.default
        for key, parameter in inspect.signature(get(name).__init__).parameters.items()
        if key not in ("self", "task_num")
    }
    expected = _yaml_hparams(kind, name)
    assert set(expected) <= set(defaults), f"{name}: YAML hparams the constructor lacks"
    assert {key: defaults[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        (
            "cagrad",
            {"c": -0.1},
            r"CAGrad needs c >= 0 and rescale in \(0, 1, 2\) \(rw_mtl/conf/weighting/grad/cagrad"
            r".yaml\), got c=-0.1, rescale=1",
        ),
        ("cagrad", {"rescale": 3}, r"got c=0.5, rescale=3"),
        (
            "graddrop",
            {"leak": 1.5},
            r"GradDrop leak must be in \[0, 1\] \(rw_mtl/conf/weighting/grad/graddrop.yaml\), got 1.5",
        ),
        ("graddrop", {"leak": -0.5}, r"got -0.5"),
        (
            "gradvac",
            {"beta": 1.5},
            r"GradVac beta must be in \[0, 1\] \(rw_mtl/conf/weighting/grad/gradvac.yaml\), got 1.5",
        ),
        (
            "dwa",
            {"temperature": 0.0},
            r"DWA needs temperature > 0 and weight_sum in \('tasks', 'one'\) "
            r"\(rw_mtl/conf/weighting/loss/dwa.yaml\), got 0.0, 'tasks'",
        ),
        ("dwa", {"weight_sum": "all"}, r"\(rw_mtl/conf/weighting/loss/dwa.yaml\), got 2.0, 'all'"),
        (
            "ew",
            {"weight_sum": "all"},
            r"EW: weighting.loss.hparams.weight_sum must be one of \('tasks', 'one'\) "
            r"\(rw_mtl/conf/weighting/loss/ew.yaml\), got 'all'",
        ),
        (
            "rotograd",
            {"rotation_size": 0},
            r"rotation_size must be null \(every channel\) or >= 1 "
            r"\(rw_mtl/conf/weighting/grad/rotograd.yaml\), got 0",
        ),
        ("rlw", {"distribution": "gauss"}, r"weighting.loss.hparams.distribution \(RLW\)"),
    ],
)
def test_bad_hparams_name_the_config_file(name, arguments, message):
    with pytest.raises(ValueError, match=message):
        get(name)(2, **arguments)


def test_boundary_hparams_are_accepted():
    assert get("graddrop")(2, leak=1.0).leak == 1.0 and get("gradvac")(2, beta=0.0).beta == 0.0
    assert (
        get("cagrad")(2, c=0.0, rescale=2).rescale == 2
        and get("rotograd")(2, rotation_size=1).rotation_size == 1
    )
    assert get("rlw")(2, distribution="dirichlet").distribution == "dirichlet"


@pytest.mark.parametrize("name", ["gradnorm", "mgda_ub"])
def test_methods_reading_losses_check_them(name):
    arguments = {"normalization": "loss"} if name == "mgda_ub" else {}
    with pytest.raises(
        ValueError, match=rf"{type(get(name)(2, **arguments)).__name__} needs the per-task losses"
    ):
        get(name)(2, **arguments).aggregate(torch.eye(2))
    with pytest.raises(ValueError, match="built for 2 tasks but got losses for 3 tasks"):
        get(name)(2, **arguments).aggregate(torch.eye(2), torch.ones(3))


def test_dwa_checks_epoch_losses_and_follows_the_losses_dtype():
    method = get("dwa")(2)
    with pytest.raises(ValueError, match="built for 2 tasks but got epoch losses for 3 tasks"):
        method.epoch_end(torch.ones(3))
    method.epoch_end(T([2.0, 1.0], dtype=torch.float64))
    method.epoch_end(T([1.0, 1.0], dtype=torch.float64))
    weights = method.weights(torch.ones(2, dtype=torch.float64))
    assert weights.dtype == torch.float64 and method.epochs_seen.dtype == torch.long
    # dwa.yaml: weight_sum tasks (λ = T · softmax(r / temperature)), temperature 2; r = L(k−1) / L(k−2)
    torch.testing.assert_close(weights, 2 * torch.softmax(T([0.5, 1.0], dtype=torch.float64) / 2, dim=0))


def test_rlw_draws_in_the_losses_dtype():
    assert get("rlw")(3).weights(torch.ones(3, dtype=torch.float64)).dtype == torch.float64

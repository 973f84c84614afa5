"""Bad input fails early and clearly, faults are contained, runs are reproducible and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rw_mtl import build
from rw_mtl.choices import GRAD_MODES
from rw_mtl.config_checks import validate_config
from rw_mtl.data.files import DatasetError
from rw_mtl.module import NonFiniteError
from rw_mtl.train import run
from rw_mtl.weighting.registry import GRAD_METHODS

from .conftest import FAST_TRAINER, compose_config
from .recompute import assert_beats_untrained, untrained_metrics


# ------------------------------------------------------------------------------------------ bad configs
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["~dataset.optimizer"],
            r"missing config key `dataset.optimizer`: set it in rw_mtl/conf/dataset/<name>.yaml",
        ),
        (
            ["weighting.loss.name=nope"],
            r"weighting/loss: unknown method `nope`; valid choices: \['auto_lambda', 'custom', 'dwa', 'ew'",
        ),
        (
            ["weighting.grad.name=nope"],
            r"weighting/grad: unknown method `nope`; valid choices: \['aligned_mtl', 'cagrad'",
        ),
        (["weighting/grad=pcgrad", "trainer.precision=16-mixed"], r"trainer.precision=bf16-mixed or 32-true"),
        (
            ["weighting/grad=rgw", "weighting.grad.mode=z"],
            r"weighting.grad.mode in \['param', 'rep', 'last_layer'\] only, got `z`; "
            r"set weighting.grad.mode=param",
        ),
        (["on_nonfinite=ignore"], r"on_nonfinite must be one of \['raise', 'skip', 'off'\]"),
    ],
)
def test_bad_config_fails_before_anything_is_written(fast_config, overrides, message):
    config = fast_config(*overrides)
    with pytest.raises(ValueError, match=message):
        validate_config(config)
    with pytest.raises(ValueError, match=message):
        run(config)
    assert not Path(config.paths.output_dir).exists()


@pytest.mark.parametrize("name", sorted(GRAD_METHODS))
def test_every_gradient_method_passes_the_config_check_in_its_default_mode(fast_config, name):
    config = fast_config(f"weighting/grad={name}")
    assert config.weighting.grad.mode in GRAD_METHODS[name].supported_modes()
    validate_config(config)


def test_the_config_check_refuses_exactly_the_modes_a_method_does_not_support(fast_config):
    """Every registered method × every mode on an architecture with a shared representation: accepted
    iff the method supports the mode (its ``modes``, less last_layer for methods that do not return task
    weights, rep alone for RotoGrad), refused with the allowed modes and the key to set."""
    base = fast_config()
    refused = {}
    for name, method in sorted(GRAD_METHODS.items()):
        for mode in GRAD_MODES:
            config = base.copy()
            config.weighting.grad.name, config.weighting.grad.mode = name, mode
            try:
                validate_config(config)
            except ValueError as error:
                allowed = method.supported_modes()
                assert f"weighting.grad.mode in {list(allowed)} only" in str(error)
                assert str(error).endswith(f"set weighting.grad.mode={' or '.join(allowed)}")
                refused.setdefault(name, []).append(mode)
    assert refused == {
        "db_mtl": ["rep", "last_layer"],
        "graddrop": ["last_layer"],
        "moco": ["rep", "last_layer"],
        "rotograd": ["param", "last_layer"],
        "trimmed_mean": ["last_layer"],
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["weighting/grad=moco", "weighting.grad.mode=rep"], r"\['param'\] only, got `rep`"),
        (["weighting/grad=graddrop", "weighting.grad.mode=last_layer"], r"not task weights.*=param or rep$"),
        (["weighting/grad=rotograd", "weighting.grad.mode=param"], r"transforms the shared representation"),
    ],
)
def test_unsupported_modes_are_refused_with_the_reason(fast_config, overrides, message):
    with pytest.raises(ValueError, match=message):
        validate_config(fast_config(*overrides))


def test_a_direction_method_in_rep_mode_is_refused_on_multi_input_data(tmp_path):
    """Office-31 gives every task its own images and z_t: one direction cannot be split over them."""
    overrides = ["dataset=office31", "weighting/grad=trimmed_mean", "weighting.grad.mode=rep"]
    message = r"trimmed_mean gives one direction.*multi-input dataset; set weighting.grad.mode=param"
    with pytest.raises(ValueError, match=message):
        validate_config(compose_config(overrides, output_dir=tmp_path))
    validate_config(compose_config([*overrides[:2], "weighting.grad.mode=param"], output_dir=tmp_path))
    weights = [overrides[0], "weighting/grad=imtl_g", overrides[2]]  # a method returning weights: fine
    validate_config(compose_config(weights, output_dir=tmp_path))


def test_rep_mode_on_architecture_without_shared_representation_is_refused(fast_config, monkeypatch):
    monkeypatch.setattr("rw_mtl.arch.hps.HPS.supports_rep_mode", False)
    with pytest.raises(ValueError, match="weighting.grad.mode=param"):
        run(fast_config("weighting/grad=rgw"))


def test_missing_dataset_leaves_outputs_untouched(tmp_path):
    overrides = [
        "dataset=nyuv2",
        f"paths.data_dir={tmp_path / 'nowhere'}",
        "dataset.encoder.pretrained=false",
    ]
    config = compose_config([*FAST_TRAINER, *overrides], output_dir=tmp_path / "outputs" / "run")
    earlier = tmp_path / "outputs" / "earlier" / "results.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"kept": true}')
    with pytest.raises(DatasetError, match="scripts/prepare_nyuv2.py"):
        run(config)
    assert json.loads(earlier.read_text()) == {"kept": True}
    assert not Path(config.paths.output_dir).exists()


# ------------------------------------------------------------------------------------- non-finite values
class _NaNGradient(torch.autograd.Function):
    """Identity whose backward turns a non-zero incoming gradient into NaN (and leaves zeros alone, so
    only this task's gradient row is poisoned)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.where(grad != 0, torch.full_like(grad, float("nan")), grad)


def _poison(monkeypatch, task: str, at_call: int, kind: str = "loss", error: type[Exception] | None = None):
    """Make ``task``'s training loss (or only its gradient) non-finite — or raise ``error`` — on the
    ``at_call``-th training step."""
    build_module = build.build_module
    calls = {"n": 0}

    def patched_build(cfg, tasks, **options):
        module = build_module(cfg, tasks, **options)
        original = module.tasks[task].loss

        def loss(prediction, target):
            value = original(prediction, target)
            if not torch.is_grad_enabled():
                return value
            calls["n"] += 1
            if calls["n"] != at_call:
                return value
            if error is not None:
                raise error("simulated crash")
            if kind == "loss":
                return value * float("nan")
            return original(_NaNGradient.apply(prediction), target)  # finite value, NaN gradient

        module.tasks[task].loss = loss
        return module

    monkeypatch.setattr(build, "build_module", patched_build)
    return calls


def test_nonfinite_loss_stops_with_task_and_step(fast_config, monkeypatch):
    _poison(monkeypatch, "digit1", at_call=3)
    with pytest.raises(
        NonFiniteError, match=r"non-finite loss for task\(s\) \['digit1'\] at step 2; set on_nonfinite=skip"
    ):
        run(fast_config())


def test_nonfinite_loss_skipped_on_request(fast_config, monkeypatch):
    _poison(monkeypatch, "digit1", at_call=3)
    config = fast_config("on_nonfinite=skip")
    results = run(config)
    assert results["skipped_steps"] == 1
    # training went on past the skipped step: it beats the seed's untrained model as tests/test_train.py's
    # runs do (measured on CPU, % for digit0/1/2: untrained 12.5/9.4/15.6, this run 48.4/34.4/21.9)
    assert_beats_untrained(results["metrics"]["test"], untrained_metrics(config), mean=5.0, task=3.0)


def test_nonfinite_gradient_never_reaches_the_solver(fast_config, monkeypatch):
    """The poisoned step's NaN row of G is zeroed before the method sees it; the run then stops naming it."""
    _poison(monkeypatch, "digit2", at_call=2, kind="gradient")
    seen = []
    original = build.build_grad_weighting

    def spy(cfg, task_num):
        method = original(cfg, task_num)
        combine = method.combine

        def checked(grads, losses=None):
            seen.append(grads.matrix.detach().clone())
            return combine(grads, losses)

        method.combine = checked
        return method

    monkeypatch.setattr(build, "build_grad_weighting", spy)
    with pytest.raises(NonFiniteError, match=r"non-finite gradient for task\(s\) \['digit2'\] at step 1"):
        run(fast_config("weighting/grad=mgda_ub"))
    assert len(seen) == 2 and all(torch.isfinite(matrix).all() for matrix in seen)
    assert seen[1][2].abs().sum() == 0 and seen[1][:2].abs().sum() > 0  # only digit2's row was zeroed


# ------------------------------------------------------------------------------------ resume after a kill
def test_resumed_run_ends_like_an_uninterrupted_one(fast_config, monkeypatch):
    # the Jacobian way pinned: under auto each of the two runs times both ways at its first step, and on a
    # busy machine they may pick different ways, whose floating-point sums differ
    overrides = [
        "weighting/loss=rlw",
        "weighting/grad=rgw",
        "trainer.max_epochs=3",
        "weighting.grad.batched_jacobian=false",
    ]
    uninterrupted = run(fast_config(*overrides, run="whole"))

    steps_per_epoch = 3000 // 64  # the last incomplete batch is dropped
    _poison(monkeypatch, "digit0", at_call=2 * steps_per_epoch + 10, error=RuntimeError)  # mid epoch 2
    crashed = fast_config(*overrides, run="crashed")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(crashed)
    assert not (Path(crashed.paths.output_dir) / "results.json").exists()
    assert (Path(crashed.paths.output_dir) / "checkpoints" / "last.ckpt").exists()

    monkeypatch.undo()
    calls = _poison(monkeypatch, "digit0", at_call=0)  # only counts the training steps
    resumed = run(fast_config(*overrides, run="crashed"))  # resume=auto picks up last.ckpt
    assert calls["n"] == steps_per_epoch, "the resumed run should train epoch 2 only"
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["val_history"] == uninterrupted["val_history"]


def test_relaunch_skips_a_finished_job_with_the_same_config(fast_config, monkeypatch):
    config = fast_config("trainer.max_epochs=1")
    first = run(config)
    calls = _poison(monkeypatch, "digit0", at_call=0)
    assert run(config) == first and calls["n"] == 0  # nothing trained again
    written = (Path(config.paths.output_dir) / "results.json").read_text()
    with pytest.raises(ValueError, match="holds a run of another config"):
        run(fast_config("trainer.max_epochs=1", "seed=1"))  # same directory, another config
    assert (Path(config.paths.output_dir) / "results.json").read_text() == written

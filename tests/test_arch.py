"""Multi-task architectures: shapes, parameter split, the fusion modules' algebra, training runs."""

from __future__ import annotations

from functools import cache, partial
from pathlib import Path

import pytest
import torch

from rw_mtl.arch import HPS, MTAN, NDDRCNN, CrossStitch
from rw_mtl.arch.cross_stitch import CrossStitchUnit
from rw_mtl.arch.nddr_cnn import NDDRLayer
from rw_mtl.nets.aspp import ASPPHead
from rw_mtl.nets.digits_cnn import DigitsCNN
from rw_mtl.nets.heads import mlp_head
from rw_mtl.nets.resnet import TimmResNet
from rw_mtl.train import run

from .conftest import FAST, compose_config
from .recompute import assert_beats_untrained, untrained_metrics

ARCHS = [HPS, CrossStitch, MTAN, NDDRCNN]
TASKS = {"a": 10, "b": 4, "c": 2}


def digits_arch(cls):
    torch.manual_seed(0)
    return cls(TASKS, encoder=partial(DigitsCNN, width=8, feature_dim=16), head=partial(mlp_head, hidden=8))


@pytest.mark.parametrize("cls", ARCHS)
def test_predictions_and_parameter_split(cls):
    arch = digits_arch(cls)
    outputs = arch(torch.randn(5, 1, 14, 14))
    assert {name: tuple(out.shape) for name, out in outputs.items()} == {
        "a": (5, 10),
        "b": (5, 4),
        "c": (5, 2),
    }
    assert set(arch(torch.randn(5, 1, 14, 14), tasks=["b"])) == {"b"}
    shared, specific = {id(p) for p in arch.shared_parameters()}, {id(p) for p in arch.task_parameters()}
    assert not shared & specific
    assert shared | specific == {id(p) for p in arch.parameters()}
    assert arch.supports_rep_mode == (cls is HPS)


@pytest.mark.parametrize("cls", ARCHS)
def test_dense_resnet_encoder(cls):
    torch.manual_seed(0)
    arch = cls(
        {"seg": 13, "depth": 1},
        encoder=partial(TimmResNet, name="resnet18", output_stride=8),
        head=partial(ASPPHead, channels=8),
    )
    outputs = arch(torch.randn(2, 3, 32, 48))
    assert outputs["seg"].shape == (2, 13, 4, 6) and outputs["depth"].shape == (2, 1, 4, 6)


def test_last_shared_layer_is_where_every_task_meets_last():
    """GradNorm's W: ResNet-18's last 3×3 convolution (its last BatchNorm is no weight matrix); the
    digits encoder's final Linear; a column architecture's last fusion unit."""
    resnet = HPS({"seg": 13, "depth": 1}, encoder=partial(TimmResNet, name="resnet18"), head=ASPPHead)
    assert resnet.last_shared_layer() == [resnet.encoder.stages[-1][-1].conv2.weight]
    hps, stitch = digits_arch(HPS), digits_arch(CrossStitch)
    linear = hps.encoder.stages[-1][2]
    assert hps.last_shared_layer() == [linear.weight, linear.bias]
    assert stitch.last_shared_layer() == list(stitch.fusions[-1].parameters())
    assert {id(p) for p in stitch.last_shared_layer()} <= {id(p) for p in stitch.shared_parameters()}


def test_mtan_attention_is_task_specific():
    arch = digits_arch(MTAN)
    arch(torch.randn(4, 1, 14, 14))["a"].sum().backward()
    assert all(p.grad is None for p in arch.attention["b"].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in arch.attention["a"].parameters())
    assert all(p.grad is not None for p in arch.encoder.parameters())


def test_cross_stitch_unit_as_libmtl_at_the_papers_time():
    """LibMTL@3928656: one α ∈ R^T of ones per stage; every column gets Σ_s α_s x_s."""
    unit = CrossStitchUnit(3)
    torch.testing.assert_close(unit.alpha.detach(), torch.ones(3))
    x, y, z = torch.ones(2, 3), torch.full((2, 3), 2.0), torch.full((2, 3), -0.5)
    with torch.no_grad():
        unit.alpha.copy_(torch.tensor([1.0, 0.5, 2.0]))
    mixed = unit([x, y, z])
    assert len(mixed) == 3
    for column in mixed:
        torch.testing.assert_close(column, torch.full((2, 3), 1.0 + 1.0 - 1.0))


def test_cross_stitch_unit_per_task_variants():
    """LibMTL after 270b0e0: α ∈ R^{T×T} of ones; Misra et al.: 0.9 on the diagonal, 0.1 elsewhere."""
    torch.testing.assert_close(CrossStitchUnit(2, mixing="per_task").alpha.detach(), torch.ones(2, 2))
    unit = CrossStitchUnit(2, mixing="per_task", init="diagonal")
    torch.testing.assert_close(unit.alpha.detach(), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    x, y = torch.ones(2, 3), torch.full((2, 3), 2.0)
    mixed = unit([x, y])
    torch.testing.assert_close(mixed[0], torch.full((2, 3), 1.1))
    torch.testing.assert_close(mixed[1], torch.full((2, 3), 1.9))
    with pytest.raises(ValueError, match="arch.model.mixing=per_task"):
        CrossStitchUnit(2, init="diagonal")


def test_cross_stitch_with_identity_units_is_independent_columns():
    torch.manual_seed(0)
    arch = CrossStitch(
        TASKS,
        encoder=partial(DigitsCNN, width=8, feature_dim=16),
        head=partial(mlp_head, hidden=8),
        mixing="per_task",
    )
    with torch.no_grad():
        for unit in arch.fusions:
            unit.alpha.copy_(torch.eye(3))
    arch.eval()
    images = torch.randn(4, 1, 14, 14)
    outputs = arch(images)
    for index, name in enumerate(TASKS):
        torch.testing.assert_close(outputs[name], arch.heads[name](arch.columns[index](images)))


def test_nddr_layer_initial_projection():
    layer = NDDRLayer(2, channels=3).eval()  # BN at its initial running statistics: identity
    x, y = torch.randn(4, 3, 2, 2).abs(), torch.randn(4, 3, 2, 2).abs()
    fused = layer([x, y])
    scale = 1 / (1 + 1e-5) ** 0.5
    torch.testing.assert_close(fused[0], (0.9 * x + 0.1 * y) * scale)
    torch.testing.assert_close(fused[1], (0.1 * x + 0.9 * y) * scale)
    assert layer([x.flatten(1)[:, :3], y.flatten(1)[:, :3]])[0].shape == (4, 3)  # vectors as well


SMALL_RUN = ["trainer.max_epochs=2", "dataset.datamodule.train_size=1500"]


@cache
def untrained_test_metrics(arch: str) -> dict:
    """The test metrics of the model a SMALL_RUN of ``arch`` starts from: the same for every weighting
    (rw_mtl/build.py builds the architecture first)."""
    return untrained_metrics(compose_config([*FAST, f"arch={arch}", *SMALL_RUN], output_dir=Path("unused")))


@pytest.mark.parametrize("arch", ["cross_stitch", "mtan", "nddr_cnn"])
@pytest.mark.parametrize(
    "weighting", [["weighting/loss=rlw"], ["weighting/loss=rlw", "weighting/grad=cagrad"]]
)
def test_architecture_trains_with_loss_and_gradient_methods(fast_config, arch, weighting):
    results = run(fast_config(f"arch={arch}", *weighting, *SMALL_RUN))
    assert results["arch"] == arch
    # it beats the seed's untrained model on every task, as tests/test_train.py's runs do (measured on CPU
    # with RLW: cross_stitch and mtan gain > 5 points on every task over untrained test accuracies of
    # 14.1/5.5/9.4 and 14.1/7.8/10.2 %; at lr = 0 the mean gain is ≤ 1)
    assert_beats_untrained(results["metrics"]["test"], untrained_test_metrics(arch), mean=5.0, task=3.0)


@pytest.mark.parametrize("arch", ["cross_stitch", "mtan", "nddr_cnn"])
def test_rep_mode_is_refused_without_a_shared_representation(fast_config, arch):
    with pytest.raises(ValueError, match=r"has no single shared representation.*weighting.grad.mode=param"):
        run(fast_config(f"arch={arch}", "weighting/grad=rgw"))


def test_timm_encoder_loads_a_local_weights_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet18", num_classes=0, global_pool="")
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), path)
    loaded = TimmResNet("resnet18", pretrained=str(path), pooled=True)
    for name, tensor in source.state_dict().items():
        module_name, _, attribute = name.partition(".")
        if module_name == "conv1" and attribute == "weight":
            torch.testing.assert_close(loaded.stages[0][0].weight, tensor)
    torch.testing.assert_close(loaded.stages[3][1].conv2.weight, source.layer4[1].conv2.weight)
    with pytest.raises(FileNotFoundError, match="dataset.encoder.pretrained"):
        TimmResNet("resnet18", pretrained=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("cls", [CrossStitch, MTAN, NDDRCNN])
def test_stagewise_architectures_name_the_fix_for_plain_encoders(cls):
    with pytest.raises(ValueError, match="needs an encoder with `stages`.*use arch=hps"):
        cls(TASKS, encoder=lambda: torch.nn.Linear(3, 3), head=partial(mlp_head, hidden=8))

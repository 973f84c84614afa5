"""Every hyperparameter of every method (the ``hparams`` of rw_mtl/conf/weighting/{loss,grad}/*.yaml)
changes the output: the default and a non-default value give the hand-computed, different results.

``COVERED`` maps each (method, hparam) to its tests (some live in test_planted_bugs.py, written for a bug
that ignored that hparam); ``test_every_hparam_of_these_methods_is_covered`` fails when one of these
methods gains an hparam without a test here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate

from rw_mtl.build import build_module
from rw_mtl.resources import CONFIG_DIR
from rw_mtl.weighting import get

from . import test_grad_methods as grad_tests
from . import test_loss_methods as loss_tests
from . import test_planted_bugs as planted
from .test_grad_methods import _cagrad_reference

T = torch.tensor
TASKS = 3
GRADNORM_LIBMTL_VARIANT = (
    grad_tests.test_gradnorm_libmtl_variant_is_ew_in_epoch_0_then_balances_from_its_mean_loss
)


def _seeded(seed: int, draw):
    torch.manual_seed(seed)
    return draw()


# ------------------------------------------------------------------------------- RLW / RGW: distribution
def _reference_draw(distribution: str, task_num: int) -> torch.Tensor:
    """The five schemes of Section 5.3 written out, consuming the generator exactly as the samplers do."""
    if distribution == "normal":
        return torch.softmax(torch.randn(task_num), dim=0)
    if distribution == "uniform":
        return torch.softmax(torch.rand(task_num), dim=0)
    if distribution == "dirichlet":
        draws = torch.empty(task_num).exponential_()
        return draws / draws.sum()
    if distribution == "bernoulli":
        code = int(torch.randint(1, 2**task_num, (1,)))
        mask = torch.tensor([(code >> bit) & 1 for bit in range(task_num)], dtype=torch.float32)
        return mask / mask.sum()
    index = int(torch.randint(task_num, (1,)))
    return torch.nn.functional.one_hot(torch.tensor(index), task_num).float()


DISTRIBUTIONS = ["normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli"]


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_rlw_distribution_selects_the_sampling_scheme(distribution):
    losses = torch.ones(TASKS)
    got = _seeded(5, lambda: get("rlw")(TASKS, distribution=distribution).weights(losses))
    torch.testing.assert_close(got, _seeded(5, lambda: _reference_draw(distribution, TASKS)))
    default = _seeded(5, lambda: get("rlw")(TASKS).weights(losses))
    assert torch.equal(default, got) == (distribution == "normal")


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_rgw_distribution_selects_the_sampling_scheme(distribution):
    grads = T([[1.0, 0.0], [0.0, 2.0], [3.0, -1.0]])
    got = _seeded(5, lambda: get("rgw")(TASKS, distribution=distribution).aggregate(grads))
    torch.testing.assert_close(got, _seeded(5, lambda: _reference_draw(distribution, TASKS)) @ grads)
    default = _seeded(5, lambda: get("rgw")(TASKS).aggregate(grads))
    assert torch.equal(default, got) == (distribution == "normal")


# ------------------------------------------------------------------------------------------------ UW
@pytest.mark.parametrize(("init", "weight", "penalty"), [(-0.5, 0.5 * math.exp(0.5), -0.75), (0.0, 0.5, 0.0)])
def test_uw_init_log_variance_sets_the_initial_weights(init, weight, penalty):
    """λ_t = ½ e^{−s_t}, penalty Σ s_t / 2 over 3 tasks: s = −0.5 (default) or 0."""
    method = get("uw")(TASKS, init_log_variance=init)
    torch.testing.assert_close(method.weights(torch.ones(TASKS)), torch.full((TASKS,), weight))
    assert method.regularization().item() == pytest.approx(penalty)


# ------------------------------------------------------------------------------------------ EW / DWA
@pytest.mark.parametrize(("weight_sum", "weight"), [("tasks", 1.0), ("one", 1 / TASKS)])
def test_ew_weight_sum_sets_the_scale(weight_sum, weight):
    """λ_t = 1 (``tasks``, the default: LibMTL's Σ ℓ_t) or 1/T (``one``: the paper's text)."""
    got = get("ew")(TASKS, weight_sum=weight_sum).weights(T([4.0, 0.5, 2.0]))
    torch.testing.assert_close(got, torch.full((TASKS,), weight))
    assert get("ew")(TASKS).weights(torch.ones(TASKS)).sum().item() == TASKS


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_dwa_temperature_divides_the_loss_ratios(temperature):
    """Epoch losses (2, 1) then (1, 1): ratios (½, 1), λ = 2 · softmax(r / temperature): for 2 (the default)
    2 · (0.4378, 0.5622), for ½ 2 · softmax(1, 2) = 2 · (0.2689, 0.7311)."""
    method = get("dwa")(2, temperature=temperature)
    method.epoch_end(T([2.0, 1.0]))
    method.epoch_end(T([1.0, 1.0]))
    expected = {2.0: 1 / (1 + math.exp(0.25)), 0.5: 1 / (1 + math.exp(1.0))}[temperature]
    torch.testing.assert_close(method.weights(torch.ones(2)), 2 * T([expected, 1 - expected]))


@pytest.mark.parametrize(("weight_sum", "total"), [("tasks", 3.0), ("one", 1.0)])
def test_dwa_weight_sum_scales_every_epoch(weight_sum, total):
    """S = T (default) or 1: λ = S/T for the first two epochs, then S · softmax(r / 2); here epoch losses
    (1, 1, 1), (2, 1, 1): ratios (2, 1, 1), softmax(1, ½, ½) = (e^½, 1, 1) / (e^½ + 2)."""
    method = get("dwa")(TASKS, weight_sum=weight_sum)
    torch.testing.assert_close(method.weights(torch.ones(TASKS)), torch.full((TASKS,), total / TASKS))
    method.epoch_end(T([1.0, 1.0, 1.0]))
    torch.testing.assert_close(method.weights(torch.ones(TASKS)), torch.full((TASKS,), total / TASKS))
    method.epoch_end(T([2.0, 1.0, 1.0]))
    e = math.exp(0.5)
    expected = total * T([e, 1.0, 1.0]) / (e + 2)
    torch.testing.assert_close(method.weights(torch.ones(TASKS)), expected)


# ----------------------------------------------------------------------- MOML / RotoGrad: learning_rate
def _optimizer_groups(fast_config, *overrides):
    config = fast_config(*overrides)
    module = build_module(config, instantiate(config.dataset.datamodule).tasks)
    groups = module.configure_optimizers().param_groups
    return config.dataset.optimizer.lr, groups


@pytest.mark.parametrize("lr", [None, 0.25])
def test_moml_learning_rate_is_its_logits_group(fast_config, lr):
    """α has its own group at 1e-3 (the default) or the given rate, without weight decay on the model's."""
    overrides = [] if lr is None else [f"weighting.loss.hparams.learning_rate={lr}"]
    model_lr, groups = _optimizer_groups(fast_config, "weighting/loss=moml", *overrides)
    assert [group["lr"] for group in groups] == [model_lr, 1e-3 if lr is None else lr]
    assert sum(p.numel() for p in groups[1]["params"]) == TASKS


def test_rotograd_learning_rate_null_keeps_rotations_with_the_model(fast_config):
    """learning_rate: null (the default) leaves the rotations in the model's one group; a value gives them
    their own (test_module.test_rotograd_rotations_get_their_own_learning_rate: 0.5)."""
    model_lr, groups = _optimizer_groups(fast_config, "weighting/grad=rotograd")
    assert [group["lr"] for group in groups] == [model_lr]
    assert sum(p.numel() for p in groups[0]["params"]) > TASKS * 64 * 64  # the model and the rotations
    model_lr, groups = _optimizer_groups(
        fast_config, "weighting/grad=rotograd", "weighting.grad.hparams.learning_rate=0.25"
    )
    assert [group["lr"] for group in groups] == [model_lr, 0.25]
    assert sum(p.numel() for p in groups[1]["params"]) == TASKS * 64 * 64


# ------------------------------------------------------------------------------------------ RotoGrad
@pytest.mark.parametrize(
    ("size", "rotation", "expected"),
    [
        (2, [[0.0, -1.0], [1.0, 0.0]], [-2.0, 1.0, 3.0]),  # a quarter turn of (z_1, z_2); z_3 untouched
        (3, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [3.0, 1.0, 2.0]),  # cycles all three
    ],
)
def test_rotograd_rotation_size_is_how_many_features_turn(size, rotation, expected):
    method = get("rotograd")(2, rotation_size=size)
    method.rotations[0].weight = T(rotation)  # through the orthogonal parametrisation's inverse
    first, second = method.task_representations(T([[1.0, 2.0, 3.0]]))
    torch.testing.assert_close(first, T([expected]))
    torch.testing.assert_close(second, T([[1.0, 2.0, 3.0]]))  # R_2 = I still
    assert method.rotations[0].weight.shape == (size, size)


@pytest.mark.parametrize("burn_in", [20, 2])
def test_rotograd_burn_in_period_is_when_norms_are_taken_again(burn_in):
    """Norms (3, 1), then (1.5, 1) twice: at call 2 the default (20) still scales by the ratios (½, 1)
    against the first norms (weights 7/6 / (1.5, 1)); burn_in_period = 2 re-anchors there: 1.25 / (1.5, 1)."""
    method = get("rotograd")(2, rotation_size=2, burn_in_period=burn_in)
    for grads in ([[3.0, 0.0], [0.0, 1.0]], [[1.5, 0.0], [0.0, 1.0]], [[1.5, 0.0], [0.0, 1.0]]):
        method.aggregate(T(grads))
    common = 1.25 if burn_in == 2 else 1.5 / 3 + 2 / 3
    torch.testing.assert_close(method.last_weights, T([common / 1.5, common]))


# ------------------------------------------------------------------------------------------- MGDA-UB
@pytest.mark.parametrize(
    ("normalization", "expected"),
    [
        ("none", [0.4, 0.8]),  # min ‖w (2,0) + (1−w) (0,1)‖: w = 1/5
        ("l2", [0.5, 0.5]),  # ĝ = (1,0), (0,1): w = ½
        ("loss", [0.5 * 4 / 4.25, 2 * 0.25 / 4.25]),  # n = ℓ = (4, ½): ĝ = (½,0), (0,2), w_1 = 4/4.25
        ("loss+", [0.25 * 4 / 4.0625, 2 * 0.0625 / 4.0625]),  # n = ℓ‖g‖ = (8, ½): ĝ = (¼,0), (0,2)
    ],
)
def test_mgda_normalization_scales_the_gradients_first(normalization, expected):
    method = get("mgda_ub")(2, normalization=normalization)
    torch.testing.assert_close(method.aggregate(T([[2.0, 0.0], [0.0, 1.0]]), T([4.0, 0.5])), T(expected))


def _twelve_tasks() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    grads = torch.randn(12, 30, generator=generator, dtype=torch.float64)
    grads[1] = -0.7 * grads[0] + 0.2 * grads[1]  # a conflict: the optimum is not the uniform point
    return grads


def test_mgda_beyond_ten_tasks_reaches_the_min_norm_point():
    """12 tasks (beyond the exact solver): the direction satisfies the min-norm point's KKT conditions."""
    grads = _twelve_tasks()
    default = get("mgda_ub")(12).aggregate(grads)
    products = grads @ default  # KKT of the min-norm point: g_t · d ≥ ‖d‖² for every t
    assert (products >= (default @ default) * (1 - 1e-6)).all()
    assert (default - grads.mean(0)).norm().item() > 0.1


# -------------------------------------------------------------------------------------------- CAGrad
@pytest.mark.parametrize("c", [0.5, 1.0, 0.0])
def test_cagrad_c_is_the_radius_around_the_mean(c):
    """Orthogonal unit gradients: w = (½, ½) by symmetry, d = (1 + c) g_0 with rescale 0, and that divided by
    1 + c² with rescale 1 (the default): 1.2 g_0 for c = ½, g_0 for c = 1."""
    grads = torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(get("cagrad")(2, c=c, rescale=0).aggregate(grads), (1 + c) * grads.mean(0))
    torch.testing.assert_close(get("cagrad")(2, c=c).aggregate(grads), (1 + c) / (1 + c**2) * grads.mean(0))


def test_cagrad_beyond_ten_tasks_reaches_the_reference():
    """12 tasks (beyond the exact solver): the reference solver's direction, far from the uniform point's."""
    grads = _twelve_tasks()
    mean = grads.mean(0)
    default = get("cagrad")(12).aggregate(grads)
    torch.testing.assert_close(default, _cagrad_reference(grads, 0.5), atol=1e-6, rtol=1e-6)
    assert (default - 1.5 * mean / 1.25).norm().item() > 0.5


# ------------------------------------------------------------------------------------------ GradDrop
@pytest.mark.parametrize("leak", [0.0, 0.5])
def test_graddrop_leak_keeps_that_share_of_dropped_gradients(leak):
    """g = (1, −3) per coordinate: the kept sign's gradient stays whole, the other keeps ``leak`` of itself:
    d = 1 − 3·leak where the positive sign is kept, −3 + leak otherwise (kept: P = ¼ > U)."""
    grads = T([[1.0], [-3.0]]).expand(2, 1000).contiguous()
    threshold = _seeded(0, lambda: torch.rand(1000))
    got = _seeded(0, lambda: get("graddrop")(2, leak=leak).aggregate(grads))
    expected = torch.where(0.25 > threshold, 1.0 - 3.0 * leak, -3.0 + leak)
    torch.testing.assert_close(got, expected)


# ------------------------------------------------------------------------------------------ coverage
COVERED = {
    ("rlw", "distribution"): [test_rlw_distribution_selects_the_sampling_scheme],
    ("rgw", "distribution"): [test_rgw_distribution_selects_the_sampling_scheme],
    ("uw", "init_log_variance"): [test_uw_init_log_variance_sets_the_initial_weights],
    ("dwa", "temperature"): [test_dwa_temperature_divides_the_loss_ratios],
    ("moml", "learning_rate"): [test_moml_learning_rate_is_its_logits_group],
    ("moml", "inner_lr"): [loss_tests.test_moml_hypergradient_is_exact_for_the_one_step_unroll],
    ("gradnorm", "variant"): [
        grad_tests.test_gradnorm_libmtl_variant_is_ew_in_epoch_0_then_balances_from_its_mean_loss
    ],
    ("ew", "weight_sum"): [test_ew_weight_sum_sets_the_scale],
    ("dwa", "weight_sum"): [test_dwa_weight_sum_scales_every_epoch],
    ("gradnorm", "weight_sum"): [
        grad_tests.test_gradnorm_libmtl_variant_is_ew_in_epoch_0_then_balances_from_its_mean_loss
    ],
    ("rotograd", "learning_rate"): [test_rotograd_learning_rate_null_keeps_rotations_with_the_model],
    ("rotograd", "rotation_size"): [test_rotograd_rotation_size_is_how_many_features_turn],
    ("rotograd", "burn_in_period"): [
        test_rotograd_burn_in_period_is_when_norms_are_taken_again,
        planted.test_rotograd_re_anchors_the_norms_after_burn_in,
    ],
    ("mgda_ub", "normalization"): [test_mgda_normalization_scales_the_gradients_first],
    ("cagrad", "c"): [test_cagrad_c_is_the_radius_around_the_mean, planted.test_cagrad_c_reaches_the_solver],
    ("cagrad", "rescale"): [planted.test_cagrad_rescale_divides_by_its_factor],
    ("graddrop", "leak"): [test_graddrop_leak_keeps_that_share_of_dropped_gradients],
    ("gradnorm", "alpha"): [planted.test_gradnorm_alpha_sets_the_target_norms],
    ("gradvac", "beta"): [
        planted.test_gradvac_ema_weighs_the_new_cosine_by_beta,
        planted.test_gradvac_beta_sets_how_fast_the_target_follows,
    ],
}
# the methods this file covers (methods added later bring their own hparam tests)
METHODS = {
    "loss": ["ew", "rlw", "uw", "dwa", "imtl_l", "moml"],
    "grad": ["rgw", "mgda_ub", "gradnorm", "pcgrad", "graddrop", "imtl_g", "gradvac", "cagrad", "rotograd"],
}


def test_every_hparam_of_these_methods_is_covered():
    declared = set()
    for kind, names in METHODS.items():
        for name in names:
            config = yaml.safe_load((Path(CONFIG_DIR) / "weighting" / kind / f"{name}.yaml").read_text())
            declared |= {(name, hparam) for hparam in config.get("hparams") or {}}
    assert declared == set(COVERED)

"""Tests for realistic one-line bugs that the rest of the suite let through (issue 16's audit).

Each test is named after what it guards and fails when its bug is planted; docs/testing.md lists which
test catches which planted bug. The examples are chosen so that the buggy and the correct code give
different numbers (the audit's bugs survived where examples were symmetric: β = ½, equal IoUs, a depth
error that reads the same divided by the prediction or by the ground truth).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rw_mtl.data import multi_digits
from rw_mtl.report.collect import collect
from rw_mtl.report.tables import section_rows
from rw_mtl.tasks import DepthTask, SemanticSegmentationTask
from rw_mtl.weighting import get
from rw_mtl.weighting.interface import TaskGradients
from rw_mtl.weighting.random_weights import sample_simplex_weights
from rw_mtl.weighting.simplex import min_norm_weights

from .test_grad_methods import _cagrad_reference, random_grads
from .test_report import fake_run

T = torch.tensor


# ------------------------------------------------------------------------------------- RLW's samplers
def test_uniform_sampler_draws_unit_uniform_logits():
    """λ = softmax(λ̃) with λ̃ ~ U(0, 1): the same draw as softmax(torch.rand), and every draw's largest
    weight is at most e¹ times its smallest (a N(0, 1) draw exceeds that in most draws)."""
    torch.manual_seed(11)
    expected = torch.softmax(torch.rand(5), dim=0)
    torch.manual_seed(11)
    torch.testing.assert_close(sample_simplex_weights("uniform", 5), expected)
    torch.manual_seed(0)
    lam = torch.stack([sample_simplex_weights("uniform", 5) for _ in range(2000)])
    spread = lam.max(dim=1).values / lam.min(dim=1).values
    assert spread.max().item() <= math.e * (1 + 1e-6)
    assert spread.max().item() > 2.0  # λ̃ spans most of [0, 1]: not a narrower interval


def test_bernoulli_fallback_beyond_62_tasks_never_draws_all_zero(monkeypatch):
    """Beyond 62 tasks the mask is drawn coordinate-wise; an all-zero draw (probability 2^-T, so never seen
    by sampling) must become one uniformly chosen task, not a 0/0 = NaN weight vector."""
    monkeypatch.setattr(torch, "bernoulli", lambda probabilities: torch.zeros_like(probabilities))
    torch.manual_seed(0)
    lam = sample_simplex_weights("bernoulli", 70)
    assert torch.isfinite(lam).all()
    assert (lam == 1).sum().item() == 1 and (lam == 0).sum().item() == 69
    # a non-empty draw is used as it is: λ = λ̃ / Σ λ̃
    mask = torch.zeros(70)
    mask[[3, 40, 69]] = 1.0
    monkeypatch.setattr(torch, "bernoulli", lambda probabilities: mask.to(probabilities))
    torch.testing.assert_close(sample_simplex_weights("bernoulli", 70), mask / 3)


# ---------------------------------------------------------------------------------------------- GradVac
def test_gradvac_ema_weighs_the_new_cosine_by_beta():
    """φ̂ ← (1 − β) φ̂ + β φ: with β = ¼ (not ½, where swapping the two weights changes nothing) the first
    step's φ = −1/√2 gives φ̂ = −¼/√2, and the second step raises cos(g_1', g_2) exactly to that φ̂."""
    grads = T([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    method = get("gradvac")(2, beta=0.25)
    method.aggregate(grads)
    goal = -0.25 / math.sqrt(2)
    torch.testing.assert_close(method.target_similarity, T([[0.0, goal], [goal, 0.0]]).float())
    direction = method.aggregate(grads)
    # two tasks: g_1' = g_1 + k g_2 and g_2' = g_2 + k' g_1, so last_weights = (1 + k', 1 + k)
    weights = method.last_weights.double()
    first, second = grads[0] + (weights[1] - 1) * grads[1], grads[1] + (weights[0] - 1) * grads[0]
    torch.testing.assert_close(direction, first + second)
    for projected, other in ((first, grads[1]), (second, grads[0])):
        assert (projected @ other / (projected.norm() * other.norm())).item() == pytest.approx(goal, abs=1e-6)
    # the EMA moved on to (1 − ¼) φ̂ + ¼ φ
    torch.testing.assert_close(
        method.target_similarity[0, 1], torch.tensor(0.75 * goal - 0.25 / math.sqrt(2)).float()
    )


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gradvac_beta_sets_how_fast_the_target_follows(beta):
    """β = 0: φ̂ stays 0 and every step is PCGrad's; β = 1: φ̂ is the last cosine, and the second step
    changes nothing since φ = φ̂ already."""
    grads = T([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    method = get("gradvac")(2, beta=beta)
    method.aggregate(grads)
    second = method.aggregate(grads)
    if beta == 0.0:
        assert method.target_similarity.abs().max().item() == 0.0
        torch.testing.assert_close(second, T([0.5, 1.5], dtype=torch.float64))  # PCGrad's (hand-computed)
    else:
        assert method.target_similarity[0, 1].item() == pytest.approx(-1 / math.sqrt(2))
        torch.testing.assert_close(second, grads.sum(0))


# ----------------------------------------------------------------------------------------------- CAGrad
@pytest.mark.parametrize("c", [0.2, 1.0])
def test_cagrad_c_reaches_the_solver(c):
    """c other than the default 0.5 gives the reference solver's direction for that c."""
    grads = random_grads(3, dim=8, seed=0)
    grads[1] = -0.8 * grads[0] + 0.3 * grads[1]
    got = get("cagrad")(3, c=c).aggregate(grads)
    torch.testing.assert_close(got, _cagrad_reference(grads, c), atol=2e-5, rtol=1e-4)
    assert not torch.allclose(got, _cagrad_reference(grads, 0.5), atol=1e-3, rtol=0)


@pytest.mark.parametrize(("rescale", "factor"), [(0, 1.5), (1, 1.5 / 1.25), (2, 1.0)])
def test_cagrad_rescale_divides_by_its_factor(rescale, factor):
    """Orthogonal unit gradients: w = (½, ½) by symmetry, so g_w = g_0 and d = (1 + c) g_0 before rescaling;
    rescale 0 keeps it, 1 divides by 1 + c² (= 1.25), 2 by 1 + c (= 1.5): d = factor · g_0, c = 0.5."""
    grads = torch.eye(2, dtype=torch.float64)
    got = get("cagrad")(2, c=0.5, rescale=rescale).aggregate(grads)
    torch.testing.assert_close(got, factor * grads.mean(0))


# --------------------------------------------------------------------------------------------- GradNorm
@pytest.mark.parametrize(
    ("alpha", "loss", "gradient"), [(0.0, 1.0, -1.0), (1.5, 0.08393, 0.5), (3.0, 1.07407, 1.0)]
)
def test_gradnorm_alpha_sets_the_target_norms(alpha, loss, gradient):
    """‖g‖ = (1, 3), w = (½, ½): G = (½, 3/2), Ḡ = 1. Losses fall from (1, 1) to (½, 1): r = (2/3, 4/3), so
    the targets are Ḡ r^α — (1, 1) for α = 0, (0.544, 1.540) for 1.5, (0.296, 2.370) for 3 — and
    L_grad = Σ |G − target| = 1, 0.0839, 1.0741. ∂L/∂s_j = a_j − w_j Σ a, a_t = sign(G_t − target_t) G_t,
    flips with the signs: ±(1, −1) or (½, −½)."""
    grads = T([[1.0, 0.0], [0.0, 3.0]])
    # the original paper's variant (weights summing to 1, L(0) from the first step) as this example assumes
    method = get("gradnorm")(2, alpha=alpha, variant="original", weight_sum="one")
    method.aggregate(grads, T([1.0, 1.0]))
    method.logits.grad = None
    combination = method(TaskGradients(grads), T([0.5, 1.0]))
    assert combination.method_loss.item() == pytest.approx(loss, abs=1e-5)
    (grad,) = torch.autograd.grad(combination.method_loss, method.logits)
    torch.testing.assert_close(grad, T([gradient, -gradient]))


# --------------------------------------------------------------------------------------------- RotoGrad
def test_rotograd_re_anchors_the_norms_after_burn_in():
    """The reference norms ‖g_t(0)‖ are taken at the first call and again at call ``burn_in_period``
    (0-based): afterwards the scaling weights are relative to the norms of that call."""
    method = get("rotograd")(2, rotation_size=2, burn_in_period=2)
    method.aggregate(T([[3.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(method.initial_norms, T([3.0, 1.0]))
    method.aggregate(T([[1.5, 0.0], [0.0, 1.0]]))  # call 1: ratios (½, 1) against the first norms
    torch.testing.assert_close(method.initial_norms, T([3.0, 1.0]))
    common = 1.5 / 3 + 2 / 3
    torch.testing.assert_close(method.last_weights, T([common / 1.5, common]))
    method.aggregate(T([[1.5, 0.0], [0.0, 1.0]]))  # call 2 = burn_in_period: anchored anew, ratios (1, 1)
    torch.testing.assert_close(method.initial_norms, T([1.5, 1.0]))
    torch.testing.assert_close(method.last_weights, T([1.25 / 1.5, 1.25]))
    method.aggregate(T([[0.75, 0.0], [0.0, 1.0]]))  # call 3: ratios (½, 1) against the new anchor
    torch.testing.assert_close(method.initial_norms, T([1.5, 1.0]))
    common = 0.75 / 3 + 2 / 3
    torch.testing.assert_close(method.last_weights, T([common / 0.75, common]))


# ------------------------------------------------------------------------------------ the simplex solver
@pytest.mark.parametrize("delta", [1e-3, 1e-4, 1e-5])
def test_exact_min_norm_rejects_slightly_negative_candidates(delta):
    """g = (1, −δ, 1), (−2, −δ, 1), (100, −1, 1): the affine hull's min-norm point has w_3 ≈ −δ (just
    outside the simplex) and clamping it would give w_1 ≈ 2/3 + 33δ; the true optimum is the closest point
    (0, −δ, 1) of the edge g_1 g_2, w = (2/3, 1/3, 0)."""
    grads = T([[1.0, -delta, 1.0], [-2.0, -delta, 1.0], [100.0, -1.0, 1.0]], dtype=torch.float64)
    weights = min_norm_weights(grads @ grads.T)
    torch.testing.assert_close(weights, T([2 / 3, 1 / 3, 0.0], dtype=torch.float64), atol=1e-7, rtol=0)


# -------------------------------------------------------------------------------------------- the tasks
def test_miou_is_the_mean_of_per_class_ious():
    """IoU per class (1, ½, 0) → mIoU = 50 %; the micro average over classes (Σ intersections / Σ unions)
    would be 5/7, since class 0 has most pixels (with equal IoUs, as in test_dense_tasks, both agree)."""
    task = SemanticSegmentationTask(num_classes=3)
    target = T([[[0, 0, 0, 0, 1, 2]]])
    predicted = T([[[0, 0, 0, 0, 1, 1]]])  # class 0: 4/4; class 1: 1/2; class 2: 0/1
    logits = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
    metrics = task.make_metrics()
    metrics.update(logits, target)
    result = {name: value.item() for name, value in metrics.compute().items()}
    assert result == pytest.approx({"miou": 50.0, "pix_acc": 500 / 6})


def test_depth_relative_error_divides_by_the_ground_truth():
    """|ŷ − y| / y over valid pixels: (1/2 + 1/4) / 2 = 0.375 (dividing by ŷ would give (1 + 1/5) / 2)."""
    task = DepthTask()
    target = T([[[[2.0, 4.0, 0.0]]]])
    prediction = T([[[[1.0, 5.0, 7.0]]]])
    metrics = task.make_metrics()
    metrics.update(prediction, target)
    result = {name: value.item() for name, value in metrics.compute().items()}
    assert result == pytest.approx({"abs_err": 1.0, "rel_err": 0.375})


# ------------------------------------------------------------------------------------------- the report
def test_delta_p_reference_is_ew_with_hps_even_when_another_arch_comes_first(tmp_path):
    """EW on cross_stitch comes before EW on HPS in the section: every Δp, that of EW on cross_stitch
    included, is still against EW with HPS."""
    root = tmp_path / "runs"
    fake_run(root, "ew", "none", 0, 55.0, 0.40, arch="cross_stitch")  # +10 % on miou: Δp = +5 %
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    fake_run(root, "rlw", "none", 0, 50.0, 0.36)  # −10 % error: Δp = +5 %
    (section,) = collect([root]).sections
    section.groups.sort(key=lambda group: group.arch != "cross_stitch")  # the other EW first
    assert [group.arch for group in section.groups][:2] == ["cross_stitch", "hps"]
    assert section.reference().arch == "hps"
    rows = section_rows(section, "test", [])
    deltas = {(row.arch, row.label): row.delta_p[0] for row in rows}
    assert deltas == pytest.approx({("cross_stitch", "EW"): 5.0, ("hps", "EW"): 0.0, ("hps", "RLW"): 5.0})


def test_delta_p_reference_falls_back_to_ew_on_another_arch_without_hps(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "ew", "none", 0, 50.0, 0.40, arch="mtan")
    fake_run(root, "rlw", "none", 0, 55.0, 0.40, arch="mtan")
    (section,) = collect([root]).sections
    assert section.reference().arch == "mtan"
    rows = {row.label: row for row in section_rows(section, "test", [])}
    assert rows["RLW"].delta_p[0] == pytest.approx(5.0)


# ---------------------------------------------------------------------------------------- multi_digits
def test_multi_digits_splits_draw_from_disjoint_source_digits(monkeypatch):
    """Source digit i is an 8×8 image of the constant i + 1, so the composites reveal which source digits
    each split drew (the top-left pixel is only ever the first digit's, the bottom-right the last's): no
    digit of the test or validation pool appears in training, and each pool is 60/20/20 % of the source."""
    count = 200
    images = np.repeat(np.arange(1, count + 1, dtype=np.float64), 64).reshape(count, 8, 8)
    fake = SimpleNamespace(images=images, target=np.arange(count) % 10)
    monkeypatch.setattr(multi_digits, "load_digits", lambda: fake)
    datamodule = multi_digits.MultiDigitsDataModule(train_size=600, val_size=200, test_size=200)
    datamodule.setup("fit")
    used = {}
    for split, dataset in datamodule.splits.items():
        corners = dataset.inputs[:, 0, [0, -1], [0, -1]] * multi_digits._MAX_PIXEL  # [N, 2]: first, last
        sources = corners.round().long() - 1
        torch.testing.assert_close(sources.float() + 1, corners)
        assert torch.equal(dataset.targets["digit0"], sources[:, 0] % 10)
        assert torch.equal(dataset.targets["digit2"], sources[:, 1] % 10)
        used[split] = set(sources.flatten().tolist())
    assert (
        not used["train"] & used["test"]
        and not used["train"] & used["val"]
        and not used["val"] & used["test"]
    )
    assert {split: len(sources) for split, sources in used.items()} == {"train": 120, "val": 40, "test": 40}

"""The tasks' losses and metrics on hand-computed examples, down to the details a mutation run probes:
accumulation over batches and ranks, exact counts, bin edges, rounding at cos = ±1, argument checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rw_mtl.tasks import ClassificationTask, DepthTask, SurfaceNormalTask, TokenClassificationTask
from rw_mtl.tasks.dense import DepthErrors, NormalAngles, upsample_to
from rw_mtl.tasks.token_classification import IGNORE_INDEX, SeqevalF1

T = torch.tensor
# a float32 unit vector whose cosine with itself rounds to 1 + 2.4e-7 (and with its negation to −1 − 2.4e-7)
ROUNDS_PAST_ONE = [-0.11325649917125702, -0.6195324063301086, -0.7767577767372131]


def _normals(vectors: list[list[float]]) -> torch.Tensor:
    """[N, 3] vectors as a [1, 3, 1, N] normal map."""
    return T(vectors).T.reshape(1, 3, 1, len(vectors))


# ------------------------------------------------------------------------------------- classification
def test_classification_accuracy_in_percent_over_all_samples():
    """Micro average over samples: 4 of 5 right = 80 % (the mean of per-class accuracies, 1, 1 and 0,
    would be 66.7 %)."""
    task = ClassificationTask(num_classes=3)
    assert task.num_outputs == 3
    logits = F.one_hot(T([0, 0, 0, 1, 1]), 3).float()
    metrics = task.make_metrics()
    metrics.update(logits[:3], T([0, 0, 0]))  # class 0: 3 of 3
    metrics.update(logits[3:], T([1, 2]))  # class 1: 1 of 1; class 2: 0 of 1
    assert metrics.compute()["acc"].item() == pytest.approx(80.0)
    target = T([0, 0, 0, 1, 2])
    torch.testing.assert_close(task.loss(logits, target), F.cross_entropy(logits, target))


def test_classification_needs_two_classes():
    assert ClassificationTask(num_classes=2).num_outputs == 2
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        ClassificationTask(num_classes=1)


# -------------------------------------------------------------------------------------------- dense
def test_upsample_is_bilinear_with_aligned_corners_and_a_no_op_at_label_size():
    prediction = T([[[[0.0, 3.0], [3.0, 6.0]]]])
    target = torch.zeros(1, 4, 4)
    # align_corners=True: the corners stay, the inside is linear in steps of 1 (0, 1, 2, 3 along a row)
    expected = T([[[[r + c for c in range(4)] for r in range(4)]]]).float()
    torch.testing.assert_close(upsample_to(prediction, target), expected)
    same = torch.randn(1, 2, 4, 4)
    assert upsample_to(same, target) is same


def test_depth_errors_accumulate_over_batches_and_ranks_in_float64():
    batches = [
        (T([[[[1.0, 2.0]]]]), T([[[[2.0, 2.0]]]])),  # errors 1, 0 (relative ½, 0)
        (T([[[[5.0, 9.0]]]]), T([[[[4.0, 0.0]]]])),  # error 1 (relative ¼); depth 0 is unknown
    ]
    metric, merged = DepthErrors(), DepthErrors()
    for prediction, target in batches:
        metric.update(prediction, target)
        merged.update(prediction, target)
    result = metric.compute()
    assert {k: v.item() for k, v in result.items()} == pytest.approx({"abs_err": 2 / 3, "rel_err": 0.25})
    assert all(value.dtype == torch.float64 for value in result.values())
    other = DepthErrors()
    other.update(T([[[[3.0]]]]), T([[[[1.0]]]]))  # another rank: error 2, relative 2
    merged.merge_state(other)  # how ranks' states are reduced (dist_reduce_fx)
    assert {k: v.item() for k, v in merged.compute().items()} == pytest.approx(
        {"abs_err": 1.0, "rel_err": 0.6875}
    )
    # sums beyond float32's 2^24 stay exact
    exact = DepthErrors()
    exact.abs_sum += 2.0**24
    exact.update(T([[[[2.0]]]]), T([[[[1.0]]]]))
    assert exact.abs_sum.item() == 2.0**24 + 1


def test_normal_angles_per_threshold_median_bin_and_accumulation():
    """Angles 5°, 15°, 25°, 40° (one per pixel, two batches): within 11.25° / 22.5° / 30° = 25 / 50 / 75 %;
    the median is the centre of its 1e-4° bin: (⌊a · 10⁴⌋ + ½) / 10⁴ for the mean of ranks 2 and 3."""
    angles = [5.0, 15.0, 25.0, 40.0]
    target = _normals([[0.0, 0.0, 1.0]] * 4)
    radians = [math.radians(a) for a in angles]
    prediction = _normals([[math.sin(r), 0.0, math.cos(r)] for r in radians])
    metric, merged = NormalAngles(), NormalAngles()
    for part in (slice(0, 2), slice(2, 4)):
        metric.update(prediction[..., part], target[..., part])
        merged.update(prediction[..., part], target[..., part])
    result = {k: v.item() for k, v in metric.compute().items()}
    cosines = (F.normalize(prediction, dim=1) * target).sum(1).flatten().double()
    got = torch.rad2deg(torch.acos(cosines))
    bins = (got * 10_000).long()
    median = ((bins[1] + 0.5) / 10_000 + (bins[2] + 0.5) / 10_000).item() / 2
    assert result["median"] == pytest.approx(median, abs=1e-9)
    assert result["mean"] == pytest.approx(got.mean().item(), abs=1e-9)
    assert [result["within_11_25"], result["within_22_5"], result["within_30"]] == [25.0, 50.0, 75.0]
    other = NormalAngles()
    other.update(prediction[..., :1], target[..., :1])  # another rank: one more 5° pixel
    merged.merge_state(other)
    assert merged.compute()["within_11_25"].item() == pytest.approx(40.0)


def test_normal_angles_at_cos_plus_and_minus_one_and_at_180_degrees():
    """Cosines that round past ±1 are clamped (0° and 180°, not NaN); 180° lands in the last bin, whose
    centre is 180.00005°."""
    metric = NormalAngles()
    vector = ROUNDS_PAST_ONE
    opposite = [-x for x in vector]
    metric.update(_normals([vector, opposite]), _normals([vector, vector]))
    result = metric.compute()
    assert result["mean"].item() == pytest.approx(90.0)
    single = NormalAngles()
    single.update(_normals([opposite]), _normals([vector]))
    assert single.compute()["median"].item() == pytest.approx(180.00005, abs=1e-9)


def test_normal_angle_counts_stay_exact_beyond_float32():
    metric = NormalAngles()
    metric.histogram[0] += 2**24
    metric.within += 2**24
    metric.update(_normals([[0.0, 0.0, 1.0]]), _normals([[0.0, 0.0, 1.0]]))
    assert metric.histogram[0].item() == 2**24 + 1 and metric.within.tolist() == [2**24 + 1] * 3
    assert metric.angle_sum.dtype == torch.float64


def test_surface_normal_loss_normalises_each_pixel_over_channels():
    torch.manual_seed(0)
    target = F.normalize(torch.randn(2, 3, 3, 4), dim=1)
    target[0, :, 0, 0] = 0.0  # unknown normal
    prediction = 3.0 * torch.randn(2, 3, 3, 4)
    mask = target.abs().sum(1) != 0
    cosine = (prediction * target).sum(1) / prediction.norm(dim=1)
    expected = 1 - cosine[mask].mean()
    torch.testing.assert_close(SurfaceNormalTask().loss(prediction, target), expected)


def test_depth_loss_is_l1_on_known_depth():
    prediction, target = T([[[[1.0, 4.0, 9.0]]]]), T([[[[2.0, 0.0, 6.0]]]])
    assert DepthTask().loss(prediction, target).item() == pytest.approx(2.0)


# ----------------------------------------------------------------------------------- token tagging
LABELS = ["NOUN", "VERB", "DET"]


def _scores(tags: list[list[int]]) -> torch.Tensor:
    """[B, C, L] scores whose argmax is ``tags``."""
    return F.one_hot(T(tags), len(LABELS)).permute(0, 2, 1).float()


def test_seqeval_f1_over_sentences_hand_computed():
    """seqeval reads POS tags as chunks: runs of one tag are one chunk. Sentence 1: true NOUN NOUN | VERB
    (2 chunks), predicted NOUN | VERB VERB (2 chunks), none equal; sentence 2: DET | NOUN, all right (2 of
    2). Precision = recall = 2/4 → F1 = 50 %. Unlabelled positions (−100) are skipped."""
    metric = SeqevalF1(LABELS)
    metric.update(_scores([[0, 1, 1, 2]]), T([[0, 0, 1, IGNORE_INDEX]]))
    metric.update(_scores([[2, 0, 1]]), T([[2, 0, IGNORE_INDEX]]))
    result = metric.compute()
    assert result.item() == pytest.approx(50.0) and result.dtype == torch.float64
    # three sentences of different lengths in one batch: each is cut at its own offset
    batched = SeqevalF1(LABELS)
    batched.update(
        _scores([[0, 0, 1, 1], [2, 2, 2, 2], [1, 0, 0, 0]]),
        T([[0, 0, 1, 1], [2, 0, IGNORE_INDEX, IGNORE_INDEX], [1, 0, IGNORE_INDEX, IGNORE_INDEX]]),
    )
    # chunks (runs of a tag): NOUN·NOUN VERB·VERB both right; DET NOUN predicted as one DET·DET chunk, none
    # right; VERB NOUN both right: 6 true, 5 predicted, 4 correct → F1 = 2·4 / (6 + 5)
    assert batched.compute().item() == pytest.approx(100 * 8 / 11)


def test_seqeval_f1_skips_sentences_without_labels_and_is_zero_without_any():
    metric = SeqevalF1(LABELS)
    empty = metric.compute()
    assert empty.item() == 0.0 and empty.dtype == torch.float64
    metric.update(_scores([[0, 1], [1, 1]]), T([[IGNORE_INDEX, IGNORE_INDEX], [1, 1]]))
    assert metric.compute().item() == pytest.approx(100.0)


def test_token_classification_task_layout_loss_and_labels():
    task = TokenClassificationTask(LABELS)
    assert task.num_outputs == 3 and task.labels == LABELS
    assert TokenClassificationTask(["NOUN", "VERB"]).num_outputs == 2
    logits = torch.randn(2, 4, 3)  # [B, L, C] from the head
    aligned = task.align(logits, None)
    assert aligned.shape == (2, 3, 4) and torch.equal(aligned[:, :, 1], logits[:, 1])
    target = T([[0, 1, IGNORE_INDEX, 2], [IGNORE_INDEX, 0, 0, 1]])
    keep = target != IGNORE_INDEX
    torch.testing.assert_close(task.loss(aligned, target), F.cross_entropy(logits[keep], target[keep]))
    assert set(task.make_metrics()) == {"f1"}
    for bad in (["NOUN"], ["NOUN", "NOUN"]):
        with pytest.raises(ValueError, match="at least 2 distinct labels"):
            TokenClassificationTask(bad)

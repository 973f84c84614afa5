"""Dense tasks: losses and metrics on hand-computed examples, the median against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rw_mtl.tasks import DepthTask, SemanticSegmentationTask, SurfaceNormalTask
from rw_mtl.tasks.dense import NormalAngles


def test_segmentation_metrics_and_ignored_pixels():
    task = SemanticSegmentationTask(num_classes=2)
    target = torch.tensor([[[0, 1], [1, -1]]])
    # argmax [[0, 1], [0, 1]]; the last pixel is unlabelled
    logits = torch.tensor([[[[3.0, 0.0], [2.0, 0.0]], [[0.0, 3.0], [0.0, 5.0]]]])
    metrics = task.make_metrics()
    metrics.update(task.align(logits, target), target)
    result = {k: v.item() for k, v in metrics.compute().items()}
    # pixel acc 2/3; IoU_0 = 1/2, IoU_1 = 1/2
    assert result == pytest.approx({"miou": 50.0, "pix_acc": 200 / 3})
    expected_loss = torch.nn.functional.cross_entropy(logits.flatten(2)[0, :, :3].T, torch.tensor([0, 1, 1]))
    torch.testing.assert_close(task.loss(logits, target), expected_loss)


def test_depth_loss_and_errors_skip_unknown_depth():
    task = DepthTask()
    target = torch.tensor([[[[2.0, 0.0], [4.0, 1.0]]]])
    prediction = torch.tensor([[[[1.0, 5.0], [4.0, 2.0]]]])
    assert task.loss(prediction, target).item() == pytest.approx(2 / 3)
    metrics = task.make_metrics()
    metrics.update(prediction, target)
    result = {k: v.item() for k, v in metrics.compute().items()}
    assert result == pytest.approx({"abs_err": 2 / 3, "rel_err": 0.5})


def test_normal_angles_hand_computed():
    task = SurfaceNormalTask()
    up = [0.0, 0.0, 1.0]
    target = torch.tensor([up, up, up, [0.0, 0.0, 0.0]]).T.reshape(1, 3, 2, 2)
    prediction = torch.tensor([[1.0, 0.0, 1.0], up, [0.0, 1.0, 0.0], up]).T.reshape(
        1, 3, 2, 2
    )  # 45°, 0°, 90°
    metrics = task.make_metrics()
    metrics.update(prediction, target)
    result = {k: v.item() for k, v in metrics.compute().items()}
    assert result == pytest.approx(
        {"mean": 45.0, "median": 45.0, "within_11_25": 100 / 3, "within_22_5": 100 / 3, "within_30": 100 / 3},
        abs=1e-4,
    )
    assert task.loss(prediction, target).item() == pytest.approx(1 - (math.sqrt(0.5) + 1.0) / 3, abs=1e-6)


def test_normal_median_matches_numpy():
    torch.manual_seed(0)
    target = torch.nn.functional.normalize(torch.randn(2, 3, 16, 16), dim=1)
    prediction = target + 0.7 * torch.randn(2, 3, 16, 16)
    metric = NormalAngles()
    metric.update(prediction[:1], target[:1])
    metric.update(prediction[1:], target[1:])
    cosine = (torch.nn.functional.normalize(prediction, dim=1) * target).sum(1).clamp(-1, 1)
    angles = np.degrees(np.arccos(cosine.double().numpy().ravel()))
    result = metric.compute()
    assert result["median"].item() == pytest.approx(np.median(angles), abs=2e-4)
    assert result["mean"].item() == pytest.approx(angles.mean(), abs=1e-9)
    assert result["within_22_5"].item() == pytest.approx(100 * (angles < 22.5).mean())


def test_align_upsamples_to_label_size():
    prediction = torch.randn(2, 13, 4, 6)
    target = torch.zeros(2, 16, 24, dtype=torch.long)
    assert SemanticSegmentationTask(13).align(prediction, target).shape == (2, 13, 16, 24)
    assert DepthTask().align(prediction[:, :1], target[:, None]).shape == (2, 1, 16, 24)

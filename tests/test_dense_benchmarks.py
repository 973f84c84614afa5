"""NYUv2 and CityScapes end to end on tiny copies in the real on-disk format; start-up errors for missing or
malformed data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rw_mtl.data.cityscapes import CityscapesDataModule
from rw_mtl.data.dense_npy import random_scale_crop
from rw_mtl.data.files import DatasetError
from rw_mtl.data.nyuv2 import NYUv2DataModule
from rw_mtl.train import run

from .conftest import FAST_TRAINER, compose_config
from .datasets import tiny_dataset_overrides, write_tiny_nyuv2

CITYSCAPES_METRICS = {"segmentation": {"miou", "pix_acc"}, "depth": {"abs_err", "rel_err"}}
NYU_METRICS = {
    "segmentation": {"miou", "pix_acc"},
    "depth": {"abs_err", "rel_err"},
    "normal": {"mean", "median", "within_11_25", "within_22_5", "within_30"},
}


@pytest.mark.parametrize(
    ("dataset", "expected"), [("nyuv2", NYU_METRICS), ("cityscapes", CITYSCAPES_METRICS)]
)
@pytest.mark.parametrize(
    "weighting", [["weighting/loss=ew"], ["weighting/loss=rlw", "weighting/grad=cagrad"]]
)
def test_short_dense_run(tmp_path, dataset, expected, weighting):
    overrides = tiny_dataset_overrides(dataset, tmp_path / "data")
    config = compose_config(
        [*FAST_TRAINER, f"dataset={dataset}", *overrides, "trainer.max_epochs=1", *weighting],
        output_dir=tmp_path / "run",
    )
    results = run(config)
    assert {task: set(metrics) for task, metrics in results["metrics"]["test"].items()} == expected
    assert results["tasks"]["depth"] == {"abs_err": False, "rel_err": False}
    assert 0 <= results["metrics"]["test"]["segmentation"]["pix_acc"] <= 100
    assert json.loads((Path(config.paths.output_dir) / "results.json").read_text())["dataset"] == dataset


def test_missing_dataset_names_path_and_script(tmp_path):
    with pytest.raises(DatasetError, match=r"nyuv2/train.*scripts/prepare_nyuv2.py"):
        NYUv2DataModule(data_dir=str(tmp_path / "nyuv2"))
    with pytest.raises(DatasetError, match=r"cityscapes/train.*scripts/prepare_cityscapes.py"):
        CityscapesDataModule(data_dir=str(tmp_path / "cityscapes"))


def test_malformed_sample_fails_at_start_up(tmp_path):
    root = write_tiny_nyuv2(tmp_path)
    np.save(root / "train" / "depth" / "0.npy", np.zeros((32, 48, 2), dtype=np.float32))  # 2 channels
    with pytest.raises(DatasetError, match=r"depth/0.npy is malformed \(shape"):
        NYUv2DataModule(data_dir=str(root))


def test_truncated_file_fails_at_start_up(tmp_path):
    root = write_tiny_nyuv2(tmp_path)
    path = root / "train" / "image" / "0.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match=r"image/0.npy is malformed \(unreadable"):
        NYUv2DataModule(data_dir=str(root))


def test_missing_modality_file_count_mismatch(tmp_path):
    root = write_tiny_nyuv2(tmp_path)
    (root / "train" / "normal" / "3.npy").unlink()
    with pytest.raises(DatasetError, match="sample counts"):
        NYUv2DataModule(data_dir=str(root))


def test_random_scale_crop_scales_depth_and_keeps_shapes():
    torch.manual_seed(3)
    image = torch.rand(3, 30, 40)
    targets = {
        "seg": torch.randint(-1, 13, (30, 40)),
        "depth": torch.full((1, 30, 40), 3.0),
        "n": torch.rand(3, 30, 40),
    }
    kinds = {"seg": "label", "depth": "depth", "n": "normal"}
    seen = set()
    for _ in range(30):
        out_image, out = random_scale_crop(image, targets, kinds)
        assert out_image.shape == image.shape and all(out[k].shape == targets[k].shape for k in targets)
        assert out["seg"].dtype == torch.long and set(out["seg"].unique().tolist()) <= set(
            targets["seg"].unique().tolist()
        )
        seen.add(round(3.0 / out["depth"][0, 0, 0].item(), 3))
    assert seen == {1.0, 1.2, 1.5}

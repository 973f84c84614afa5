"""NYUv2 end to end on a tiny copy in the real on-disk format; start-up errors for missing/malformed data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rw_mtl.data.files import DatasetError
from rw_mtl.data.nyuv2 import NYUv2DataModule, random_scale_crop
from rw_mtl.train import run

from .conftest import FAST_TRAINER, compose_config
from .datasets import tiny_dataset_overrides, write_tiny_nyuv2

NYU_METRICS = {
    "segmentation": {"miou", "pix_acc"},
    "depth": {"abs_err", "rel_err"},
    "normal": {"mean", "median", "within_11_25", "within_22_5", "within_30"},
}


@pytest.mark.parametrize(
    "weighting", [["weighting/loss=ew"], ["weighting/loss=rlw", "weighting/grad=cagrad"]]
)
def test_short_nyuv2_run(tmp_path, weighting):
    overrides = tiny_dataset_overrides("nyuv2", tmp_path / "data")
    config = compose_config(
        [*FAST_TRAINER, "dataset=nyuv2", *overrides, "trainer.max_epochs=1", *weighting],
        output_dir=tmp_path / "run",
    )
    results = run(config)
    assert {task: set(metrics) for task, metrics in results["metrics"]["test"].items()} == NYU_METRICS
    assert results["tasks"]["depth"] == {"abs_err": False, "rel_err": False}
    assert 0 <= results["metrics"]["test"]["segmentation"]["pix_acc"] <= 100
    assert 0 <= results["metrics"]["test"]["normal"]["median"] <= 180
    assert json.loads((Path(config.paths.output_dir) / "results.json").read_text())["dataset"] == "nyuv2"


def test_missing_dataset_names_path_and_script(tmp_path):
    with pytest.raises(DatasetError, match=r"nyuv2/train.*scripts/prepare_nyuv2.py"):
        NYUv2DataModule(data_dir=str(tmp_path / "nyuv2"))


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
    image, depth = torch.rand(3, 30, 40), torch.full((1, 30, 40), 3.0)
    label, normal = torch.randint(-1, 13, (30, 40)), torch.rand(3, 30, 40)
    seen = set()
    for _ in range(30):
        out = random_scale_crop(image, label, depth, normal)
        assert [t.shape for t in out] == [image.shape, label.shape, depth.shape, normal.shape]
        assert out[1].dtype == torch.long and set(out[1].unique().tolist()) <= set(label.unique().tolist())
        seen.add(round(3.0 / out[2][0, 0, 0].item(), 3))
    assert seen == {1.0, 1.2, 1.5}

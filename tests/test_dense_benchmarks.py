"""NYUv2 and CityScapes end to end on tiny copies in the real on-disk format; start-up errors for missing or
malformed data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rw_mtl.config_checks import validate_config
from rw_mtl.data.cityscapes import CityscapesDataModule
from rw_mtl.data.dense_npy import random_scale_crop
from rw_mtl.data.files import DatasetError
from rw_mtl.data.nyuv2 import NYUv2DataModule
from rw_mtl.resources import SPLITS_DIR
from rw_mtl.train import run

from .conftest import FAST_TRAINER, compose_config
from .datasets import tiny_dataset_overrides, write_tiny_cityscapes, write_tiny_nyuv2
from .recompute import assert_reported_metrics_are_the_checkpoints

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
    # every metric of every task is the saved best model's on the test split, recomputed here
    assert_reported_metrics_are_the_checkpoints(results, config)
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


def test_nyuv2_defaults_train_on_all_and_validate_on_test_without_augmentation(tmp_path):
    """LibMTL's NYUv2 example at the paper's time: --train_mode trainval, --aug off, test loader per epoch."""
    datamodule = NYUv2DataModule(data_dir=str(write_tiny_nyuv2(tmp_path)))
    assert datamodule.validation_is_test
    assert datamodule.splits["val"] is datamodule.splits["test"]
    assert len(datamodule.splits["train"]) == 4 and not datamodule.splits["train"].augment
    sample = datamodule.splits["train"][0]
    torch.testing.assert_close(
        sample["inputs"], torch.from_numpy(np.load(tmp_path / "nyuv2/train/image/0.npy")).permute(2, 0, 1)
    )


def test_nyuv2_held_out_is_the_authors_636_159_split(tmp_path):
    root = write_tiny_nyuv2(tmp_path, height=2, width=2, train=795)
    datamodule = NYUv2DataModule(data_dir=str(root), validation="held_out")
    authors = json.loads((SPLITS_DIR / "nyuv2" / "data_split.json").read_text())
    train, val = datamodule.splits["train"], datamodule.splits["val"]
    assert not datamodule.validation_is_test
    assert (len(train), len(val)) == (636, 159)
    assert train.indices == authors["train"] and val.indices == authors["val"]
    assert not set(train.indices) & set(val.indices)
    torch.testing.assert_close(
        val[0]["inputs"],
        torch.from_numpy(np.load(root / f"train/image/{authors['val'][0]}.npy")).permute(2, 0, 1),
    )


def test_a_fixture_smaller_than_795_names_the_key_for_a_seeded_split(tmp_path):
    root = write_tiny_nyuv2(tmp_path)
    with pytest.raises(DatasetError, match=r"636 \+ 159 indices.*has 4.*dataset.datamodule.val_fraction=0.2"):
        NYUv2DataModule(data_dir=str(root), validation="held_out")
    first = NYUv2DataModule(data_dir=str(root), validation="held_out", val_fraction=0.25, split_seed=3)
    again = NYUv2DataModule(data_dir=str(root), validation="held_out", val_fraction=0.25, split_seed=3)
    train, val = first.splits["train"].indices, first.splits["val"].indices
    assert (len(train), len(val)) == (3, 1) and sorted(train + val) == [0, 1, 2, 3]
    assert (train, val) == (again.splits["train"].indices, again.splits["val"].indices)
    with pytest.raises(ValueError, match="no authors' validation list.*dataset.datamodule.val_fraction"):
        CityscapesDataModule(data_dir=str(write_tiny_cityscapes(tmp_path)), validation="held_out")


@pytest.mark.parametrize("method", ["moml", "auto_lambda", "forum"])
def test_bilevel_methods_refuse_the_test_split_as_validation(tmp_path, method):
    overrides = tiny_dataset_overrides("nyuv2", tmp_path / "data")
    config = compose_config(
        [*FAST_TRAINER, "dataset=nyuv2", *overrides, f"weighting/loss={method}"], tmp_path / "r"
    )
    with pytest.raises(
        ValueError,
        match=rf"{method} learns from validation.*dataset.datamodule.validation=held_out "
        rf"\(rw_mtl/conf/method/{method}.yaml does\)",
    ):
        validate_config(config)
    assert not (tmp_path / "r").exists()
    composed = compose_config(["dataset=nyuv2", f"+method={method}"])
    assert composed.dataset.datamodule.validation == "held_out"
    validate_config(composed)


@pytest.mark.parametrize(
    ("modality", "array", "problem"),
    [
        ("label", np.full((32, 48), 13.0, dtype=np.float32), r"class ids span \[13, 13\], expected integers"),
        (
            "label",
            np.zeros((16, 24), dtype=np.float32),
            r"size \(16, 24\) differs from its image's \(32, 48\)",
        ),
        ("image", np.full((32, 48, 3), 200, dtype=np.uint8), r"dtype uint8, expected float in \[0, 1\]"),
        (
            "image",
            np.full((32, 48, 3), 200.0, dtype=np.float32),
            r"values span \[200, 200\], expected \[0, 1\]",
        ),
        ("depth", np.full((32, 48, 1), -1.0, dtype=np.float32), "negative depth"),
    ],
)
def test_bad_values_fail_at_start_up_naming_file_and_script(tmp_path, modality, array, problem):
    root = write_tiny_nyuv2(tmp_path)
    np.save(root / "val" / modality / "0.npy", array)  # sample 0 of the test split
    with pytest.raises(DatasetError, match=rf"val/{modality}/0.npy is malformed \({problem}.*prepare_nyuv2"):
        NYUv2DataModule(data_dir=str(root))


def test_a_bad_file_read_later_is_named(tmp_path):
    root = write_tiny_nyuv2(tmp_path)
    datamodule = NYUv2DataModule(data_dir=str(root))
    np.save(root / "train" / "label" / "2.npy", np.zeros((16, 24), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"train/label/2.npy is malformed \(size"):
        datamodule.splits["train"][2]

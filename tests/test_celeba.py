"""CelebA on a tiny copy in the official format: 40 tasks end to end; clear errors for broken files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rw_mtl.data.celeba import CelebADataModule
from rw_mtl.data.files import DatasetError
from rw_mtl.train import run

from .conftest import FAST_TRAINER, compose_config
from .datasets import tiny_dataset_overrides, write_tiny_celeba
from .recompute import assert_reported_metrics_are_the_checkpoints


def test_celeba_forty_tasks_train(tmp_path):
    overrides = tiny_dataset_overrides("celeba", tmp_path / "data")
    config = compose_config(
        [*FAST_TRAINER, "dataset=celeba", *overrides, "trainer.max_epochs=1", "weighting/grad=rgw"],
        output_dir=tmp_path / "run",
    )
    results = run(config)
    assert len(results["metrics"]["test"]) == 40
    # the reported accuracies are the saved model's on the 3 test images: k / 3 each, recomputed here
    reported = results["metrics"]["test_at_best_val"]
    assert_reported_metrics_are_the_checkpoints(results, config)
    assert {round(m["acc"] * 3 / 100, 6) for m in reported.values()} <= {0.0, 1.0, 2.0, 3.0}


def test_labels_and_images_are_read_as_released(tmp_path):
    root = write_tiny_celeba(tmp_path)
    datamodule = CelebADataModule(str(root), num_workers=0)
    assert [len(datamodule.splits[s]) for s in ("train", "val", "test")] == [6, 3, 3]
    sample = datamodule.splits["train"][0]
    # the first listed file, RGB, resized to 64 × 64 (bilinear) and scaled to [0, 1], channels first
    with Image.open(root / "img_align_celeba" / "000001.jpg") as image:
        pixels = np.asarray(image.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32)
    assert sample["inputs"].shape == (3, 64, 64)
    torch.testing.assert_close(sample["inputs"], torch.from_numpy(pixels / 255).permute(2, 0, 1))
    first_line = (root / "list_attr_celeba.txt").read_text().splitlines()[2].split()
    assert [int(sample["targets"][f"Attr_{i}"]) for i in range(40)] == [int(v == "1") for v in first_line[1:]]


def test_broken_files_fail_at_start_up(tmp_path):
    root = write_tiny_celeba(tmp_path)
    with pytest.raises(DatasetError, match="scripts/prepare_celeba.py"):
        CelebADataModule(str(tmp_path / "elsewhere"))
    attributes = root / "list_attr_celeba.txt"
    lines = attributes.read_text().splitlines()
    attributes.write_text("\n".join([*lines[:3], lines[3].rsplit(" ", 1)[0], *lines[4:]]))  # one value short
    with pytest.raises(DatasetError, match=r"list_attr_celeba.txt is malformed \(line 4"):
        CelebADataModule(str(root))
    attributes.write_text("\n".join(lines))
    (root / "img_align_celeba" / "000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"000001.jpg is malformed \(unreadable image"):
        CelebADataModule(str(root))


def test_missing_partition_file_names_it_and_the_script(tmp_path):
    root = write_tiny_celeba(tmp_path)
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(
        DatasetError, match=r"expected file .*list_eval_partition.txt does not exist.*prepare_celeba"
    ):
        CelebADataModule(str(root))


def test_duplicated_attribute_name_fails_instead_of_training_39_tasks(tmp_path):
    root = write_tiny_celeba(tmp_path)
    attributes = root / "list_attr_celeba.txt"
    lines = attributes.read_text().splitlines()
    lines[1] = lines[1].replace("Attr_7", "Attr_3")
    attributes.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetError, match=r"list_attr_celeba.txt is malformed \(line 2 names attributes more "
    ):
        CelebADataModule(str(root))


def test_non_utf8_attribute_file_is_named(tmp_path):
    root = write_tiny_celeba(tmp_path)
    attributes = root / "list_attr_celeba.txt"
    attributes.write_bytes(b"\xff\xfe" + attributes.read_bytes())
    with pytest.raises(
        DatasetError, match=r"list_attr_celeba.txt is malformed \(not UTF-8 text.*prepare_celeba"
    ):
        CelebADataModule(str(root))

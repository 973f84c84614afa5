"""Office-31 / Office-Home: one task per domain with its own images (multi-input), end to end and exact."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch

from rw_mtl.build import build_datamodule, build_module
from rw_mtl.data.files import DatasetError
from rw_mtl.data.office import OfficeDataModule
from rw_mtl.module import MTLModule
from rw_mtl.resources import SPLITS_DIR
from rw_mtl.train import run
from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.interface import DIRECTION, Combination

from .conftest import FAST_TRAINER, compose_config, fit_one_step
from .datasets import tiny_dataset_overrides, write_tiny_office31
from .recompute import assert_reported_metrics_are_the_checkpoints


def office_config(tmp_path, *overrides, dataset="office31"):
    data = tiny_dataset_overrides(dataset, tmp_path / "data")
    return compose_config(
        [*FAST_TRAINER, f"dataset={dataset}", *data, *overrides], output_dir=tmp_path / "run"
    )


@pytest.mark.parametrize(
    "weighting",
    [
        ["weighting/loss=ew"],
        ["weighting/loss=rlw", "weighting/grad=cagrad"],
        ["weighting/grad=rgw"],  # rep mode: one z_t per task
        ["weighting/grad=graddrop"],  # per-task contributions on each z_t
        ["weighting/loss=moml"],  # validation batches from one loader per task
    ],
)
def test_office_trains_every_kind_of_weighting(tmp_path, weighting):
    config = office_config(tmp_path, "trainer.max_epochs=2", *weighting)
    results = run(config)
    assert set(results["metrics"]["test"]) == {"amazon", "dslr", "webcam"}
    # each domain's accuracy is the saved best model's on its own test loader (2 images: 0, 50 or 100 %)
    reported = results["metrics"]["test_at_best_val"]
    assert_reported_metrics_are_the_checkpoints(results, config)
    assert {m["acc"] for m in reported.values()} <= {0.0, 50.0, 100.0}
    # it trained: the last checkpoint's shared encoder and every domain's head moved from the seed's model
    L.seed_everything(config.seed)
    datamodule = build_datamodule(config)
    initial = dict(build_module(config, datamodule.tasks, multi_input=True).named_parameters())
    last = Path(config.paths.output_dir) / "checkpoints" / "last.ckpt"
    trained = torch.load(last, map_location="cpu", weights_only=False)["state_dict"]
    moved = {
        key for key, value in initial.items() if not torch.equal(value, trained[key])
    }  # not BN's buffers
    assert any(key.startswith("arch.encoder.") for key in moved), sorted(moved)
    for domain in ("amazon", "dslr", "webcam"):
        assert any(key.startswith(f"arch.heads.{domain}.") for key in moved), (domain, sorted(moved))


def test_office_home_config(tmp_path):
    results = run(office_config(tmp_path, "trainer.max_epochs=1", dataset="office_home"))
    assert set(results["metrics"]["test"]) == {"art", "clipart", "product"}


class MeanDirection(GradWeighting):
    """A method that answers with a bare direction (no task weights, no per-task contributions)."""

    produces = DIRECTION

    def combine(self, grads, losses):
        return Combination(direction=grads.matrix.mean(dim=0))


def test_direction_only_method_refused_in_multi_input_rep_mode(tmp_path):
    config = office_config(tmp_path)
    datamodule = build_datamodule(config)
    module = build_module(config, datamodule.tasks, multi_input=True)
    with pytest.raises(ValueError, match="cannot be split over the per-task representations.*mode=param"):
        MTLModule(module.arch, module.tasks, module.loss_weighting, MeanDirection(3), "rep", multi_input=True)
    MTLModule(module.arch, module.tasks, module.loss_weighting, MeanDirection(3), "param", multi_input=True)


def test_multi_input_rep_mode_step_is_exact(tmp_path):
    """Each domain's z_t gets w_t ∇_{z_t}(λ_t ℓ_t): the encoder moves by Σ_t w_t ∇θ(λ_t ℓ_t(x_t))."""
    config = office_config(
        tmp_path,
        "weighting/grad=rgw",
        "dataset.encoder.hidden_dropout=0",  # the reference forward below must draw no other dropout mask
        "dataset.datamodule.batch_size=16",
        "dataset.optimizer={_target_:torch.optim.SGD,lr:1.0}",
    )
    L.seed_everything(0)
    datamodule = build_datamodule(config)
    module = build_module(config, datamodule.tasks, multi_input=True)
    before = copy.deepcopy(module)
    fit_one_step(module, datamodule)
    weights, loss_weights = module.grad_weighting.last_weights, module.last_loss_weights
    arch = before.arch.train()
    shared = arch.shared_parameters()
    expected = [torch.zeros_like(p) for p in shared]
    for index, (task, dataset) in enumerate(datamodule.splits["train"].items()):
        batch = [dataset[i] for i in range(len(dataset))]
        inputs = torch.stack([item["inputs"] for item in batch])
        targets = torch.stack([item["targets"][task] for item in batch])
        loss = before.tasks[task].loss(arch(inputs, [task])[task], targets) * loss_weights[index]
        for total, grad in zip(expected, torch.autograd.grad(loss, shared), strict=True):
            total += weights[index] * grad
    for got_before, got_after, want in zip(shared, module.arch.shared_parameters(), expected, strict=True):
        torch.testing.assert_close(got_before.detach() - got_after.detach(), want, atol=3e-5, rtol=1e-4)


def test_broken_office_data_fails_at_start_up(tmp_path):
    root = write_tiny_office31(tmp_path)
    domains = {"amazon": "amazon", "dslr": "dslr", "webcam": "webcam"}
    with pytest.raises(DatasetError, match="scripts/prepare_office31.py"):
        OfficeDataModule(str(tmp_path / "nowhere"), domains, 2)
    with pytest.raises(DatasetError, match=r"2 class folders, expected 31"):
        OfficeDataModule(str(root), domains, 31, split="random")


TABLE8_TEST_SIZES = {
    ("office-31", "amazon"): 585,
    ("office-31", "dslr"): 122,
    ("office-31", "webcam"): 180,
    ("office-home", "Art"): 527,
    ("office-home", "Clipart"): 923,
    ("office-home", "Product"): 944,
    ("office-home", "Real_World"): 925,
}


def test_shipped_lists_are_the_authors_splits():
    """LibMTL's data_txt lists: Table 8's accuracies are k/n for these test sizes; 31 / 65 classes, one index
    per class name across domains, every image in exactly one split."""
    for (lists, domain), test_size in TABLE8_TEST_SIZES.items():
        parts = {
            part: [
                line.rsplit(" ", 1)
                for line in (SPLITS_DIR / lists / f"{domain}_{part}.txt").read_text().split("\n")
                if line
            ]
            for part in ("train", "val", "test")
        }
        assert len(parts["test"]) == test_size
        paths = [path for rows in parts.values() for path, _ in rows]
        assert len(paths) == len(set(paths)) and all(path.startswith(f"{domain}/") for path in paths)
        classes = {path.split("/")[-2]: int(index) for rows in parts.values() for path, index in rows}
        assert sorted(classes.values()) == list(range(31 if lists == "office-31" else 65))


def write_lists(lists: Path, root: Path, domains=("amazon", "dslr", "webcam")) -> Path:
    """Lists in the authors' format for the tiny fixture: per domain, per class 3 train, 1 val, 1 test."""
    lists.mkdir(parents=True, exist_ok=True)
    for domain in domains:
        images = sorted((root / domain / "images").glob("*/*.jpg"))
        for part, picks in {"train": (0, 1, 2), "val": (3,), "test": (4,)}.items():
            lines = [
                f"{path.relative_to(root)} {1 - int(path.parent.name[-1])}"  # the lists' own class indices
                for path in images
                if int(path.stem[-1]) in picks
            ]
            (lists / f"{domain}_{part}.txt").write_text("\n".join(lines) + "\n")
    return lists


def test_authors_lists_are_read_with_their_class_indices(tmp_path):
    root = write_tiny_office31(tmp_path / "data")
    lists = write_lists(tmp_path / "lists", root)
    datamodule = OfficeDataModule(
        str(root), {"amazon": "amazon", "dslr": "dslr", "webcam": "webcam"}, 2, lists=str(lists)
    )
    assert {part: len(datamodule.splits[part]["dslr"]) for part in ("train", "val", "test")} == {
        "train": 6,
        "val": 2,
        "test": 2,
    }
    path, label = datamodule.splits["test"]["webcam"].items[0]
    assert path == root / "webcam/images/class_0/frame_0004.jpg" and label == 1
    assert int(datamodule.splits["test"]["webcam"][0]["targets"]["webcam"]) == 1


def test_missing_listed_image_and_empty_class_folder_fail_at_start_up(tmp_path):
    root = write_tiny_office31(tmp_path / "data")
    lists = write_lists(tmp_path / "lists", root)
    domains = {"amazon": "amazon", "dslr": "dslr", "webcam": "webcam"}
    (root / "dslr/images/class_1/frame_0004.jpg").unlink()
    with pytest.raises(
        DatasetError, match=r"1 images of dslr_test.txt are missing.*class_1/frame_0004.jpg.*prepare_office31"
    ):
        OfficeDataModule(str(root), domains, 2, lists=str(lists))
    for image in (root / "dslr/images/class_1").iterdir():
        image.unlink()
    with pytest.raises(DatasetError, match=r"class_1 is malformed \(a class folder without images"):
        OfficeDataModule(str(root), domains, 2, split="random")

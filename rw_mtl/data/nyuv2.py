"""NYUv2 (Silberman et al., 2012): 13-class segmentation, depth and surface normals on 288×384 images.

On-disk layout (the preprocessed release of Liu et al.'s MTAN, which the paper's code uses), under
``<data_dir>/nyuv2``::

    train/{image,label,depth,normal}/<i>.npy   795 samples
    val/{image,label,depth,normal}/<i>.npy     654 samples (the official test split)

image: float32 [288, 384, 3] in [0, 1]; label: [288, 384] class ids 0…12, −1 unlabelled; depth:
[288, 384, 1], 0 where unknown; normal: [288, 384, 3] unit vectors, 0 where unknown. Built by
``scripts/prepare_nyuv2.py``. The release has no validation split; like the paper's code, validation
defaults to the test split (``val_fraction: 0``), or holds out a fraction of train.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from rw_mtl.data.files import malformed, require_dir
from rw_mtl.tasks import DepthTask, SemanticSegmentationTask, SurfaceNormalTask

SCRIPT = "scripts/prepare_nyuv2.py"
MODALITIES = ("image", "label", "depth", "normal")
CHANNELS = {"image": 3, "depth": 1, "normal": 3}


def random_scale_crop(
    image: Tensor, label: Tensor, depth: Tensor, normal: Tensor, scales=(1.0, 1.2, 1.5)
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MTAN's augmentation: crop a random 1/s window, resize back; depth is divided by s (closer scene)."""
    height, width = image.shape[-2:]
    scale = scales[int(torch.randint(len(scales), ()))]
    h, w = int(height / scale), int(width / scale)
    top, left = int(torch.randint(height - h + 1, ())), int(torch.randint(width - w + 1, ()))
    window = (slice(None), slice(top, top + h), slice(left, left + w))

    def resize(x: Tensor, mode: str) -> Tensor:
        options = {"align_corners": True} if mode == "bilinear" else {}
        return F.interpolate(x[window][None], size=(height, width), mode=mode, **options)[0]

    return (
        resize(image, "bilinear"),
        resize(label[None].float(), "nearest")[0].long(),
        resize(depth, "nearest") / scale,
        resize(normal, "bilinear"),
    )


def nyuv2_tasks() -> dict:
    """The three NYUv2 tasks, in the paper's order."""
    return {
        "segmentation": SemanticSegmentationTask(num_classes=13),
        "depth": DepthTask(),
        "normal": SurfaceNormalTask(),
    }


class NYUv2Dataset(Dataset):
    """One split of the preprocessed NYUv2; checks its files when built."""

    def __init__(self, root: Path, split: str, augment: bool = False) -> None:
        self.root = require_dir(Path(root) / split, "nyuv2", SCRIPT)
        counts = {}
        for modality in MODALITIES:
            folder = require_dir(self.root / modality, "nyuv2", SCRIPT)
            counts[modality] = len(list(folder.glob("*.npy")))
        if len(set(counts.values())) != 1 or counts["image"] == 0:
            raise malformed(
                "nyuv2", self.root, f"sample counts per modality differ or are zero: {counts}", SCRIPT
            )
        self.size, self.augment = counts["image"], augment
        self[0]  # noqa: B018 — load one sample now, so a malformed file fails at start-up

    def __len__(self) -> int:
        return self.size

    def _load(self, modality: str, index: int) -> Tensor:
        path = self.root / modality / f"{index}.npy"
        try:
            array = np.load(path)
        except (OSError, ValueError) as err:
            raise malformed("nyuv2", path, f"unreadable: {err}", SCRIPT) from err
        expected_dims = 2 if modality == "label" else 3
        if array.ndim != expected_dims or (expected_dims == 3 and array.shape[-1] != CHANNELS[modality]):
            raise malformed("nyuv2", path, f"shape {array.shape}", SCRIPT)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return tensor.long() if modality == "label" else tensor.float().permute(2, 0, 1)

    def __getitem__(self, index: int) -> dict:
        image, label, depth, normal = (self._load(m, index) for m in MODALITIES)
        if self.augment:
            image, label, depth, normal = random_scale_crop(image, label, depth, normal)
        return {"inputs": image, "targets": {"segmentation": label, "depth": depth, "normal": normal}}


class NYUv2DataModule(L.LightningDataModule):
    """Train (with MTAN's random scale-crop), validation and test loaders for NYUv2's three tasks."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 8,
        num_workers: int = 2,
        augment: bool = True,
        val_fraction: float = 0.0,
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= val_fraction < 1:
            raise ValueError(f"dataset.datamodule.val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.root = Path(data_dir)
        self.tasks = nyuv2_tasks()
        self.splits: dict[str, Dataset] = {}
        NYUv2Dataset(self.root, "train")  # fail at start-up, before any model is built

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        hp = self.hparams
        train = NYUv2Dataset(self.root, "train", augment=hp.augment)
        test = NYUv2Dataset(self.root, "val")
        if hp.val_fraction > 0:
            order = torch.randperm(
                len(train), generator=torch.Generator().manual_seed(hp.split_seed)
            ).tolist()
            held_out = int(round(hp.val_fraction * len(train)))
            validation = Subset(NYUv2Dataset(self.root, "train"), order[:held_out])
            train = Subset(train, order[held_out:])
        else:
            validation = test
        self.splits = {"train": train, "val": validation, "test": test}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            self.splits[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

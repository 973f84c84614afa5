"""multi_digits: the embedded default benchmark, MultiMNIST-style, built from scikit-learn's bundled digits.

Each image overlays ``num_digits`` handwritten 8×8 digits along the diagonal, each shifted by ``shift``
pixels from the previous one, so that neighbours overlap; task ``digit<i>`` classifies the i-th digit. The
1,797 source digits are split 60/20/20 *before* composing, so no test digit was seen in training. It needs
no download: scikit-learn ships the source images.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import Tensor
from torch.utils.data import Dataset

from rw_mtl.data.loaders import SplitLoaders
from rw_mtl.data.validation import HELD_OUT, check_validation
from rw_mtl.tasks import ClassificationTask

_DIGIT_SIZE = 8
_MAX_PIXEL = 16.0


class MultiTaskTensorDataset(Dataset):
    """Images [N, C, H, W] with one label vector [N] per task; items are ``{"inputs", "targets"}`` dicts."""

    def __init__(self, inputs: Tensor, targets: dict[str, Tensor]) -> None:
        if any(len(t) != len(inputs) for t in targets.values()):
            raise ValueError("every task needs one target per input")
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        return {"inputs": self.inputs[index], "targets": {t: y[index] for t, y in self.targets.items()}}


def compose_digits(
    images: np.ndarray, labels: np.ndarray, count: int, num_digits: int, shift: int, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """``count`` composites of ``num_digits`` digits drawn from ``images`` [N, 8, 8]; returns
    images [count, 1, S, S] scaled to [0, 1] (S = 8 + shift·(num_digits-1)) and labels [count, num_digits]."""
    size = _DIGIT_SIZE + shift * (num_digits - 1)
    picks = rng.integers(0, len(images), size=(count, num_digits))
    canvas = np.zeros((count, size, size), dtype=np.float32)
    for slot in range(num_digits):
        offset = slot * shift
        window = canvas[:, offset : offset + _DIGIT_SIZE, offset : offset + _DIGIT_SIZE]
        np.maximum(window, images[picks[:, slot]], out=window)
    inputs = torch.from_numpy(canvas / _MAX_PIXEL).unsqueeze(1)
    return inputs, torch.from_numpy(labels[picks]).long()


class MultiDigitsDataModule(SplitLoaders, L.LightningDataModule):
    """Train/val/test composites of ``num_digits`` digits (tasks ``digit0`` … ``digit{K-1}``)."""

    validation_is_test = False

    def __init__(
        self,
        num_digits: int = 3,
        shift: int = 3,
        train_size: int = 6000,
        val_size: int = 1000,
        test_size: int = 1000,
        batch_size: int = 128,
        num_workers: int = 0,
        data_seed: int = 0,
        validation: str = HELD_OUT,
    ) -> None:  # pragma: no mutate block (save_hyperparameters reads this frame, hidden by mutmut)
        super().__init__()
        check_validation(validation, (HELD_OUT,), "multi_digits")
        if num_digits < 2:
            raise ValueError(
                f"multi_digits needs num_digits >= 2 (dataset.datamodule.num_digits), got {num_digits}"
            )
        if not 0 < shift <= _DIGIT_SIZE:
            raise ValueError(f"dataset.datamodule.shift must be in 1..{_DIGIT_SIZE}, got {shift}")
        self.save_hyperparameters()
        self.tasks = {f"digit{i}": ClassificationTask(num_classes=10) for i in range(num_digits)}
        self.splits: dict[str, MultiTaskTensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        hp = self.hparams
        digits = load_digits()
        rng = np.random.default_rng(hp.data_seed)
        order = rng.permutation(len(digits.target))
        cut_train, cut_val = int(0.6 * len(order)), int(0.8 * len(order))
        pools = {"train": order[:cut_train], "val": order[cut_train:cut_val], "test": order[cut_val:]}
        sizes = {"train": hp.train_size, "val": hp.val_size, "test": hp.test_size}
        for split, pool in pools.items():
            inputs, labels = compose_digits(
                digits.images[pool], digits.target[pool], sizes[split], hp.num_digits, hp.shift, rng
            )
            self.splits[split] = MultiTaskTensorDataset(
                inputs, {name: labels[:, i] for i, name in enumerate(self.tasks)}
            )

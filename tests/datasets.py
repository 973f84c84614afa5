"""Tiny copies of the on-disk benchmarks, in their real formats, for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_nyuv2(root: Path, train: int = 4, test: int = 3, height: int = 32, width: int = 48) -> Path:
    """``root/nyuv2`` in the MTAN release layout, filled with random but well-formed samples."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", test)):
        for index in range(count):
            normal = rng.normal(size=(height, width, 3)).astype(np.float32)
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
            label = rng.integers(-1, 13, size=(height, width)).astype(np.float32)
            depth = rng.uniform(0.5, 5.0, size=(height, width, 1)).astype(np.float32)
            depth[: height // 8] = 0.0  # unknown depth, as in the real data
            sample = {
                "image": rng.uniform(size=(height, width, 3)).astype(np.float32),
                "label": label,
                "depth": depth,
                "normal": normal,
            }
            for modality, array in sample.items():
                folder = root / "nyuv2" / split / modality
                folder.mkdir(parents=True, exist_ok=True)
                np.save(folder / f"{index}.npy", array)
    return root / "nyuv2"


def tiny_dataset_overrides(name: str, data_dir: Path) -> list[str]:
    """Overrides that run dataset ``name`` on a tiny copy under ``data_dir`` (written here) on CPU."""
    if name == "nyuv2":
        write_tiny_nyuv2(data_dir)
        return [
            f"paths.data_dir={data_dir}",
            "dataset.encoder.name=resnet18",
            "dataset.encoder.pretrained=false",
            "dataset.head.channels=16",
            "dataset.datamodule.batch_size=2",
            "dataset.datamodule.num_workers=0",
        ]
    return []

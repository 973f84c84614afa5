"""Shared by the prepare_<dataset>.py scripts: arguments, placing a release under the data dir, checks."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rw_mtl.data.dense_npy import DenseLayout, DenseNpyDataset


def arguments(doc: str, argv: list[str] | None = None) -> argparse.Namespace:
    """--source (the downloaded release), --data-dir (rw_mtl's paths.data_dir) and --copy."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="the unpacked official release")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="rw_mtl's paths.data_dir")
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    return parser.parse_args(argv)


def place(source: Path, target: Path, copy: bool) -> Path:
    """Link (or copy) ``source`` to ``target`` unless ``target`` exists already; returns ``target``."""
    if target.exists():
        print(f"{target} exists; checking it (remove it to prepare again)")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copytree(source, target)
    else:
        target.symlink_to(source.resolve(), target_is_directory=True)
    return target


def prepare_dense(
    layout: DenseLayout, expected: dict[str, int], doc: str, argv: list[str] | None = None
) -> int:
    """For MTAN-format releases (NYUv2, CityScapes): place, then check every split's files."""
    args = arguments(doc, argv)
    target = place(args.source, args.data_dir / layout.name, args.copy)
    for split, count in expected.items():
        size = len(DenseNpyDataset(target, layout, split))
        print(f"{split}: {size} samples" + ("" if size == count else f" (the release has {count})"))
    print(f"ok: run with paths.data_dir={args.data_dir} dataset={layout.name}")
    return 0

"""Shared by prepare_nyuv2.py and prepare_cityscapes.py: link or copy an MTAN release and check it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rw_mtl.data.dense_npy import DenseLayout, DenseNpyDataset


def prepare(layout: DenseLayout, expected: dict[str, int], doc: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="the unzipped release (train/, val/)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="rw_mtl's paths.data_dir")
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    args = parser.parse_args(argv)

    target = args.data_dir / layout.name
    if target.exists():
        print(f"{target} exists; checking it (remove it to prepare again)")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        if args.copy:
            shutil.copytree(args.source, target)
        else:
            target.symlink_to(args.source.resolve(), target_is_directory=True)
    for split, count in expected.items():
        size = len(DenseNpyDataset(target, layout, split))
        note = "" if size == count else f" (the release has {count})"
        print(f"{split}: {size} samples{note}")
    print(f"ok: run with paths.data_dir={args.data_dir} dataset={layout.name}")
    return 0

"""Put the preprocessed NYUv2 release where rw_mtl expects it, and check it.

Official source: the preprocessed NYUv2 of Liu et al.'s MTAN ("End-to-End Multi-Task Learning with
Attention", https://github.com/lorenmt/mtan, linked from its README as nyuv2.zip), derived from
Silberman et al.'s NYU Depth v2 labelled set. Download and unzip it, then:

    python scripts/prepare_nyuv2.py --source /path/to/unzipped/nyuv2 --data-dir data

which links (or with --copy, copies) it to <data-dir>/nyuv2 and verifies the layout of docs/datasets.md:
train/ and val/ each with image/, label/, depth/, normal/ holding <i>.npy (795 and 654 samples).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rw_mtl.data.nyuv2 import NYUv2Dataset

EXPECTED = {"train": 795, "val": 654}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, required=True, help="the unzipped release (train/, val/)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="rw_mtl's paths.data_dir")
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    args = parser.parse_args(argv)

    target = args.data_dir / "nyuv2"
    if target.exists():
        print(f"{target} exists; checking it (remove it to prepare again)")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        if args.copy:
            shutil.copytree(args.source, target)
        else:
            target.symlink_to(args.source.resolve(), target_is_directory=True)
    for split, expected in EXPECTED.items():
        size = len(NYUv2Dataset(target, split))
        note = "" if size == expected else f" (the release has {expected})"
        print(f"{split}: {size} samples{note}")
    print(f"ok: run with paths.data_dir={args.data_dir} dataset=nyuv2")
    return 0


if __name__ == "__main__":
    sys.exit(main())

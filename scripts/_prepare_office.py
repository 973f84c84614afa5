"""Shared by prepare_office31.py and prepare_office_home.py: link or copy a release and check it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from rw_mtl.data.office import OfficeDataModule

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"


def prepare(name: str, doc: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--source", type=Path, required=True, help="the unzipped release (one folder per domain)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="rw_mtl's paths.data_dir")
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    args = parser.parse_args(argv)
    target = args.data_dir / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        if args.copy:
            shutil.copytree(args.source, target)
        else:
            target.symlink_to(args.source.resolve(), target_is_directory=True)
    options = OmegaConf.load(CONF / f"{name}.yaml").datamodule
    datamodule = OfficeDataModule(
        str(target), dict(options.domains), options.num_classes, name=name, num_workers=0
    )
    for task in datamodule.tasks:
        sizes = {split: len(datamodule.splits[split][task]) for split in ("train", "val", "test")}
        print(f"{task}: {sizes}")
    print(f"ok: run with paths.data_dir={args.data_dir} dataset={name}")
    return 0

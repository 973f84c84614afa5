"""Put the official CelebA release where rw_mtl expects it, and check it.

Official source: CelebA, Liu et al. (mmlab.ie.cuhk.edu.hk/projects/CelebA.html): "Align&Cropped Images"
(img_align_celeba.zip) and, from the "Anno" and "Eval" folders, list_attr_celeba.txt and
list_eval_partition.txt. Put the three in one folder (the zip unzipped to img_align_celeba/), then:

    python scripts/prepare_celeba.py --source /path/to/celeba --data-dir data

which links (or with --copy, copies) it to <data-dir>/celeba and checks the files and the partition sizes.
"""

from __future__ import annotations

import sys

from _prepare import arguments, place

from rw_mtl.data.celeba import CelebADataModule

EXPECTED = {"train": 162_770, "val": 19_867, "test": 19_962}


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    target = place(args.source, args.data_dir / "celeba", args.copy)
    datamodule = CelebADataModule(str(target), num_workers=0)
    for split, count in EXPECTED.items():
        size = len(datamodule.splits[split])
        print(f"{split}: {size} images" + ("" if size == count else f" (the release has {count})"))
    print(
        f"{len(datamodule.tasks)} attribute tasks; ok: run with paths.data_dir={args.data_dir} dataset=celeba"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

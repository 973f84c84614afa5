"""Put the preprocessed NYUv2 release where rw_mtl expects it, and check it.

Official source: the preprocessed NYUv2 of Liu et al.'s MTAN ("End-to-End Multi-Task Learning with
Attention", github.com/lorenmt/mtan, linked from its README as nyuv2.zip), derived from Silberman et al.'s
NYU Depth v2 labelled set. Download and unzip it, then:

    python scripts/prepare_nyuv2.py --source /path/to/unzipped/nyuv2 --data-dir data

which links (or with --copy, copies) it to <data-dir>/nyuv2 and verifies the layout of docs/datasets.md:
train/ and val/ each with image/, label/, depth/, normal/ holding <i>.npy (795 and 654 samples).
"""

import sys

from _prepare import prepare_dense

from rw_mtl.data.nyuv2 import LAYOUT

if __name__ == "__main__":
    sys.exit(prepare_dense(LAYOUT, {"train": 795, "val": 654}, __doc__))

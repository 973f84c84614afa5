"""Put the preprocessed CityScapes release where rw_mtl expects it, and check it.

Official source: the 7-class, 128×256 CityScapes of Liu et al.'s MTAN (github.com/lorenmt/mtan, linked from
its README), derived from Cordts et al.'s fine annotations (cityscapes-dataset.com, registration needed).
Download and unzip it, then:

    python scripts/prepare_cityscapes.py --source /path/to/unzipped/cityscapes --data-dir data

which links (or with --copy, copies) it to <data-dir>/cityscapes and verifies the layout of
docs/datasets.md: train/ and val/ each with image/, label_7/, depth/ holding <i>.npy (2,975 and 500).
"""

import sys

from _prepare import prepare_dense

from rw_mtl.data.cityscapes import LAYOUT

if __name__ == "__main__":
    sys.exit(prepare_dense(LAYOUT, {"train": 2975, "val": 500}, __doc__))

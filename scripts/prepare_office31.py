"""Put the Office-31 release where rw_mtl expects it, and check it.

Official source: Office-31, Saenko et al. (2010), "domain_adaptation_images.tar.gz" with the folders
amazon/, dslr/, webcam/ (each images/<31 classes>/*.jpg; 4,110 images in all). Unpack it, then:

    python scripts/prepare_office31.py --source /path/to/domain_adaptation_images --data-dir data

which links (or with --copy, copies) it to <data-dir>/office31 and prints each domain's 60/20/20 split.
"""

import sys

from _prepare_office import prepare

if __name__ == "__main__":
    sys.exit(prepare("office31", __doc__))

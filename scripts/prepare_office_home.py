"""Put the Office-Home release where rw_mtl expects it, and check it.

Official source: Office-Home, Venkateswara et al. (2017), hemanthdv.org/officeHomeDataset.html:
"OfficeHomeDataset_10072016" with the folders Art/, Clipart/, Product/, Real_World/ (each <65 classes>/*.jpg;
15,500 images in all). Unzip it, then:

    python scripts/prepare_office_home.py --source /path/to/OfficeHomeDataset_10072016 --data-dir data

which links (or with --copy, copies) it to <data-dir>/office_home and prints each domain's 60/20/20 split.
"""

import sys

from _prepare_office import prepare

if __name__ == "__main__":
    sys.exit(prepare("office_home", __doc__))

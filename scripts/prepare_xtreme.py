"""Put XTREME's PAWS-X and UD-POS files where rw_mtl expects them, and check them.

Official source: XTREME, Hu et al. (2020), github.com/google-research/xtreme: its scripts/download_data.sh
leaves download/pawsx/ and download/udpos/ with {train,dev,test}-<lang>.tsv (PAWS-X from Yang et al.,
2019; UD-POS from Universal Dependencies v2.5). Then:

    python scripts/prepare_xtreme.py --source /path/to/xtreme/download --data-dir data

which links (or with --copy, copies) pawsx/ and udpos/ to <data-dir>/xtreme and checks the files of the
paper's languages (PAWS-X: en zh de es; UD-POS: en zh te vi). mBERT itself comes from the hub
(bert-base-multilingual-cased) or a local copy named in dataset.encoder.name.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rw_mtl.data.xtreme import XtremeDataModule

LANGUAGES = {"pawsx": ["en", "zh", "de", "es"], "udpos": ["en", "zh", "te", "vi"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, required=True, help="XTREME's download/ folder")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    args = parser.parse_args(argv)
    target = args.data_dir / "xtreme"
    target.mkdir(parents=True, exist_ok=True)
    for problem, languages in LANGUAGES.items():
        destination = target / problem
        if not destination.exists():
            if args.copy:
                shutil.copytree(args.source / problem, destination)
            else:
                destination.symlink_to((args.source / problem).resolve(), target_is_directory=True)
        XtremeDataModule(str(target), problem, languages, tokenizer="unused-until-setup")
        print(f"{problem}: files for {', '.join(languages)} present")
    print(f"ok: run with paths.data_dir={args.data_dir} dataset=xtreme_pi or dataset=xtreme_pos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

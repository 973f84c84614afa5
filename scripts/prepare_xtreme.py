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

import sys

from _prepare import arguments, place

from rw_mtl.data.xtreme import XtremeDataModule

LANGUAGES = {"pawsx": ["en", "zh", "de", "es"], "udpos": ["en", "zh", "te", "vi"]}


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    target = args.data_dir / "xtreme"
    for problem, languages in LANGUAGES.items():
        place(args.source / problem, target / problem, args.copy)
        XtremeDataModule(str(target), problem, languages, tokenizer="unused-until-setup")
        print(f"{problem}: files for {', '.join(languages)} present")
    print(f"ok: run with paths.data_dir={args.data_dir} dataset=xtreme_pi or dataset=xtreme_pos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

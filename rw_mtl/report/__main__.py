"""``rw-mtl report DIR…``: results.json files → the paper's tables, the litmus verdicts and figures.

The same as ``python -m rw_mtl.report DIR…``.

One table per setting and architecture in the paper's layout (EW, the loss-balancing block, the
gradient-balancing block; * / † on the best of a block, bold overall; the paper's decimals; Δp against
EW with HPS where the paper prints one; a "vs RLW/RGW" litmus column), the paper's own table in the same
layout below ours, Table 4/5 grids for sweeps that cross methods or architectures, the litmus verdicts,
what was grouped, and notes on every file skipped. Writes report.md, report.csv, report.tex, litmus.json,
fig1_distributions.png, fig2_validation.png and litmus.png (each atomically); ``--wandb`` logs them as
one W&B run in the sweep's group.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rw_mtl.report.document import build, write
from rw_mtl.resources import PAPER_TABLES_DIR

SPLITS = ("test_at_best_val", "test")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rw-mtl report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories holding results.json")
    parser.add_argument("--out", type=Path, help="where to write the report (default: <first dir>/report)")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test_at_best_val",
        help="test metrics of the best-validation checkpoint (default) or of the final model",
    )
    parser.add_argument("--paper-dir", type=Path, default=PAPER_TABLES_DIR)
    parser.add_argument(
        "--delta-p",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force the Δp column on (or off); default: as the paper's table of the dataset has one "
        "(not Tables 3, 7, 8)",
    )
    parser.add_argument(
        "--wandb",
        nargs="?",
        const="rw_mtl",
        metavar="PROJECT",
        help="also log the tables and figures as a W&B run (default project: rw_mtl)",
    )
    parser.add_argument("--wandb-group", help="the W&B group (default: the sweep's, as its runs logged)")
    args = parser.parse_args(argv)

    try:
        report = build(args.dirs, args.split, args.paper_dir, args.delta_p)
    except FileNotFoundError as err:
        parser.error(str(err))
    for note in report.notes:
        print(f"warning: {note}", file=sys.stderr)
    if not report.collection.groups:
        parser.error(f"no usable results.json under {', '.join(map(str, args.dirs))}; run `rw-mtl` first")
    out = args.out or args.dirs[0] / "report"
    written = write(report, out)
    if args.wandb:
        from rw_mtl.report.wandb_report import log_report, report_group

        group = args.wandb_group or report_group(report.collection, args.dirs)
        log_report(args.wandb, group, out, report.tables, [path for path in written if path.suffix == ".png"])
        print(f"logged to W&B: project {args.wandb}, group {group}")
    print(report.markdown)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())

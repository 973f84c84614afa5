"""Δp grids in the layout of the paper's Tables 4 and 5, with its numbers beside ours.

Table 4 crosses loss methods (columns) with gradient methods (rows, "Vanilla" = none) on HPS; Table 5
crosses methods (rows) with architectures (columns). A grid is drawn for every dataset whose runs span
both axes (for Table 4: with at least one loss method other than EW combined with a gradient method, so
that Table 1's list of methods stays a list); each cell is our Δp against EW with HPS (mean over seeds)
and, where the paper has that cell, its value in parentheses.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from rw_mtl.report.collect import PAPER_NAMES, Group

ARCH_NAMES = {
    "hps": "HPS",
    "cross_stitch": "Cross-stitch",
    "mtan": "MTAN",
    "nddr_cnn": "NDDR-CNN",
    "mmoe": "MMoE",
    "cgc": "CGC",
    "ple": "PLE",
    "dselect_k": "DSelect-k",
    "ltb": "LTB",
}
NO_GRAD_ROW = "Vanilla"  # the paper's name for "no gradient method" (Table 4)

# dataset → the paper's grid files (first column: row name; other columns: column names)
PAPER_GRIDS = {
    "nyuv2": {"loss_grad": "table4_nyuv2_combinations.csv", "arch": "table5_nyuv2_architectures.csv"},
}


def read_grid(path: Path) -> dict[tuple[str, str], float]:
    """(row name, column name) → value of a paper grid CSV; empty if the file is absent."""
    if not path.is_file():
        return {}
    with open(path) as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    return {
        (row[0], column): float(value)
        for row in rows[1:]
        for column, value in zip(header[1:], row[1:], strict=True)
        if value
    }


def _grad_row(group: Group) -> str:
    return NO_GRAD_ROW if group.grad == "none" else PAPER_NAMES.get(group.grad, group.grad)


def _grid(
    title: str,
    cells: dict[tuple[str, str], float],
    paper: dict[tuple[str, str], float],
    rows: Sequence[str],
    columns: Sequence[str],
    paper_key: Callable[[str, str], tuple[str, str]],
) -> list[str]:
    out = [title, "", "| | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    for row in rows:
        line = []
        for column in columns:
            ours = cells.get((row, column))
            reported = paper.get(paper_key(row, column))
            text = f"{ours:+.2f}" if ours is not None else "—"
            line.append(text + (f" ({reported:+.2f})" if reported is not None else ""))
        out.append(f"| {row} | " + " | ".join(line) + " |")
    return [*out, ""]


def render_grids(groups: list[Group], rows: list[dict], paper_dir: Path | None) -> str:
    """Markdown Δp grids (Table 4: loss × gradient method on HPS; Table 5: method × architecture) for the
    datasets whose runs span both axes of one; ``rows`` are ``table_rows(groups, …)`` in the same order."""
    out = []
    for dataset in dict.fromkeys(group.dataset for group in groups):
        entries = [
            (group, row["delta_p"][0])
            for group, row in zip(groups, rows, strict=True)
            if group.dataset == dataset and not group.variant and "delta_p" in row
        ]
        files = PAPER_GRIDS.get(dataset, {}) if paper_dir is not None else {}
        hps = [(group, value) for group, value in entries if group.arch == "hps"]
        losses = list(dict.fromkeys(PAPER_NAMES.get(g.loss, g.loss) for g, _ in hps))
        grads = list(dict.fromkeys(_grad_row(g) for g, _ in hps))
        crossed = any(g.loss != "ew" and g.grad != "none" for g, _ in hps)  # not just a list of rows
        if len(losses) > 1 and len(grads) > 1 and crossed:
            out += _grid(
                f"### {dataset}: Δp (%) — gradient × loss method on HPS (paper's Table 4 in parentheses)",
                {(_grad_row(g), PAPER_NAMES.get(g.loss, g.loss)): value for g, value in hps},
                read_grid(Path(paper_dir) / files["loss_grad"]) if "loss_grad" in files else {},
                grads,
                losses,
                lambda row, column: (row, column),
            )
        archs = list(dict.fromkeys(ARCH_NAMES.get(g.arch, g.arch) for g, _ in entries))
        if len(archs) > 1:
            cells = {(g.label, ARCH_NAMES.get(g.arch, g.arch)): value for g, value in entries}
            out += _grid(
                f"### {dataset}: Δp (%) — method × architecture (paper's Table 5 in parentheses)",
                cells,
                read_grid(Path(paper_dir) / files["arch"]) if "arch" in files else {},
                list(dict.fromkeys(g.label for g, _ in entries)),
                archs,
                lambda row, column: (row.replace(" + ", "+"), column),  # the paper writes "RLW+CAGrad"
            )
    return "\n".join(out)

"""Δp grids in the layout of the paper's Tables 4 and 5, with its numbers beside ours.

Table 4 crosses loss methods (columns: EW, UW, DWA, IMTL-L, RLW) with gradient methods (rows: "Vanilla"
= none, MGDA-UB … RotoGrad, RGW) on HPS, the best of each row in bold; Table 5 crosses methods (rows: EW,
CAGrad, RLW, RLW + CAGrad) with architectures (columns: HPS, Cross-stitch, MTAN, NDDR-CNN), the best of
each column in bold (the captions of Tables 4 and 5). Rows and columns follow the paper's order
(rw_mtl.report.order; Table 5's rows as its CSV lists them), methods it does not have after its own. A
grid is drawn for every setting whose runs span both axes (Table 4: with at least one loss method other
than EW combined with a gradient method, so that Table 1's list of methods stays a list); each cell is
our Δp against EW with HPS (mean over seeds) and, where the paper has that cell, its value in parentheses.
The random methods are rows and columns of their own here (RLW's column, RGW's row): the litmus test
reads along a row or down a column.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from rw_mtl.report.collect import method_name
from rw_mtl.report.order import ARCHS, EW, NO_GRAD, arch_rank, method_rank, row_rank
from rw_mtl.report.tables import Table

NO_GRAD_ROW = "Vanilla"  # the paper's name for "no gradient method" (Table 4)

# dataset → the paper's grid files (first column: row name; other columns: column names)
PAPER_GRIDS = {
    "nyuv2": {"loss_grad": "table4_nyuv2_combinations.csv", "arch": "table5_nyuv2_architectures.csv"},
}
TABLE5 = "table5_nyuv2_architectures.csv"  # its row order is the paper's for any dataset


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


def _paper_label(label: str) -> str:
    return label.replace(" + ", "+")  # the paper writes "RLW+CAGrad"


def _grid(
    title: str,
    cells: dict[tuple[str, str], float],
    paper: dict[tuple[str, str], float],
    rows: Sequence[str],
    columns: Sequence[str],
    paper_key: Callable[[str, str], tuple[str, str]],
    best_per_row: bool,
) -> list[str]:
    def best(values: list[float | None]) -> float | None:
        present = [round(v, 2) for v in values if v is not None]
        return max(present) if len(present) > 1 else None

    row_best = {r: best([cells.get((r, c)) for c in columns]) for r in rows}
    column_best = {c: best([cells.get((r, c)) for r in rows]) for c in columns}
    out = [title, "", "| | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    for row in rows:
        line = []
        for column in columns:
            ours = cells.get((row, column))
            reported = paper.get(paper_key(row, column))
            text = f"{ours:+.2f}" if ours is not None else "—"
            top = row_best[row] if best_per_row else column_best[column]
            if ours is not None and round(ours, 2) == top:
                text = f"**{text}**"
            line.append(text + (f" ({reported:+.2f})" if reported is not None else ""))
        out.append(f"| {row} | " + " | ".join(line) + " |")
    return [*out, ""]


def _table5_order(paper_dir: Path | None) -> list[str]:
    grid = read_grid(Path(paper_dir) / TABLE5) if paper_dir is not None else {}
    return list(dict.fromkeys(row for row, _ in grid))


def _row_order(group, paper_order: list[str]) -> tuple:
    """Table 5's rows as the paper lists them (EW, CAGrad, RLW, RLW+CAGrad), other rows after."""
    label = _paper_label(group.label)
    if label in paper_order:
        return (0, paper_order.index(label))
    return (1, row_rank(group.loss, group.grad))


def render_grids(tables: list[Table], paper_dir: Path | None) -> str:
    """Markdown Δp grids (Table 4: gradient × loss method on HPS; Table 5: method × architecture) for the
    settings whose runs span both axes of one."""
    out = []
    sections = list(dict.fromkeys(table.section.key for table in tables if not table.from_paper))
    for key in sections:
        ours = [t for t in tables if not t.from_paper and t.section.key == key]
        section = ours[0].section
        entries = [
            (row.group, row.delta_p[0])
            for t in ours
            for row in t.rows
            if row.delta_p and not row.group.variant
        ]
        files = PAPER_GRIDS.get(section.dataset, {}) if paper_dir is not None else {}
        hps = [(group, value) for group, value in entries if group.arch == "hps"]
        crossed = any(g.loss != EW and g.grad != NO_GRAD for g, _ in hps)  # not just a list of rows
        losses = sorted({g.loss for g, _ in hps}, key=lambda n: (n != EW, method_rank(n, "loss")))
        grads = sorted({g.grad for g, _ in hps}, key=lambda n: (n != NO_GRAD, method_rank(n, "grad")))
        if len(losses) > 1 and len(grads) > 1 and crossed:
            grad_row = lambda name: NO_GRAD_ROW if name == NO_GRAD else method_name(name)  # noqa: E731
            out += _grid(
                f"### {section.title}: Δp (%) — gradient × loss method on HPS (paper's Table 4 in "
                "parentheses; best of each row in bold)",
                {(grad_row(g.grad), method_name(g.loss)): value for g, value in hps},
                read_grid(Path(paper_dir) / files["loss_grad"]) if "loss_grad" in files else {},
                [grad_row(name) for name in grads],
                [method_name(name) for name in losses],
                lambda row, column: (row, column),
                best_per_row=True,
            )
        archs = sorted({g.arch for g, _ in entries}, key=arch_rank)
        if len(archs) > 1:
            paper_order = _table5_order(paper_dir)
            ranked = sorted(
                {g.label: g for g, _ in entries}.values(), key=lambda g: _row_order(g, paper_order)
            )
            labels = [g.label for g in ranked]
            out += _grid(
                f"### {section.title}: Δp (%) — method × architecture (paper's Table 5 in parentheses; best"
                " of each architecture in bold)",
                {(g.label, ARCHS.get(g.arch, g.arch)): value for g, value in entries},
                read_grid(Path(paper_dir) / files["arch"]) if "arch" in files else {},
                labels,
                [ARCHS.get(arch, arch) for arch in archs],
                lambda row, column: (_paper_label(row), column),
                best_per_row=False,
            )
    return "\n".join(out)

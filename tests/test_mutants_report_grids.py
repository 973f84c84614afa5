"""The Table 4 / Table 5 Δp grids and the paper's row order, character by character (fast: no runs read).

Written against the surviving mutants of ``make mutate`` in rw_mtl/report/grids.py and order.py
(docs/testing.md, "Report: grids and order"): the grids are rendered from hand-built tables, so every cell,
bold mark, paper value in parentheses, row and column order is known in advance.

The NYUv2 sweep below (Δp in %, against EW on HPS):

- HPS, loss × gradient method (Table 4's layout): Vanilla row EW +0.00, UW +0.50, DWA −0.30, FAMO +0.70,
  RLW +1.00 (RLW best: bold); PCGrad row EW −0.10, DWA +0.40 (two cells: DWA bold); CAGrad row EW +1.20,
  UW +1.10, RLW +2.00 (RLW bold, not EW's +1.20 that is best of its column); UPGrad and RGW one cell each
  (no bold). UPGrad and FAMO are not in the paper: after its methods, before RGW / RLW.
- Cross-stitch: EW +1.50, CAGrad +2.50; MTAN: EW +2.00, RLW +2.70, RLW + CAGrad +3.00; ``my_arch`` (an
  architecture the paper does not name): EW −1.00.
- UW with ``mode=param`` (a variant) and IMTL-L without a Δp are in the tables, not in the grids.
"""

# ruff: noqa: E501 (the expected grids are whole lines of the report)
from __future__ import annotations

import pytest

from rw_mtl.report.collect import Group, Section
from rw_mtl.report.grids import read_grid, render_grids
from rw_mtl.report.order import method_rank
from rw_mtl.report.tables import Row, Table
from rw_mtl.resources import PAPER_TABLES_DIR

NYU = [  # arch, loss, grad, Δp (None: no Δp), variant
    ("hps", "ew", "none", 0.0, ""),
    ("hps", "uw", "none", 0.5, ""),
    ("hps", "uw", "none", 9.99, "mode=param"),
    ("hps", "imtl_l", "none", None, ""),
    ("hps", "dwa", "none", -0.3, ""),
    ("hps", "famo", "none", 0.7, ""),
    ("hps", "rlw", "none", 1.0, ""),
    ("hps", "ew", "cagrad", 1.2, ""),
    ("hps", "uw", "cagrad", 1.1, ""),
    ("hps", "rlw", "cagrad", 2.0, ""),
    ("hps", "ew", "pcgrad", -0.1, ""),
    ("hps", "dwa", "pcgrad", 0.4, ""),
    ("hps", "ew", "rgw", 0.6, ""),
    ("hps", "ew", "upgrad", 0.9, ""),
    ("cross_stitch", "ew", "none", 1.5, ""),
    ("cross_stitch", "ew", "cagrad", 2.5, ""),
    ("mtan", "ew", "none", 2.0, ""),
    ("mtan", "rlw", "none", 2.7, ""),
    ("mtan", "rlw", "cagrad", 3.0, ""),
    ("my_arch", "ew", "none", -1.0, ""),
]


def tables_of(dataset: str, key: str, runs) -> list[Table]:
    """One table per architecture of one setting, as build_tables makes them (only what the grids read)."""
    section = Section(dataset, {}, key, title=f"{dataset} ({key})")
    by_arch: dict[str, list[Row]] = {}
    for arch, loss, grad, value, variant in runs:
        group = Group(dataset, arch, loss, grad, variant)
        delta = (value, 0.5) if value is not None else None
        by_arch.setdefault(arch, []).append(Row(group.label, group.block, arch, 2, {}, delta, group=group))
    return [Table(arch, section, arch, rows, {}, [], {}, True) for arch, rows in by_arch.items()]


def paper_rows_table() -> Table:
    """A table of the paper's own numbers: never a source of grid cells."""
    row = Row("UW", "loss", "hps", 1, {}, (5.0, 0.0))
    return Table("the paper's Table 1", None, "hps", [row], {}, [], {}, True, from_paper=True)


TABLE4_WITH_PAPER = """### nyuv2 (s1): Δp (%) — gradient × loss method on HPS (paper's Table 4 in parentheses; best of each row in bold)

| | EW | UW | DWA | FAMO | RLW |
| --- | --- | --- | --- | --- | --- |
| Vanilla | +0.00 (+0.00) | +0.50 (+0.64) | -0.30 (+0.63) | +0.70 | **+1.00** (+1.04) |
| PCGrad | -0.10 (-0.16) | — (+0.72) | **+0.40** (+0.19) | — | — (+0.97) |
| CAGrad | +1.20 (+1.36) | +1.10 (+1.07) | — (+1.41) | — | **+2.00** (+2.20) |
| UPGrad | +0.90 | — | — | — | — |
| RGW | +0.60 (+0.62) | — (+0.82) | — (+0.41) | — | — (+1.46) |
"""

TABLE5_WITH_PAPER = """### nyuv2 (s1): Δp (%) — method × architecture (paper's Table 5 in parentheses; best of each architecture in bold)

| | HPS | Cross-stitch | MTAN | my_arch |
| --- | --- | --- | --- | --- |
| EW | +0.00 (+0.00) | +1.50 (+1.43) | +2.00 (+2.56) | -1.00 |
| CAGrad | +1.20 (+1.36) | **+2.50** (+2.42) | — (+2.26) | — |
| RLW | +1.00 (+1.04) | — (+2.23) | +2.70 (+2.66) | — |
| RLW + CAGrad | **+2.00** (+2.20) | — (+2.76) | **+3.00** (+2.92) | — |
| UW | +0.50 | — | — | — |
| DWA | -0.30 | — | — | — |
| FAMO | +0.70 | — | — | — |
| PCGrad | -0.10 | — | — | — |
| UPGrad | +0.90 | — | — | — |
| RGW | +0.60 | — | — | — |
| DWA + PCGrad | +0.40 | — | — | — |
| UW + CAGrad | +1.10 | — | — | — |
"""


def test_grids_show_our_cells_the_papers_in_parentheses_and_the_best_in_bold():
    """Table 4: the best of each row bold (a row of two cells too; a row of one none), the paper's value
    beside ours, and where only the paper has the cell. Table 5: the paper's four rows first in its order
    (its "RLW+CAGrad" is our "RLW + CAGrad"), the others in Table 1's order (loss, gradient, combined by
    gradient method); the paper's architectures in Table 5's order, an unknown one by its own name."""
    tables = [paper_rows_table(), *tables_of("nyuv2", "s1", NYU)]
    assert render_grids(tables, PAPER_TABLES_DIR) == TABLE4_WITH_PAPER + "\n" + TABLE5_WITH_PAPER


def test_grids_without_the_papers_tables_sort_every_row_by_table_1s_order():
    """No paper directory: no values in parentheses, and Table 5's rows are in Table 1's block order."""
    expected = """### nyuv2 (s1): Δp (%) — gradient × loss method on HPS (paper's Table 4 in parentheses; best of each row in bold)

| | EW | UW | DWA | FAMO | RLW |
| --- | --- | --- | --- | --- | --- |
| Vanilla | +0.00 | +0.50 | -0.30 | +0.70 | **+1.00** |
| PCGrad | -0.10 | — | **+0.40** | — | — |
| CAGrad | +1.20 | +1.10 | — | — | **+2.00** |
| UPGrad | +0.90 | — | — | — | — |
| RGW | +0.60 | — | — | — | — |

### nyuv2 (s1): Δp (%) — method × architecture (paper's Table 5 in parentheses; best of each architecture in bold)

| | HPS | Cross-stitch | MTAN | my_arch |
| --- | --- | --- | --- | --- |
| EW | +0.00 | +1.50 | +2.00 | -1.00 |
| UW | +0.50 | — | — | — |
| DWA | -0.30 | — | — | — |
| FAMO | +0.70 | — | — | — |
| RLW | +1.00 | — | +2.70 | — |
| PCGrad | -0.10 | — | — | — |
| CAGrad | +1.20 | **+2.50** | — | — |
| UPGrad | +0.90 | — | — | — |
| RGW | +0.60 | — | — | — |
| DWA + PCGrad | +0.40 | — | — | — |
| UW + CAGrad | +1.10 | — | — | — |
| RLW + CAGrad | **+2.00** | — | **+3.00** | — |
"""
    assert render_grids(tables_of("nyuv2", "s1", NYU), None) == expected


def test_a_dataset_the_paper_has_no_grids_of_gets_ours_alone():
    """Cityscapes has no Table 4/5 in the paper: the grids are drawn without parentheses (Table 5's rows
    still in its order: EW, CAGrad, then the others)."""
    runs = [
        ("hps", "ew", "none", 0.0, ""),
        ("hps", "uw", "none", -0.25, ""),
        ("hps", "ew", "cagrad", 0.75, ""),
        ("hps", "uw", "cagrad", 0.125, ""),
        ("mtan", "ew", "none", 1.0, ""),
    ]
    expected = """### cityscapes (c): Δp (%) — gradient × loss method on HPS (paper's Table 4 in parentheses; best of each row in bold)

| | EW | UW |
| --- | --- | --- |
| Vanilla | **+0.00** | -0.25 |
| CAGrad | **+0.75** | +0.12 |

### cityscapes (c): Δp (%) — method × architecture (paper's Table 5 in parentheses; best of each architecture in bold)

| | HPS | MTAN |
| --- | --- | --- |
| EW | +0.00 | +1.00 |
| CAGrad | **+0.75** | — |
| UW | -0.25 | — |
| UW + CAGrad | +0.12 | — |
"""
    assert render_grids(tables_of("cityscapes", "c", runs), PAPER_TABLES_DIR) == expected


def test_a_grid_needs_two_values_on_each_axis_and_a_crossed_run():
    """Per setting, each grid after the previous setting's: HPS alone draws no Table 5; Table 4 needs two loss columns, two gradient rows and a
    loss method other than EW combined with a gradient method (else it is Table 1's list of rows)."""
    settings = {
        "two_archs": [("hps", "ew", "none", 0.0, ""), ("mtan", "ew", "none", 1.0, "")],
        "list": [
            ("hps", "ew", "none", 0.0, ""),
            ("hps", "uw", "none", 1.0, ""),
            ("hps", "ew", "cagrad", 2.0, ""),
        ],
        "one_loss": [("hps", "uw", "none", 1.0, ""), ("hps", "uw", "cagrad", 2.0, "")],
        "one_grad": [("hps", "ew", "cagrad", 1.0, ""), ("hps", "uw", "cagrad", 2.0, "")],
        "two_by_two": [
            ("hps", "ew", "none", 0.0, ""),
            ("hps", "uw", "none", 1.0, ""),
            ("hps", "ew", "cagrad", 2.0, ""),
            ("hps", "uw", "cagrad", 3.0, ""),
        ],
    }
    tables = [table for key, runs in settings.items() for table in tables_of("nyuv2", key, runs)]
    expected = """### nyuv2 (two_archs): Δp (%) — method × architecture (paper's Table 5 in parentheses; best of each architecture in bold)

| | HPS | MTAN |
| --- | --- | --- |
| EW | +0.00 (+0.00) | +1.00 (+2.56) |

### nyuv2 (two_by_two): Δp (%) — gradient × loss method on HPS (paper's Table 4 in parentheses; best of each row in bold)

| | EW | UW |
| --- | --- | --- |
| Vanilla | +0.00 (+0.00) | **+1.00** (+0.64) |
| CAGrad | +2.00 (+1.36) | **+3.00** (+1.07) |
"""
    assert render_grids(tables, PAPER_TABLES_DIR) == expected


def test_read_grid_maps_row_and_column_names_to_the_papers_numbers(tmp_path):
    """Table 4's 10 × 5 cells as printed; an empty cell is no cell; a missing file is no grid."""
    grid = read_grid(PAPER_TABLES_DIR / "table4_nyuv2_combinations.csv")
    assert len(grid) == 50
    assert grid[("Vanilla", "EW")] == 0.0
    assert grid[("MGDA-UB", "IMTL-L")] == -0.59
    assert grid[("RGW", "RLW")] == 1.46
    assert read_grid(PAPER_TABLES_DIR / "table5_nyuv2_architectures.csv")[("RLW+CAGrad", "NDDR-CNN")] == 3.53
    path = tmp_path / "grid.csv"
    path.write_text("method,HPS,MTAN\nEW,0.50,\nRLW,,-1.25\n")
    assert read_grid(path) == {("EW", "HPS"): 0.5, ("RLW", "MTAN"): -1.25}
    assert read_grid(tmp_path / "absent.csv") == {}


@pytest.mark.parametrize("line", ["RLW,1.0", "RLW,1.0,2.0,3.0"])
def test_read_grid_refuses_a_row_of_another_length_than_its_header(tmp_path, line):
    """A ragged paper CSV is an error, not a grid with cells shifted or dropped."""
    path = tmp_path / "grid.csv"
    path.write_text(f"method,HPS,MTAN\n{line}\n")
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is (shorter|longer) than argument 1"):
        read_grid(path)


def test_paper_methods_come_first_whatever_the_other_names_sort_like():
    """The paper's methods rank before the others even against a name that sorts before digits."""
    assert sorted(["-mine", "uw", "rlw"], key=lambda name: method_rank(name, "loss")) == [
        "uw",
        "-mine",
        "rlw",
    ]

"""The report's tables (rw_mtl/report/tables.py) and document (document.py) where the hand-checked NYUv2
sweep of tests/test_mutants_report.py does not reach: a metric every task shares (its average column, the
CelebA-wide cut to the average), the decimals rule without a paper table, blank Δp and its notes, the
paper's own tables without Δp or with a blank cell, marks tied at the printed precision, missing cells,
LaTeX escapes, the Table 5 grid beside the paper's numbers, and where a group's runs are.

Written against the surviving mutants of ``make mutate`` (docs/testing.md, "Report: tables and document").
"""

# ruff: noqa: E501 (the expected tables are whole lines of the report)
from __future__ import annotations

from pathlib import Path

import pytest

from rw_mtl.report.collect import collect
from rw_mtl.report.document import _where, build, write
from rw_mtl.report.tables import (
    MAX_TASK_COLUMNS,
    Row,
    Table,
    build_tables,
    metric_columns,
    paper_decimals,
    paper_has_delta_p,
    paper_rows,
    render_latex,
    render_markdown,
    shared_metric,
    shown_columns,
)
from rw_mtl.results import write_json_atomic
from tests.test_mutants_report import (
    PAPER_TABLE1,
    no_rasterising,  # noqa: F401 (the fixture, used by name below)
    write_figure_sweep,
    write_sweep,
)

SHIPPED_PAPER = Path(__file__).resolve().parents[1] / "rw_mtl" / "report" / "paper"


def write_runs(root: Path, dataset: str, tasks: dict, runs: list[tuple]) -> Path:
    """One results.json per (directory, arch, loss, grad, seed, task → metric → value), test split."""
    for directory, arch, loss, grad, seed, metrics in runs:
        payload = {
            "dataset": dataset, "arch": arch, "loss_method": loss, "grad_method": grad, "seed": seed,
            "tasks": tasks, "metrics": {"test": metrics},
            "config": {"weighting": {"loss": {"name": loss}, "grad": {"name": grad}}},
        }  # fmt: skip
        write_json_atomic(root / directory / f"s{seed}" / "results.json", payload)
    return root


# ------------------------------------------------------------------------- a metric every task shares
def test_the_shared_metric_is_the_one_metric_of_two_or_more_tasks():
    acc = {"acc": True}
    assert shared_metric({"a": acc, "b": acc}) == "acc"
    assert shared_metric({"a": acc, "b": acc, "c": acc}) == "acc"
    assert shared_metric({"a": acc}) is None  # one task: its own column is the average
    assert shared_metric({"a": acc, "b": {"f1": True}}) is None
    assert shared_metric({"a": {"x": True, "y": False}, "b": {"x": True, "y": False}}) is None
    # the average column keeps the metric's direction
    assert metric_columns({"a": {"err": False}, "b": {"err": False}}) == {
        "a/err": False,
        "b/err": False,
        "avg/err": False,
    }
    assert metric_columns({"a": {"x": True, "y": False}}) == {"a/x": True, "a/y": False}


def test_wide_tables_keep_only_the_average_beyond_max_task_columns():
    def columns(tasks: int, average: bool) -> list[str]:
        return [f"t{i}/acc" for i in range(tasks)] + (["avg/acc"] if average else [])

    assert MAX_TASK_COLUMNS == 12
    assert shown_columns(columns(13, True)) == ["avg/acc"]
    assert shown_columns(columns(12, True)) == columns(12, True)
    assert shown_columns(columns(13, False)) == columns(13, False)  # no average to fall back on


TOY_TASKS = {"a": {"acc": True}, "b": {"acc": True}, "c": {"acc": True}}
TOY_RUNS = [  # directory, arch, loss, grad, seed, metrics
    ("ew", "hps", "ew", "none", 0, {"a": {"acc": -0.5}, "b": {"acc": 1.0}, "c": {"acc": 1.0}}),
    ("ew", "hps", "ew", "none", 1, {"a": {"acc": 1.5}, "b": {"acc": 1.0}, "c": {"acc": 2.0}}),
    ("uw", "hps", "uw", "none", 0, {"a": {"acc": 0.2}, "b": {"acc": 0.5}, "c": {"acc": 1.2}}),
    ("uw", "hps", "uw", "none", 1, {"a": {"acc": 0.4}, "b": {"acc": 0.9}, "c": {"acc": 1.4}}),
    ("ew-mine", "my_net", "ew", "none", 0, {"a": {"acc": 0.5}, "b": {"acc": 1.0}, "c": {"acc": 1.5}}),
]

# The average column: the mean and std over seeds of each seed's task average (EW: 0.5 and 1.5 → 1.00 ±
# 0.71; UW: 0.6333 and 0.9 → 0.77 ± 0.19), not the average of the per-task stds. Decimals without a paper
# table: 4 where every |mean| is below 1 (a: 0.5 though its std is 1.41), else 2 (b reaches 1.0, c 1.5).
# Δp against EW's means 0.5, 1.0, 1.5: EW's seeds (−2 + 0 − 1/3) / 3 = −77.78 % and +77.78 % (std 109.99);
# UW's (−0.6 − 0.5 − 0.2) / 3 = −43.33 % and (−0.2 − 0.1 − 0.0667) / 3 = −12.22 % (−27.78 ± 22.00).
TOY_MD = """### toy — HPS

|  | method | seeds | a/acc ↑ | b/acc ↑ | c/acc ↑ | avg/acc ↑ | Δp ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
|  | EW | 2 | **0.5000** ± 1.4142 | **1.00** ± 0.00 | **1.50** ± 0.71 | **1.00** ± 0.71 | **+0.00%** ± 109.99 | — |
| Loss Bal. | UW | 2 | 0.3000 ± 0.1414 | 0.70 ± 0.28 | 1.30 ± 0.14 | 0.77 ± 0.19 | -27.78% ± 22.00 | — |

### toy — my_net

|  | method | seeds | a/acc ↑ | b/acc ↑ | c/acc ↑ | avg/acc ↑ | Δp ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
|  | EW | 1 | 0.5000 | 1.00 | 1.50 | 1.00 | +0.00% | — |
"""


def test_a_shared_metric_gets_its_seed_averaged_column_and_the_decimals_rule(tmp_path):
    runs = write_runs(tmp_path / "runs", "toy", TOY_TASKS, TOY_RUNS)
    tables, notes = build_tables(collect([runs], "test"), "test", SHIPPED_PAPER)
    assert notes == []
    assert render_markdown(tables) == TOY_MD
    hps, mine = tables
    assert hps.decimals == {"a/acc": 4, "b/acc": 2, "c/acc": 2, "avg/acc": 2}
    assert hps.higher == {"a/acc": True, "b/acc": True, "c/acc": True, "avg/acc": True}
    ew, uw = hps.rows
    assert ew.values["avg/acc"] == pytest.approx((1.0, 0.5**0.5))
    assert uw.values["avg/acc"] == pytest.approx((0.7666667, 0.1885618))
    assert uw.seed_delta_p == pytest.approx({0: -130 / 3, 1: -(0.2 + 0.1 + 0.1 / 1.5) * 100 / 3})
    assert (mine.arch, mine.title) == ("my_net", "toy — my_net")


# ------------------------------------------------------------------------------ blank Δp and the notes
def test_notes_say_why_delta_p_is_blank_or_missing(tmp_path):
    """EW at 0 in two metrics: Δp left blank (no division by 0), the note names both metrics, EW's run count
    and the directory of its first run; no EW at all: no Δp, no litmus; EW at exactly 1: an ordinary Δp."""
    tasks = {"a": {"x": True}, "b": {"y": False}}
    runs = write_runs(
        tmp_path / "runs",
        "zero",
        tasks,
        [
            ("ew", "hps", "ew", "none", 0, {"a": {"x": 0.0}, "b": {"y": 0.0}}),
            ("ew", "hps", "ew", "none", 1, {"a": {"x": 0.0}, "b": {"y": 0.0}}),
            ("uw", "hps", "uw", "none", 0, {"a": {"x": 1.0}, "b": {"y": 1.0}}),
        ],
    )
    write_runs(runs, "noew", tasks, [("noew", "hps", "uw", "none", 0, {"a": {"x": 1.0}, "b": {"y": 1.0}})])
    write_runs(
        runs,
        "one",
        tasks,
        [
            ("one-ew", "hps", "ew", "none", 0, {"a": {"x": 1.0}, "b": {"y": 1.0}}),
            ("one-uw", "hps", "uw", "none", 0, {"a": {"x": 1.5}, "b": {"y": 0.5}}),
        ],
    )
    report = build([runs], "test", None)
    notes = [
        f"zero: Δp left blank: EW's a/x, b/y is 0, and Δp divides by EW's value (2 EW runs: {runs / 'ew' / 's0'})",
        "noew: no EW run on HPS, so no Δp and no litmus column",
    ]
    assert report.notes == notes
    assert report.markdown.endswith("\n\n## Notes\n\n" + "".join(f"- {note}\n" for note in notes))
    assert report.markdown.startswith("# rw_mtl report (test)\n\n### zero — HPS")  # not replaced by the notes
    assert "| hps | UW | 0 |" in report.markdown.split("## Notes")[0]  # after the grouping
    by_title = {table.title: table for table in report.tables}
    assert [row.delta_p for row in by_title["zero — HPS"].rows] == [None, None]
    assert [row.delta_p for row in by_title["noew — HPS"].rows] == [None]
    ew, uw = by_title["one — HPS"].rows
    assert (ew.delta_p, uw.delta_p) == ((0.0, 0.0), (50.0, 0.0))


# ------------------------------------------------------------------------------- the paper's own tables
def test_paper_tables_are_read_only_where_the_file_is(tmp_path):
    assert paper_rows(tmp_path, "nyuv2") == {} and paper_decimals(tmp_path, "nyuv2") == {}
    assert paper_rows(None, "nyuv2") == {} and paper_rows(SHIPPED_PAPER, "toy") == {}
    assert paper_has_delta_p(SHIPPED_PAPER, "nyuv2") is True
    assert paper_has_delta_p(SHIPPED_PAPER, "cityscapes") is True
    assert paper_has_delta_p(SHIPPED_PAPER, "xtreme_pi") is False  # Table 3: averages only
    assert paper_has_delta_p(SHIPPED_PAPER, "celeba") is False
    assert paper_has_delta_p(SHIPPED_PAPER, "toy") is None  # no table of it
    assert paper_has_delta_p(tmp_path, "nyuv2") is None  # its file is not there
    assert paper_has_delta_p(None, "nyuv2") is None


def test_the_papers_table_keeps_its_printed_numbers_on_hps_with_one_entry_each(tmp_path):
    runs, paper = write_sweep(tmp_path)
    tables, _ = build_tables(collect([runs], "test"), "test", paper)
    ours, theirs = tables[:2]
    assert (theirs.title, theirs.arch, theirs.section, theirs.from_paper) == (
        "nyuv2 — the paper's Table 1 (its printed numbers, this layout)",
        "hps",
        None,
        True,
    )
    assert theirs.shown == ours.shown and theirs.higher == ours.higher
    assert theirs.decimals == {"segmentation/miou": 2, "segmentation/pix_acc": 4, "depth/abs_err": 4}
    assert [(row.label, row.block, row.arch, row.seeds) for row in theirs.rows] == [
        ("EW", "baseline", "hps", 1),
        ("UW", "loss", "hps", 1),
        ("RLW", "loss", "hps", 1),
        ("RGW", "grad", "hps", 1),
    ]
    uw = theirs.rows[1]
    assert uw.values == {
        "segmentation/miou": (54.29, 0.0),
        "segmentation/pix_acc": (0.7548, 0.0),
        "depth/abs_err": (0.3815, 0.0),
    }
    assert (uw.delta_p, uw.seed_delta_p) == ((0.70, 0.0), {0: 0.70})
    assert (uw.litmus.method, uw.litmus.reference, uw.litmus.mean) == ("UW", "RLW", pytest.approx(-0.34))
    assert [row.litmus for row in theirs.rows if row.label != "UW"] == [None, None, None]


PAPER_TABLE3 = (  # Table 3's layout (no Δp), printed here with three decimals
    "group,method,pi_en,pi_zh,pi_avg\nbaseline,EW,94.290,84.990,89.640\nloss,RLW,94.100,85.200,89.650\n"
)
XTREME_MD = """### xtreme_pi — HPS

|  | method | seeds | en/acc ↑ | zh/acc ↑ | avg/acc ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- |
|  | EW | 1 | **94.500** | 85.000 | 89.750 | — |
| Loss Bal. | RLW | 1 | 94.000 | **86.000** | **90.000** | reference |

### xtreme_pi — the paper's Table 3 (its printed numbers, this layout)

|  | method | seeds | en/acc ↑ | zh/acc ↑ | avg/acc ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- |
|  | EW | paper | **94.290** | 84.990 | 89.640 | — |
| Loss Bal. | RLW | paper | 94.100 | **85.200** | **89.650** | reference |
"""


def test_a_dataset_whose_paper_table_has_no_delta_p_gets_none_unless_forced(tmp_path):
    """Table 3's layout: no Δp column in ours or the paper's, and the paper's decimals (3 here) where the
    rule would give 2; with ``delta_p_column=True`` ours gets Δp, the paper's still has none to show."""
    tasks = {"en": {"acc": True}, "zh": {"acc": True}}
    runs = write_runs(
        tmp_path / "runs",
        "xtreme_pi",
        tasks,
        [
            ("ew", "hps", "ew", "none", 0, {"en": {"acc": 94.5}, "zh": {"acc": 85.0}}),
            ("rlw", "hps", "rlw", "none", 0, {"en": {"acc": 94.0}, "zh": {"acc": 86.0}}),
        ],
    )
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "table3_xtreme.csv").write_text(PAPER_TABLE3)
    tables, _ = build_tables(collect([runs], "test"), "test", paper)
    assert render_markdown(tables) == XTREME_MD
    assert [table.show_delta_p for table in tables] == [False, False]

    forced, paper_table = build_tables(collect([runs], "test"), "test", paper, delta_p_column=True)[0]
    assert (forced.show_delta_p, paper_table.show_delta_p) == (True, False)
    assert [row.delta_p for row in paper_table.rows] == [None, None]
    assert render_markdown([forced]).splitlines()[2] == (
        "|  | method | seeds | en/acc ↑ | zh/acc ↑ | avg/acc ↑ | Δp ↑ | vs RLW/RGW |"
    )


def test_a_blank_delta_p_in_the_papers_table_gets_no_litmus_cell(tmp_path):
    """UW's Δp cell left empty in the paper's CSV: no Δp, no comparison with RLW (which has one)."""
    runs, paper = write_sweep(tmp_path)
    (paper / "table1_nyuv2.csv").write_text(PAPER_TABLE1.replace("0.3815,0.70", "0.3815,"))
    tables, _ = build_tables(collect([runs], "test"), "test", paper)
    theirs = tables[1]
    uw = theirs.rows[1]
    assert (uw.label, uw.delta_p, uw.seed_delta_p, uw.litmus) == ("UW", None, {}, None)
    assert render_markdown([theirs]).splitlines()[5] == (
        "| Loss Bal. | UW | paper | **54.29**\\* | **0.7548**\\* | 0.3815 | — | — |"
    )


# ---------------------------------------------------------------------- marks, missing cells, escapes
def hand_table() -> Table:
    """EW, three loss rows and one gradient row; DWA has no a/x, CAGrad no Δp, UW's and RLW's Δp tie at
    two decimals (1.004 and 1.001 both print +1.00 %), a label with "%" and "_"."""
    rows = [
        Row("EW", "baseline", "hps", 1, {"a/x": (0.5, 0.0), "b/y": (2.0, 0.0)}, (0.0, 0.0)),
        Row("DWA", "loss", "hps", 1, {"b/y": (1.0, 0.0)}, (-3.0, 0.0)),
        Row("UW", "loss", "hps", 1, {"a/x": (0.75, 0.0), "b/y": (1.5, 0.0)}, (1.004, 0.0)),
        Row("RLW (p=50%, k_1)", "loss", "hps", 1, {"a/x": (0.25, 0.0), "b/y": (3.0, 0.0)}, (1.001, 0.0)),
        Row("CAGrad", "grad", "hps", 1, {"a/x": (0.8, 0.0), "b/y": (1.25, 0.0)}, None),
    ]
    higher = {"a/x": True, "b/y": False}
    return Table("hand — HPS", None, "hps", rows, higher, ["a/x", "b/y"], {"a/x": 2, "b/y": 2}, True)


HAND_MD = """### hand — HPS

|  | method | seeds | a/x ↑ | b/y ↓ | Δp ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- |
|  | EW | 1 | 0.50 | 2.00 | +0.00% | — |
| Loss Bal. | DWA | 1 | — | **1.00**\\* | -3.00% | — |
|  | UW | 1 | 0.75\\* | 1.50 | **+1.00%**\\* | — |
|  | RLW (p=50%, k_1) | 1 | 0.25 | 3.00 | **+1.00%**\\* | — |
| Gradient Bal. | CAGrad | 1 | **0.80** | 1.25 | — | — |
"""
HAND_TEX = r"""% hand — HPS
\begin{tabular}{llccccc}
\toprule
 & method & seeds & a/x $\uparrow$ & b/y $\downarrow$ & Δp $\uparrow$ & vs RLW/RGW \\
\midrule
 & EW & 1 & $0.50$ & $2.00$ & $+0.00\%$ & — \\
\midrule
Loss Bal. & DWA & 1 & -- & $\mathbf{1.00}^{*}$ & $-3.00\%$ & — \\
 & UW & 1 & $0.75^{*}$ & $1.50$ & $\mathbf{+1.00\%}^{*}$ & — \\
 & RLW (p=50\%, k\_1) & 1 & $0.25$ & $3.00$ & $\mathbf{+1.00\%}^{*}$ & — \\
\midrule
Gradient Bal. & CAGrad & 1 & $\mathbf{0.80}$ & $1.25$ & -- & — \\
\bottomrule
\end{tabular}
"""


def test_missing_cells_dash_and_ties_at_the_printed_precision_share_the_mark():
    """A missing value is a dash ("--" in LaTeX) and the rows after it are still marked; Δp is compared at
    its two printed decimals, so 1.004 and 1.001 both get the loss block's mark and bold; a block of one row
    (CAGrad) has no best of its own; LaTeX escapes "%" and "_" in a label."""
    table = hand_table()
    assert render_markdown([table]) == HAND_MD
    assert render_latex([table]) == HAND_TEX


# ------------------------------------------------------------------------------------------- document
TABLE5_GRID = """### nyuv2: Δp (%) — method × architecture (paper's Table 5 in parentheses; best of each architecture in bold)

| | HPS | MTAN |
| --- | --- | --- |
| EW | +0.00 (+0.00) | -6.80 (+2.56) |
| CAGrad | **+7.60** (+1.36) | — (+2.26) |
| RLW | +1.61 (+1.04) | — (+2.66) |
| UW | +3.22 | — |
| RGW | -0.79 | — |

## What was grouped
"""


def test_the_report_prints_the_papers_table_5_beside_ours(tmp_path):
    """With the paper's tables shipped in rw_mtl/report/paper: its Table 5 values (EW 0.00 / 2.56 on HPS /
    MTAN, CAGrad 1.36 / 2.26, RLW 1.04 / 2.66) in parentheses, its rows first in its order."""
    runs, _ = write_sweep(tmp_path)
    markdown = build([runs], "test", SHIPPED_PAPER).markdown
    assert TABLE5_GRID in markdown


def test_where_names_the_directory_a_groups_runs_share():
    assert _where([Path("/r/ew/s0/results.json")]) == "/r/ew/s0"
    assert _where([Path("/r/ew/s0/results.json"), Path("/r/ew/s1/results.json")]) == "/r/ew/…"
    # one run in the shared directory itself, one below it: that directory, no ellipsis
    assert _where([Path("/r/ew/results.json"), Path("/r/ew/s1/results.json")]) == "/r/ew"


@pytest.mark.usefixtures("no_rasterising")
def test_write_lists_every_file_it_wrote_with_the_validation_figure(tmp_path):
    """Runs with validation histories: Fig. 2 is drawn and written as fig2_validation.png, between Fig. 1 and
    the litmus plot."""
    report = build([write_figure_sweep(tmp_path / "runs")], "test", None)
    out = tmp_path / "out"
    names = ["report.md", "report.csv", "report.tex", "litmus.json"]
    names += ["fig1_distributions.png", "fig2_validation.png", "litmus.png"]
    assert write(report, out) == [out / name for name in names]
    assert sorted(path.name for path in out.iterdir()) == sorted(names)

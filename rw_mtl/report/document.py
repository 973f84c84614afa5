"""One report: collect → tables → Markdown, CSV, LaTeX, litmus.json and figures, each written atomically.

``build`` is what ``rw-mtl report`` and ``rw-mtl litmus`` share. Its Markdown: the tables, the Table 4/5
grids, what was grouped (every group's identity, seeds and directory), the notes (skipped files,
duplicates, blank Δp), and last the litmus verdicts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rw_mtl.report.collect import Collection, collect
from rw_mtl.report.figures import distribution_boxplot, litmus_plot, validation_curves
from rw_mtl.report.grids import render_grids
from rw_mtl.report.identity import IGNORED
from rw_mtl.report.litmus import STATISTICS, render_summary
from rw_mtl.report.tables import (
    Table,
    build_tables,
    litmus_entries,
    render_csv,
    render_latex,
    render_markdown,
    table_records,
)
from rw_mtl.results import write_json_atomic, write_text_atomic

GROUPING = (
    "Runs are pooled over seeds only when everything else that defines the experiment is equal: the "
    "dataset with its config and task set, the trainer and optimizer, the architecture, both weightings "
    "with every hparam and mode, and the keys a method preset sets (rw_mtl/report/identity.py). Not "
    f"compared: {', '.join(IGNORED)}. A setting (dataset config, task set, trainer …) is one section; "
    "each distinct method in it one row."
)


@dataclass
class Report:
    collection: Collection
    tables: list[Table]
    notes: list[str]
    markdown: str


def build(directories: list[Path], split: str, paper_dir: Path | None, delta_p: bool | None = None) -> Report:
    """The report of every results.json below ``directories`` (FileNotFoundError for a missing one)."""
    collection = collect(directories, split)
    tables, table_notes = build_tables(collection, split, paper_dir, delta_p)
    notes = [*collection.notes, *table_notes]
    parts = [f"# rw_mtl report ({split})", "", render_markdown(tables), render_grids(tables, paper_dir)]
    parts += ["## What was grouped", "", grouping(collection), ""]
    if notes:
        parts += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    entries = litmus_entries(tables)
    if entries:  # last: the conclusion a reader of the console sees
        parts += ["## Litmus test: does each method beat random weighting?", "", render_summary(entries)]
    return Report(collection, tables, notes, "\n".join(parts))


def _where(paths: list[Path]) -> str:
    parents = [str(path.parent) for path in paths]
    common = os.path.commonpath(parents) if len(parents) > 1 else parents[0]
    return common if len(parents) == 1 or common in parents else f"{common}/…"


def grouping(collection: Collection) -> str:
    """Every group: its table, method, seeds, config hash and the directory its runs are in."""
    out = [GROUPING, ""]
    for section in collection.sections:
        out += [f"**{section.title}** (setting {section.key})", ""]
        out += ["| arch | method | seeds | config | runs in |", "| --- | --- | --- | --- | --- |"]
        for group in section.groups:
            seeds = ", ".join(str(seed) for seed in group.seeds)
            out.append(f"| {group.arch} | {group.label} | {seeds} | {group.key} | {_where(group.paths)} |")
        out.append("")
    return "\n".join(out)


def litmus_json(tables: list[Table]) -> dict:
    return {
        "statistics": STATISTICS,
        "comparisons": [{"table": title, **c.to_json()} for title, c in litmus_entries(tables)],
    }


def write(report: Report, out: Path) -> list[Path]:
    """report.md, report.csv, report.tex, litmus.json and the figures that have data, under ``out``."""
    written = [
        write_text_atomic(out / "report.md", report.markdown),
        write_text_atomic(out / "report.csv", render_csv(table_records(report.tables))),
        write_text_atomic(out / "report.tex", render_latex(report.tables)),
        write_json_atomic(out / "litmus.json", litmus_json(report.tables)),
    ]
    for figure in (
        distribution_boxplot(report.tables, out / "fig1_distributions.png"),
        validation_curves(report.tables, out / "fig2_validation.png"),
        litmus_plot(report.tables, out / "litmus.png"),
    ):
        if figure is not None:
            written.append(figure)
    return written

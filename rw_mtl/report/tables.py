"""The paper's table layout (Tables 1, 3, 6, 7, 8), one table per setting and architecture.

Rows: EW, then the loss-balancing block, then the gradient-balancing block, then combinations
(rw_mtl.report.order); cells are the mean over seeds (± the sample std when there are several), with the
decimals the paper prints for that column (its CSV in rw_mtl/report/paper; elsewhere 4 for values below 1
and 2 otherwise). The best value of a column within the loss block is marked *, within the gradient block
†, over all rows bold (compared at the printed precision, so ties share the mark, as in Table 8). Δp is
against EW with HPS of the same setting (mean and std over seeds of each seed's Δp against EW's mean);
it is left out where the paper's table has none (Tables 3, 7, 8: averages only) unless asked for, and
blank, with a note, where EW's value of a metric is 0. The last column is the litmus test (the
paired difference with RLW/RGW, rw_mtl.report.litmus).
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rw_mtl.report.collect import Collection, Group, Section, method_label, sample_std
from rw_mtl.report.delta_p import delta_p
from rw_mtl.report.litmus import Comparison, compare, counterpart_methods
from rw_mtl.report.order import ARCHS, BLOCK_MARKS, BLOCK_NAMES, RANDOM

PAPER_TABLES = {  # dataset → (file in rw_mtl/report/paper, our "task/metric" → the paper's column)
    "nyuv2": (
        "table1_nyuv2.csv",
        {
            "segmentation/miou": "seg_miou",
            "segmentation/pix_acc": "seg_pixacc",
            "depth/abs_err": "depth_abs_err",
            "depth/rel_err": "depth_rel_err",
            "normal/mean": "normal_mean",
            "normal/median": "normal_median",
            "normal/within_11_25": "normal_11.25",
            "normal/within_22_5": "normal_22.5",
            "normal/within_30": "normal_30",
        },
    ),
    "cityscapes": (
        "table6_cityscapes.csv",
        {
            "segmentation/miou": "seg_miou",
            "segmentation/pix_acc": "seg_pixacc",
            "depth/abs_err": "depth_abs_err",
            "depth/rel_err": "depth_rel_err",
        },
    ),
    "xtreme_pi": (
        "table3_xtreme.csv",
        {**{f"{lang}/acc": f"pi_{lang}" for lang in ("en", "zh", "de", "es")}, "avg/acc": "pi_avg"},
    ),
    "xtreme_pos": (
        "table3_xtreme.csv",
        {**{f"{lang}/f1": f"pos_{lang}" for lang in ("en", "zh", "te", "vi")}, "avg/f1": "pos_avg"},
    ),
    "office31": (
        "table8_office.csv",
        {"amazon/acc": "o31_A", "dslr/acc": "o31_D", "webcam/acc": "o31_W", "avg/acc": "o31_avg"},
    ),
    "office_home": (
        "table8_office.csv",
        {
            "art/acc": "oh_Ar",
            "clipart/acc": "oh_Cl",
            "product/acc": "oh_Pr",
            "real_world/acc": "oh_Rw",
            "avg/acc": "oh_avg",
        },
    ),
    "celeba": ("table7_celeba.csv", {"avg/acc": "avg_acc"}),  # the paper gives only the 40-task average
}
PAPER_NUMBERS = {"table1": 1, "table3": 3, "table6": 6, "table7": 7, "table8": 8}

AVERAGE = "avg"  # the "task" of the across-task average column
DELTA_P = "delta_p"
MAX_TASK_COLUMNS = 12  # wider datasets (CelebA's 40 attributes) show only the average in md/tex
LITMUS_HEADER = "vs RLW/RGW"
RANDOM_PAIRS = {"loss": (RANDOM["loss"], "none"), "grad": ("ew", RANDOM["grad"])}  # block → its random row


def shared_metric(directions: dict[str, dict[str, bool]]) -> str | None:
    """The one metric every task has, when each task has exactly that one (CelebA, Office, XTREME, the
    digits): the paper then also reports its average over the tasks (Tables 3, 7, 8)."""
    metric_sets = {tuple(metrics) for metrics in directions.values()}
    if len(directions) < 2 or len(metric_sets) != 1:
        return None
    (metrics,) = metric_sets
    return metrics[0] if len(metrics) == 1 else None


def metric_columns(directions: dict[str, dict[str, bool]]) -> dict[str, bool]:
    """ "task/metric" → higher is better, plus "avg/<metric>" where the tasks share one metric."""
    columns = {f"{task}/{name}": up for task, metrics in directions.items() for name, up in metrics.items()}
    metric = shared_metric(directions)
    if metric is not None:
        columns[f"{AVERAGE}/{metric}"] = next(iter(directions.values()))[metric]
    return columns


def shown_columns(columns: list[str]) -> list[str]:
    """The columns a human-readable table shows: all, or without the per-task ones (keeping the average)
    when there are more than MAX_TASK_COLUMNS of them and an average exists."""
    per_task = [c for c in columns if "/" in c and not c.startswith(f"{AVERAGE}/")]
    if len(per_task) > MAX_TASK_COLUMNS and len(per_task) < len([c for c in columns if "/" in c]):
        return [c for c in columns if c not in per_task]
    return columns


def _read_paper(paper_dir: Path | None, dataset: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    table, columns = PAPER_TABLES.get(dataset, (None, {}))
    if paper_dir is None or table is None or not (Path(paper_dir) / table).is_file():
        return [], {}
    with open(Path(paper_dir) / table) as handle:
        return list(csv.DictReader(handle)), {**columns, DELTA_P: DELTA_P}


def paper_rows(paper_dir: Path | None, dataset: str) -> dict[str, dict[str, float]]:
    """Method name → the paper's numbers for ``dataset`` under our column names ("task/metric", and
    "delta_p" where the paper gives Δp), when its table is found in ``paper_dir``."""
    rows, mapping = _read_paper(paper_dir, dataset)
    return {
        row["method"]: {ours: float(row[theirs]) for ours, theirs in mapping.items() if row.get(theirs)}
        for row in rows
    }


def paper_decimals(paper_dir: Path | None, dataset: str) -> dict[str, int]:
    """Our column → the decimals the paper prints it with (read off its CSV: 53.77 → 2, 0.3845 → 4)."""
    rows, mapping = _read_paper(paper_dir, dataset)
    return {
        ours: max(len(row[theirs].partition(".")[2]) for row in rows if row.get(theirs))
        for ours, theirs in mapping.items()
        if any(row.get(theirs) for row in rows)
    }


def paper_has_delta_p(paper_dir: Path | None, dataset: str) -> bool | None:
    """Whether the paper's table of ``dataset`` has a Δp column; None where it has no table of it."""
    rows, _ = _read_paper(paper_dir, dataset)
    return any(row.get(DELTA_P) for row in rows) if rows else None


@dataclass
class Row:
    """One line of a table: a group's means (or a row of the paper's own table)."""

    label: str
    block: str
    arch: str
    seeds: int
    values: dict[str, tuple[float, float]]  # column → (mean, std over seeds)
    delta_p: tuple[float, float] | None = None
    seed_delta_p: dict[int, float] = field(default_factory=dict)
    litmus: Comparison | None = None
    group: Group | None = None

    @property
    def is_random(self) -> bool:
        return self.group is not None and counterpart_methods(self.group.loss, self.group.grad) is None


@dataclass
class Table:
    """The rows of one setting on one architecture, with how each column is printed."""

    title: str
    section: Section | None
    arch: str
    rows: list[Row]
    higher: dict[str, bool]  # every metric column → higher is better
    shown: list[str]  # the metric columns md/tex show
    decimals: dict[str, int]
    show_delta_p: bool
    from_paper: bool = False


def _decimals(column: str, rows: list[Row], paper: dict[str, int]) -> int:
    if column in paper:
        return paper[column]
    values = [abs(row.values[column][0]) for row in rows if column in row.values]
    return 4 if values and max(values) < 1 else 2


def _zero_reference(base: dict, directions: dict) -> list[str]:
    return [
        f"{task}/{metric}"
        for task, metrics in directions.items()
        for metric in metrics
        if base[task][metric] == 0
    ]


def group_values(group: Group, split: str) -> dict[str, tuple[float, float]]:
    mean, std = group.mean(split), group.std(split)
    values = {f"{t}/{m}": (value, std[t][m]) for t, metrics in mean.items() for m, value in metrics.items()}
    shared = shared_metric(group.directions)
    if shared is not None:
        averages = [statistics.fmean(m[shared] for m in run.values()) for run in group.metric_runs(split)]
        values[f"{AVERAGE}/{shared}"] = (statistics.fmean(averages), sample_std(averages))
    return values


def section_rows(section: Section, split: str, notes: list[str]) -> list[Row]:
    """Every group of ``section`` as a Row, with Δp against the section's EW and the litmus comparison."""
    reference = section.reference()
    base = reference.mean(split) if reference is not None else None
    zero = _zero_reference(base, section.directions) if base is not None else []
    if base is None:
        notes.append(f"{section.title}: no EW run on HPS, so no Δp and no litmus column")
    elif zero:
        notes.append(
            f"{section.title}: Δp left blank: EW's {', '.join(zero)} is 0, and Δp divides by EW's value "
            f"({len(reference.runs)} EW runs: {reference.paths[0].parent})"
        )
    rows = []
    for group in section.groups:
        row = Row(
            group.label, group.block, group.arch, len(group.runs), group_values(group, split), group=group
        )
        if base is not None and not zero:
            row.seed_delta_p = {
                seed: delta_p(metrics, base, group.directions)
                for seed, metrics in group.by_seed(split).items()
            }
            per_seed = list(row.seed_delta_p.values())
            row.delta_p = (statistics.fmean(per_seed), sample_std(per_seed))
        rows.append(row)
    by_identity = {(r.group.arch, r.group.loss, r.group.grad): r for r in rows if not r.group.variant}
    for row in rows:
        pair = counterpart_methods(row.group.loss, row.group.grad)
        other = by_identity.get((row.arch, *pair)) if pair else None
        if other is not None and row.seed_delta_p and other.seed_delta_p:
            row.litmus = compare(row.label, other.label, row.seed_delta_p, other.seed_delta_p)
    return rows


def build_tables(
    collection: Collection, split: str, paper_dir: Path | None, delta_p_column: bool | None = None
) -> tuple[list[Table], list[str]]:
    """One Table per (setting, architecture), and after each HPS table of a dataset the paper has a
    table of, the paper's own rows in the same layout; plus the notes (blank Δp, no EW)."""
    notes: list[str] = []
    tables = []
    for section in collection.sections:
        rows = section_rows(section, split, notes)
        higher = metric_columns(section.directions)
        decimals_from_paper = paper_decimals(paper_dir, section.dataset)
        has_delta_p = paper_has_delta_p(paper_dir, section.dataset)
        show_delta_p = delta_p_column if delta_p_column is not None else has_delta_p is not False
        for arch in section.archs():
            arch_rows = [row for row in rows if row.arch == arch]
            decimals = {c: _decimals(c, arch_rows, decimals_from_paper) for c in higher}
            title = f"{section.title} — {ARCHS.get(arch, arch)}"
            tables.append(
                Table(
                    title,
                    section,
                    arch,
                    arch_rows,
                    higher,
                    shown_columns(list(higher)),
                    decimals,
                    show_delta_p,
                )
            )
            if arch == "hps":
                paper = paper_table(paper_dir, section, higher, show_delta_p)
                if paper is not None:
                    tables.append(paper)
    return tables, notes


def paper_table(
    paper_dir: Path | None, section: Section, higher: dict[str, bool], show_delta_p: bool
) -> Table | None:
    """The paper's own rows for ``section``'s dataset, in our layout and marked by our rules, to read
    beside ours (its Δp as printed; its litmus column the plain difference from its RLW/RGW row)."""
    numbers = paper_rows(paper_dir, section.dataset)
    if not numbers:
        return None
    raw, _ = _read_paper(paper_dir, section.dataset)
    blocks = {
        row["method"]: {"baseline": "baseline", "loss": "loss", "grad": "grad"}[row["group"]] for row in raw
    }
    rows = []
    for method, values in numbers.items():
        cells = {column: (value, 0.0) for column, value in values.items() if column in higher}
        delta = values.get(DELTA_P)
        row = Row(method, blocks[method], "hps", 1, cells, (delta, 0.0) if delta is not None else None)
        row.seed_delta_p = {0: delta} if delta is not None else {}
        rows.append(row)
    randoms = {block: method_label(*pair) for block, pair in RANDOM_PAIRS.items()}
    by_label = {row.label: row for row in rows}
    for row in rows:
        other = by_label.get(randoms.get(row.block, ""))
        if other is not None and other is not row and row.seed_delta_p and other.seed_delta_p:
            row.litmus = compare(row.label, other.label, row.seed_delta_p, other.seed_delta_p)
    shown = [c for c in shown_columns(list(higher)) if any(c in row.values for row in rows)]
    table_file = PAPER_TABLES[section.dataset][0]
    number = PAPER_NUMBERS.get(table_file.split("_")[0], "")
    decimals = paper_decimals(paper_dir, section.dataset)
    return Table(
        f"{section.dataset} — the paper's Table {number} (its printed numbers, this layout)",
        None,
        "hps",
        rows,
        higher,
        shown,
        {c: decimals.get(c, 2) for c in higher},
        show_delta_p and any(row.delta_p for row in rows),
        from_paper=True,
    )


def _marks(table: Table, column: str) -> dict[int, tuple[bool, str]]:
    """Row index → (bold, superscript) for ``column``: best overall, best within the loss / gradient
    block, compared at the printed precision."""
    decimals = 2 if column == DELTA_P else table.decimals[column]
    higher = True if column == DELTA_P else table.higher[column]

    def value(row: Row) -> float | None:
        cell = row.delta_p if column == DELTA_P else row.values.get(column)
        return round(cell[0], decimals) if cell is not None else None

    def best(rows: list[Row]) -> float | None:
        values = [v for v in map(value, rows) if v is not None]
        return (max if higher else min)(values) if len(values) > 1 else None

    overall = best(table.rows)
    block_best = {block: best([r for r in table.rows if r.block == block]) for block in BLOCK_MARKS}
    marks = {}
    for index, row in enumerate(table.rows):
        mine = value(row)
        if mine is None:
            continue
        mark = BLOCK_MARKS.get(row.block, "") if mine == block_best.get(row.block) else ""
        marks[index] = (mine == overall, mark)
    return marks


def _number(value: float, decimals: int, percent: bool) -> str:
    return f"{value:+.{decimals}f}%" if percent else f"{value:.{decimals}f}"


def table_cells(table: Table, latex: bool = False) -> list[list[str]]:
    """The formatted metric, Δp and litmus cells of every row."""
    columns = [*table.shown, *([DELTA_P] if table.show_delta_p else [])]
    marks = {column: _marks(table, column) for column in columns}
    out = []
    for index, row in enumerate(table.rows):
        cells = []
        for column in columns:
            cell = row.delta_p if column == DELTA_P else row.values.get(column)
            if cell is None:
                cells.append("—" if not latex else "--")
                continue
            decimals = 2 if column == DELTA_P else table.decimals[column]
            mean, std = cell
            bold, mark = marks[column].get(index, (False, ""))
            text = _number(mean, decimals, column == DELTA_P)
            if latex:
                text = text.replace("%", r"\%")
                text = rf"\mathbf{{{text}}}" if bold else text
                text += {"*": "^{*}", "†": r"^{\dagger}"}.get(mark, "")
                text += rf" \pm {std:.{decimals}f}" if row.seeds > 1 else ""
                cells.append(f"${text}$")
            else:
                text = f"**{text}**" if bold else text
                text += mark.replace("*", r"\*")
                text += f" ± {std:.{decimals}f}" if row.seeds > 1 else ""
                cells.append(text)
        cells.append(_litmus_cell(row, table.from_paper))
        out.append(cells)
    return out


def _litmus_cell(row: Row, from_paper: bool) -> str:
    if row.litmus is not None:
        return f"{row.litmus.mean:+.2f}" if from_paper else row.litmus.cell()
    if from_paper:
        return "reference" if row.label in ("RLW", "RGW") else "—"
    plain_random = row.group is not None and not row.group.variant and row.is_random and row.block in RANDOM
    return "reference" if plain_random else "—"


def table_header(table: Table) -> list[str]:
    arrows = {column: "↑" if up else "↓" for column, up in table.higher.items()}
    return [
        "",
        "method",
        "seeds",
        *[f"{c} {arrows[c]}" for c in table.shown],
        *(["Δp ↑"] if table.show_delta_p else []),
        LITMUS_HEADER,
    ]


def _block_labels(table: Table) -> list[str]:
    labels, previous = [], None
    for row in table.rows:
        labels.append(BLOCK_NAMES[row.block] if row.block != previous else "")
        previous = row.block
    return labels


def render_markdown(tables: list[Table]) -> str:
    """Every table as Markdown, under a heading naming its setting and architecture."""
    out = []
    for table in tables:
        header = table_header(table)
        out += [f"### {table.title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for row, block, cells in zip(table.rows, _block_labels(table), table_cells(table), strict=True):
            seeds = "paper" if table.from_paper else str(row.seeds)
            out.append("| " + " | ".join([block, row.label, seeds, *cells]) + " |")
        out.append("")
    return "\n".join(out)


def render_latex(tables: list[Table]) -> str:
    """A booktabs tabular per table, the paper's marks as superscripts, a rule between blocks."""
    escape = lambda text: text.replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    out = []
    for table in tables:
        header = table_header(table)
        out += [f"% {table.title}", r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule"]
        out.append(
            " & ".join(escape(h).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$") for h in header)
            + r" \\"
        )
        previous = None
        for row, block, cells in zip(
            table.rows, _block_labels(table), table_cells(table, latex=True), strict=True
        ):
            if row.block != previous:
                out.append(r"\midrule")
                previous = row.block
            seeds = "paper" if table.from_paper else str(row.seeds)
            litmus = escape(cells[-1]).replace("≈", r"$\approx$")
            out.append(" & ".join([escape(block), escape(row.label), seeds, *cells[:-1], litmus]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(out)


def table_records(tables: list[Table]) -> list[dict]:
    """Our tables' rows as flat records (CSV, W&B): setting, arch, method, seeds, the config hash, every
    metric's mean and std, Δp, and the litmus comparison."""
    records = []
    for table in tables:
        if table.from_paper:
            continue
        for row in table.rows:
            record = {
                "dataset": table.section.dataset,
                "setting": table.section.title,
                "arch": row.arch,
                "block": row.block,
                "method": row.label,
                "seeds": row.seeds,
                "config": row.group.key,
                **row.values,
            }
            if row.delta_p is not None:
                record[DELTA_P] = row.delta_p
            if row.litmus is not None:
                record["vs_random"] = row.litmus.reference
                record["vs_random_diff"] = row.litmus.mean
                if row.litmus.interval is not None:
                    record["vs_random_low"], record["vs_random_high"] = row.litmus.interval
                record["vs_random_verdict"] = row.litmus.verdict
                record["seeds_needed"] = row.litmus.seeds_needed
            records.append(record)
    return records


def flat_table(records: list[dict]) -> tuple[list[str], list[list]]:
    """Header and cells with every (mean, std) column split into ``<column>_mean`` and ``<column>_std``;
    None where a row has no value (CSV and the W&B table)."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    paired = {column: any(isinstance(record.get(column), tuple) for record in records) for column in columns}
    header = [name for c in columns for name in ((f"{c}_mean", f"{c}_std") if paired[c] else (c,))]
    data = []
    for record in records:
        cells = []
        for column in columns:
            value = record.get(column)
            cells += list(value or (None, None)) if paired[column] else [value]
        data.append(cells)
    return header, data


def render_csv(records: list[dict]) -> str:
    header, data = flat_table(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(data)
    return buffer.getvalue()


def litmus_entries(tables: list[Table]) -> list[tuple[str, Comparison]]:
    """(table title, comparison) of every row of our tables that has a random counterpart."""
    return [(t.title, row.litmus) for t in tables if not t.from_paper for row in t.rows if row.litmus]

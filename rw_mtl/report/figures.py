"""The paper's figures, sized for one column of a two-column paper (3.4 in wide, 8 pt text):

- Fig. 1: Δp against EW of RLW with each sampling distribution (Section 5.3), one box per sampler over
  its seeds with each seed as a dot, EW as the dashed line at 0;
- Fig. 2: validation curves (Section 5.4): per epoch, Δp of the validation metrics against EW's last
  epoch (mean over EW's seeds), the mean over seeds as a line and ± one std over seeds as a band;
- the litmus plot: every method's Δp against EW with its 95% t-interval over seeds, with RLW's interval
  shaded across the loss-balancing block and RGW's across the gradient-balancing block.
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rw_mtl.report.delta_p import delta_p  # noqa: E402
from rw_mtl.report.litmus import t_interval  # noqa: E402
from rw_mtl.report.order import BLOCK_NAMES, RANDOM, SAMPLERS  # noqa: E402
from rw_mtl.report.tables import RANDOM_PAIRS, Row, Table  # noqa: E402

COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
}
BLOCK_COLOURS = {"baseline": "0.3", "loss": "tab:blue", "grad": "tab:orange", "combined": "tab:green"}
DISTRIBUTION = "weighting.loss.hparams.distribution"


@contextmanager
def _style():
    with plt.rc_context(STYLE):
        yield


def _sampler_rows(table: Table) -> dict[str, Row]:
    """RLW's rows of ``table`` that differ from RLW at most by the sampling distribution, by sampler."""
    found = {}
    for row in table.rows:
        group = row.group
        if group is None or (group.loss, group.grad) != (RANDOM["loss"], "none") or not row.seed_delta_p:
            continue
        sampler = str(group.method.get(DISTRIBUTION, "normal"))
        if group.variant in ("", f"distribution={sampler}"):
            found[sampler] = row
    return found


def distribution_boxplot(tables: list[Table], path: Path) -> Path | None:
    """Fig. 1: one panel per setting with RLW runs on HPS, one box per sampler in Section 5.3's order."""
    panels = [(t, _sampler_rows(t)) for t in tables if not t.from_paper and t.arch == "hps"]
    panels = [(t, rows) for t, rows in panels if rows]
    if not panels:
        return None
    with _style():
        figure, axes_list = plt.subplots(
            len(panels), 1, figsize=(COLUMN_WIDTH, 2.3 * len(panels)), squeeze=False
        )
        for axes, (table, rows) in zip(axes_list[:, 0], panels, strict=True):
            samplers = sorted(rows, key=lambda s: list(SAMPLERS).index(s) if s in SAMPLERS else len(SAMPLERS))
            values = [list(rows[s].seed_delta_p.values()) for s in samplers]
            axes.boxplot(values, tick_labels=[SAMPLERS.get(s, s) for s in samplers], widths=0.5)
            for position, points in enumerate(values, start=1):
                offsets = [
                    position + 0.12 * (i - (len(points) - 1) / 2) / max(len(points), 1)
                    for i in range(len(points))
                ]
                axes.plot(offsets, points, "o", color="tab:blue", markersize=2.5, alpha=0.7)
            axes.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--", label="EW")
            axes.set_ylabel("Δp vs EW (%)")
            axes.set_xlabel("RLW sampling distribution")
            axes.set_title(f"{table.section.title}: RLW, {_seed_text(values)}")
        return _save(figure, path)


def _seed_text(values: list[list[float]]) -> str:
    counts = sorted({len(v) for v in values})
    return f"{counts[0]} seeds each" if len(counts) == 1 else f"{counts[0]}–{counts[-1]} seeds"


def validation_curves(tables: list[Table], path: Path) -> Path | None:
    """Fig. 2: one panel per setting (HPS); a line per method (mean over seeds) and a ± std band."""
    panels = []
    for table in tables:
        if table.from_paper or table.arch != "hps":
            continue
        reference = table.section.reference()
        if reference is None or not all(run.get("val_history") for run in reference.runs):
            continue
        finals = [run["val_history"][-1]["metrics"] for run in reference.runs]
        base = {t: {m: statistics.fmean(f[t][m] for f in finals) for m in ms} for t, ms in finals[0].items()}
        if any(value == 0 for metrics in base.values() for value in metrics.values()):
            continue
        curves = []
        for row in table.rows:
            histories = [run["val_history"] for run in row.group.runs if run.get("val_history")]
            if not histories:
                continue
            length = min(len(history) for history in histories)
            per_epoch = [
                [delta_p(h[e]["metrics"], base, row.group.directions) for h in histories]
                for e in range(length)
            ]
            curves.append((row, per_epoch, [histories[0][e].get("epoch", e) for e in range(length)]))
        if curves:
            panels.append((table, curves))
    if not panels:
        return None
    with _style():
        figure, axes_list = plt.subplots(
            len(panels), 1, figsize=(COLUMN_WIDTH, 2.5 * len(panels)), squeeze=False
        )
        for axes, (table, curves) in zip(axes_list[:, 0], panels, strict=True):
            for row, per_epoch, epochs in curves:
                mean = [statistics.fmean(values) for values in per_epoch]
                spread = [statistics.stdev(values) if len(values) > 1 else 0.0 for values in per_epoch]
                (line,) = axes.plot(
                    epochs, mean, linewidth=1.2, label=f"{row.label} ({len(per_epoch[0])} seeds)"
                )
                axes.fill_between(
                    epochs,
                    [m - s for m, s in zip(mean, spread, strict=True)],
                    [m + s for m, s in zip(mean, spread, strict=True)],
                    color=line.get_color(),
                    alpha=0.2,
                    linewidth=0,
                )
            axes.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--")
            axes.set_title(f"{table.section.title} (EW: its last epoch; band: ± 1 std over seeds)")
            axes.set_xlabel("epoch")
            axes.set_ylabel("validation Δp vs EW (%)")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        return _save(figure, path)


def _is_plain(row: Row, pair: tuple[str, str]) -> bool:
    return row.group is not None and (row.group.loss, row.group.grad) == pair and not row.group.variant


def _interval(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    interval = t_interval(values)
    return (mean, *interval) if interval is not None else (mean, mean, mean)


def litmus_plot(tables: list[Table], path: Path) -> Path | None:
    """Every row's Δp with its 95% t-interval over seeds, one panel per table; the RLW / RGW intervals
    shaded across the block they test."""
    panels = [t for t in tables if not t.from_paper and any(row.seed_delta_p for row in t.rows)]
    if not panels:
        return None
    heights = [0.8 + 0.22 * len(t.rows) for t in panels]
    with _style():
        figure, axes_list = plt.subplots(
            len(panels), 1, figsize=(COLUMN_WIDTH, sum(heights) + 0.3), squeeze=False,
            gridspec_kw={"height_ratios": heights},
        )  # fmt: skip
        for axes, table in zip(axes_list[:, 0], panels, strict=True):
            rows = [row for row in table.rows if row.seed_delta_p]
            positions = {id(row): len(rows) - 1 - i for i, row in enumerate(rows)}
            for block in RANDOM:
                members = [row for row in rows if row.block == block]
                reference = next((r for r in members if _is_plain(r, RANDOM_PAIRS[block])), None)
                if not members or reference is None:
                    continue
                _, low, high = _interval(list(reference.seed_delta_p.values()))
                ys = [positions[id(row)] for row in members]
                axes.fill_betweenx(
                    [min(ys) - 0.45, max(ys) + 0.45], low, high if high > low else low + 1e-9,
                    color=BLOCK_COLOURS[block], alpha=0.15, linewidth=0,
                    label=f"{reference.label} 95% CI ({BLOCK_NAMES[block]})",
                )  # fmt: skip
            for row in rows:
                mean, low, high = _interval(list(row.seed_delta_p.values()))
                axes.errorbar(
                    mean, positions[id(row)], xerr=[[mean - low], [high - mean]], fmt="o", markersize=3,
                    color=BLOCK_COLOURS.get(row.block, "0.3"), capsize=2, linewidth=1,
                )  # fmt: skip
            axes.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--", label="EW")
            axes.set_yticks([positions[id(row)] for row in rows], [row.label for row in rows])
            axes.set_ylim(-0.7, len(rows) - 0.3)
            seeds = sorted({row.seeds for row in rows})
            counts = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
            axes.set_title(f"{table.title} ({counts} seeds)")
            axes.set_xlabel("Δp vs EW (%): mean, 95% t-interval over seeds")
        return _save(figure, path)


def _legend_below(figure) -> None:
    """One legend under all panels (their labels, once each), outside every axis label."""
    entries: dict[str, object] = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(
            list(entries.values()), list(entries), loc="upper center", bbox_to_anchor=(0.5, 0.0),
            frameon=False, ncol=2 if len(entries) > 1 else 1,
        )  # fmt: skip


def _save(figure, path: Path) -> Path:
    from rw_mtl.results import replace_atomically

    figure.tight_layout()
    _legend_below(figure)
    with replace_atomically(path) as temporary:
        figure.savefig(temporary, dpi=200, format="png", bbox_inches="tight")
    plt.close(figure)
    return path

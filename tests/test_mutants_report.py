"""The report's every printed character, on one hand-checked NYUv2-like sweep (fast: no figures written).

Written against the surviving mutants of ``make mutate`` (docs/testing.md): the other report tests read
single cells; these compare whole tables, so a changed mark, decimal, separator, escape or order fails.

The sweep: 3 metrics (mIoU ↑, pixel accuracy ↑, abs err ↓), two seeds each of EW, UW, RLW, CAGrad and
RGW on HPS, one EW seed on MTAN. Hand-checked numbers (Δp against EW's mean 51.00 / 0.7100 / 0.4200):

- UW seed 0: segmentation (0 + 0) / 2, depth −(0.41 − 0.42) / 0.42 = 2.381 %, Δp = 1.190 %; seed 1:
  segmentation (2/51 + 0.02/0.71) / 2 = 3.369 %, depth 7.143 %, Δp = 5.256 %; mean 3.22, std 2.87;
- RLW seeds: −0.214 %, 3.437 %: UW − RLW per seed 1.405, 1.819: mean 1.61, sd 0.293, the 95 % t-interval
  1.61 ± 12.706 · 0.293 / √2 = [−1.02, +4.24]: indistinguishable;
- MTAN's EW: segmentation (−3/51 − 0.05/0.71) / 2 = −6.462 %, depth −7.143 %: Δp −6.80 %;
- marks: UW is best of the loss block in every column (*), CAGrad of the gradient block (†) and overall
  (bold); EW belongs to no block; a block of one row (the paper's RGW) gets no mark.
"""

# ruff: noqa: E501 (the expected tables are whole lines of the report)
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from rw_mtl.report.delta_p import delta_p
from rw_mtl.report.document import GROUPING, build, litmus_json
from rw_mtl.report.order import arch_rank, block_of, method_rank, row_rank
from rw_mtl.report.tables import render_csv, render_latex, table_records
from rw_mtl.results import write_json_atomic

DIRECTIONS = {"segmentation": {"miou": True, "pix_acc": True}, "depth": {"abs_err": False}}
PAPER_TABLE1 = (
    "group,method,seg_miou,seg_pixacc,depth_abs_err,delta_p\n"
    "baseline,EW,53.77,0.7538,0.3845,0.00\n"
    "loss,UW,54.29,0.7548,0.3815,0.70\n"
    "loss,RLW,54.11,0.7528,0.3809,1.04\n"
    "grad,RGW,53.91,0.7542,0.3808,0.61\n"
)
RUNS = [  # loss, grad, seed, mIoU, pixel accuracy, abs err, arch
    ("ew", "none", 0, 50.0, 0.70, 0.40, "hps"),
    ("ew", "none", 1, 52.0, 0.72, 0.44, "hps"),
    ("uw", "none", 0, 51.0, 0.71, 0.41, "hps"),
    ("uw", "none", 1, 53.0, 0.73, 0.39, "hps"),
    ("rlw", "none", 0, 52.0, 0.69, 0.42, "hps"),
    ("rlw", "none", 1, 51.0, 0.74, 0.40, "hps"),
    ("ew", "cagrad", 0, 54.0, 0.75, 0.38, "hps"),
    ("ew", "cagrad", 1, 55.0, 0.70, 0.37, "hps"),
    ("ew", "rgw", 0, 49.0, 0.70, 0.41, "hps"),
    ("ew", "rgw", 1, 50.5, 0.71, 0.43, "hps"),
    ("ew", "none", 0, 48.0, 0.66, 0.45, "mtan"),
]


def write_sweep(root: Path) -> tuple[Path, Path]:
    runs = root / "runs"
    for loss, grad, seed, miou, accuracy, error, arch in RUNS:
        metrics = {"segmentation": {"miou": miou, "pix_acc": accuracy}, "depth": {"abs_err": error}}
        config = {"weighting": {"loss": {"name": loss, "hparams": {}}, "grad": {"name": grad, "hparams": {}}}}
        payload = {
            "dataset": "nyuv2",
            "arch": arch,
            "loss_method": loss,
            "grad_method": grad,
            "seed": seed,
            "tasks": DIRECTIONS,
            "metrics": {"test": metrics},
            "config": config,
        }
        write_json_atomic(runs / arch / f"{loss}-{grad}" / f"s{seed}" / "results.json", payload)
    paper = root / "paper"
    paper.mkdir()
    (paper / "table1_nyuv2.csv").write_text(PAPER_TABLE1)
    return runs, paper


@pytest.fixture
def report(tmp_path):
    runs, paper = write_sweep(tmp_path)
    return build([runs], "test", paper)


TABLES_MD = r"""# rw_mtl report (test)

### nyuv2 — HPS

|  | method | seeds | segmentation/miou ↑ | segmentation/pix_acc ↑ | depth/abs_err ↓ | Δp ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- | --- |
|  | EW | 2 | 51.00 ± 1.41 | 0.7100 ± 0.0141 | 0.4200 ± 0.0283 | +0.00% ± 2.18 | — |
| Loss Bal. | UW | 2 | 52.00\* ± 1.41 | 0.7200\* ± 0.0141 | 0.4000\* ± 0.0141 | +3.22%\* ± 2.87 | +1.61 [-1.02, +4.24] ≈ |
|  | RLW | 2 | 51.50 ± 0.71 | 0.7150 ± 0.0354 | 0.4100 ± 0.0141 | +1.61% ± 2.58 | reference |
| Gradient Bal. | CAGrad | 2 | **54.50**† ± 0.71 | **0.7250**† ± 0.0354 | **0.3750**† ± 0.0071 | **+7.60%**† ± 0.06 | +8.39 [+0.68, +16.10] beats |
|  | RGW | 2 | 49.75 ± 1.06 | 0.7050 ± 0.0071 | 0.4200 ± 0.0141 | -0.79% ± 0.91 | reference |

### nyuv2 — the paper's Table 1 (its printed numbers, this layout)

|  | method | seeds | segmentation/miou ↑ | segmentation/pix_acc ↑ | depth/abs_err ↓ | Δp ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- | --- |
|  | EW | paper | 53.77 | 0.7538 | 0.3845 | +0.00% | — |
| Loss Bal. | UW | paper | **54.29**\* | **0.7548**\* | 0.3815 | +0.70% | -0.34 |
|  | RLW | paper | 54.11 | 0.7528 | 0.3809\* | **+1.04%**\* | reference |
| Gradient Bal. | RGW | paper | 53.91 | 0.7542 | **0.3808** | +0.61% | reference |

### nyuv2 — MTAN

|  | method | seeds | segmentation/miou ↑ | segmentation/pix_acc ↑ | depth/abs_err ↓ | Δp ↑ | vs RLW/RGW |
| --- | --- | --- | --- | --- | --- | --- | --- |
|  | EW | 1 | 48.00 | 0.6600 | 0.4500 | -6.80% | — |

### nyuv2: Δp (%) — method × architecture (paper's Table 5 in parentheses; best of each architecture in bold)

| | HPS | MTAN |
| --- | --- | --- |
| EW | +0.00 | -6.80 |
| UW | +3.22 | — |
| RLW | +1.61 | — |
| CAGrad | **+7.60** | — |
| RGW | -0.79 | — |

## What was grouped

"""

GROUPED_MD = """**nyuv2** (setting {setting})

| arch | method | seeds | config | runs in |
| --- | --- | --- | --- | --- |
| hps | EW | 0, 1 | {ew} | <tmp>/runs/hps/ew-none/… |
| hps | UW | 0, 1 | {uw} | <tmp>/runs/hps/uw-none/… |
| hps | RLW | 0, 1 | {rlw} | <tmp>/runs/hps/rlw-none/… |
| hps | CAGrad | 0, 1 | {cagrad} | <tmp>/runs/hps/ew-cagrad/… |
| hps | RGW | 0, 1 | {rgw} | <tmp>/runs/hps/ew-rgw/… |
| mtan | EW | 0 | {mtan} | <tmp>/runs/mtan/ew-none/s0 |


## Litmus test: does each method beat random weighting?

| benchmark | method | Δp vs EW | random | its Δp vs EW | paired difference [95% CI] | seeds | verdict | seeds needed |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| nyuv2 — HPS | UW | +3.22% ± 2.87 | RLW | +1.61% ± 2.58 | +1.61 [-1.02, +4.24] | 2 | **indistinguishable** | 9 |
| nyuv2 — HPS | CAGrad | +7.60% ± 0.06 | RGW | -0.79% ± 0.91 | +8.39 [+0.68, +16.10] | 2 | **beats random weighting** | 5 |

Paired over seeds: d = Δp(method) − Δp(random) per seed both ran, both against EW's mean; 95% Student-t \
interval of mean(d). Verdict: interval above 0 → beats random weighting; below 0 → worse; else \
indistinguishable. Seeds needed: smallest n giving the paired t-test (α = 0.05, two-sided) 80% power at the \
observed mean(d) and sd(d) (noncentral t).
"""

LATEX = r"""% nyuv2 — HPS
\begin{tabular}{llcccccc}
\toprule
 & method & seeds & segmentation/miou $\uparrow$ & segmentation/pix\_acc $\uparrow$ & depth/abs\_err $\downarrow$ & Δp $\uparrow$ & vs RLW/RGW \\
\midrule
 & EW & 2 & $51.00 \pm 1.41$ & $0.7100 \pm 0.0141$ & $0.4200 \pm 0.0283$ & $+0.00\% \pm 2.18$ & — \\
\midrule
Loss Bal. & UW & 2 & $52.00^{*} \pm 1.41$ & $0.7200^{*} \pm 0.0141$ & $0.4000^{*} \pm 0.0141$ & $+3.22\%^{*} \pm 2.87$ & +1.61 [-1.02, +4.24] $\approx$ \\
 & RLW & 2 & $51.50 \pm 0.71$ & $0.7150 \pm 0.0354$ & $0.4100 \pm 0.0141$ & $+1.61\% \pm 2.58$ & reference \\
\midrule
Gradient Bal. & CAGrad & 2 & $\mathbf{54.50}^{\dagger} \pm 0.71$ & $\mathbf{0.7250}^{\dagger} \pm 0.0354$ & $\mathbf{0.3750}^{\dagger} \pm 0.0071$ & $\mathbf{+7.60\%}^{\dagger} \pm 0.06$ & +8.39 [+0.68, +16.10] beats \\
 & RGW & 2 & $49.75 \pm 1.06$ & $0.7050 \pm 0.0071$ & $0.4200 \pm 0.0141$ & $-0.79\% \pm 0.91$ & reference \\
\bottomrule
\end{tabular}

% nyuv2 — the paper's Table 1 (its printed numbers, this layout)
\begin{tabular}{llcccccc}
\toprule
 & method & seeds & segmentation/miou $\uparrow$ & segmentation/pix\_acc $\uparrow$ & depth/abs\_err $\downarrow$ & Δp $\uparrow$ & vs RLW/RGW \\
\midrule
 & EW & paper & $53.77$ & $0.7538$ & $0.3845$ & $+0.00\%$ & — \\
\midrule
Loss Bal. & UW & paper & $\mathbf{54.29}^{*}$ & $\mathbf{0.7548}^{*}$ & $0.3815$ & $+0.70\%$ & -0.34 \\
 & RLW & paper & $54.11$ & $0.7528$ & $0.3809^{*}$ & $\mathbf{+1.04\%}^{*}$ & reference \\
\midrule
Gradient Bal. & RGW & paper & $53.91$ & $0.7542$ & $\mathbf{0.3808}$ & $+0.61\%$ & reference \\
\bottomrule
\end{tabular}

% nyuv2 — MTAN
\begin{tabular}{llcccccc}
\toprule
 & method & seeds & segmentation/miou $\uparrow$ & segmentation/pix\_acc $\uparrow$ & depth/abs\_err $\downarrow$ & Δp $\uparrow$ & vs RLW/RGW \\
\midrule
 & EW & 1 & $48.00$ & $0.6600$ & $0.4500$ & $-6.80\%$ & — \\
\bottomrule
\end{tabular}
"""


def test_markdown_report_is_the_hand_checked_one(report, tmp_path):
    markdown = report.markdown.replace(str(tmp_path), "<tmp>")
    assert markdown.startswith(TABLES_MD + GROUPING + "\n\n")
    keys = {
        group.label.lower() if group.arch == "hps" else "mtan": group.key
        for group in report.collection.groups
    }
    expected = GROUPED_MD.format(setting=report.collection.sections[0].key, **keys)
    assert markdown.endswith(expected)
    assert len(markdown) == len(TABLES_MD + GROUPING + "\n\n" + expected)
    assert report.notes == []


def test_latex_report_is_the_hand_checked_one(report):
    assert render_latex(report.tables) == LATEX


CSV_COLUMNS = (
    "dataset,setting,arch,block,method,seeds,config,segmentation/miou_mean,segmentation/miou_std,"
    "segmentation/pix_acc_mean,segmentation/pix_acc_std,depth/abs_err_mean,depth/abs_err_std,delta_p_mean,"
    "delta_p_std,vs_random,vs_random_diff,vs_random_low,vs_random_high,vs_random_verdict,seeds_needed"
)
CSV_ROWS = [  # arch, block, method, seeds, then the numbers (None: empty cell), the litmus text
    ("hps", "baseline", "EW", 2, [51.0, 1.41421, 0.71, 0.0141421, 0.42, 0.0282843, 0.0, 2.17597], None),
    ("hps", "loss", "UW", 2, [52.0, 1.41421, 0.72, 0.0141421, 0.4, 0.0141421, 3.22326, 2.87479],
     ("RLW", 1.61163, -1.02014, 4.24340, "indistinguishable", "9")),
    ("hps", "loss", "RLW", 2, [51.5, 0.707107, 0.715, 0.0353553, 0.41, 0.0141421, 1.61163, 2.58187], None),
    ("hps", "grad", "CAGrad", 2, [54.5, 0.707107, 0.725, 0.0353553, 0.375, 0.00707107, 7.60100, 0.0564915],
     ("RGW", 8.38980, 0.679328, 16.1003, "beats random weighting", "5")),
    ("hps", "grad", "RGW", 2, [49.75, 1.06066, 0.705, 0.00707107, 0.42, 0.0141421, -0.788801, 0.914675], None),
    ("mtan", "baseline", "EW", 1, [48.0, 0.0, 0.66, 0.0, 0.45, 0.0, -6.80258, 0.0], None),
]  # fmt: skip


def test_csv_has_every_number_of_our_tables(report):
    text = render_csv(table_records(report.tables))
    assert text.splitlines()[0] == CSV_COLUMNS
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert len(rows) == len(CSV_ROWS)
    keys = [group.key for group in report.collection.groups]
    for row, (arch, block, method, seeds, numbers, litmus), key in zip(rows, CSV_ROWS, keys, strict=True):
        assert row[:7] == ["nyuv2", "nyuv2", arch, block, method, str(seeds), key]
        assert [float(cell) for cell in row[7:15]] == pytest.approx(numbers, rel=1e-5, abs=1e-9)
        if litmus is None:
            assert row[15:] == [""] * 6
        else:
            reference, *interval, verdict, needed = litmus
            assert row[15] == reference and row[19:] == [verdict, needed]
            assert [float(cell) for cell in row[16:19]] == pytest.approx(interval, rel=1e-5)


def test_litmus_json_pairs_the_seeds(report):
    data = json.loads(json.dumps(litmus_json(report.tables)))
    assert data["statistics"].startswith("Paired over seeds")
    uw, cagrad = data["comparisons"]
    assert (uw["table"], uw["method"], uw["reference"], uw["seeds"]) == ("nyuv2 — HPS", "UW", "RLW", [0, 1])
    assert uw["differences"] == pytest.approx([1.404505, 1.818756], rel=1e-5)
    assert uw["method_delta_p"]["per_seed"] == pytest.approx({"0": 1.190476, "1": 5.256046}, rel=1e-5)
    assert uw["method_delta_p"]["mean"] == pytest.approx(3.22326, rel=1e-5)
    assert uw["method_delta_p"]["std"] == pytest.approx(2.87479, rel=1e-5)
    assert uw["reference_delta_p"]["mean"] == pytest.approx(1.61163, rel=1e-5)
    assert (uw["verdict"], uw["seeds_needed"], uw["seeds_note"]) == ("indistinguishable", 9, "")
    assert uw["std"] == pytest.approx(0.292919, rel=1e-5)
    assert (cagrad["method"], cagrad["reference"], cagrad["verdict"]) == (
        "CAGrad",
        "RGW",
        "beats random weighting",
    )


# ------------------------------------------------------------------------------------------- figures
def write_figure_sweep(root: Path) -> Path:
    """One task (mIoU ↑), so that Δp = 2 · (mIoU − 50) % against EW's mean 50; EW's validation mIoU goes
    47, 48, 49 (seed 0) and 49, 50, 51 (seed 1), RLW's 48 + s, 49 + s, 50 + s (seed s)."""
    tasks = {"segmentation": {"miou": True}}
    runs = [  # loss, grad, distribution, seed, test mIoU, first validation mIoU
        ("ew", "none", None, 0, 49.0, 47), ("ew", "none", None, 1, 51.0, 49),
        ("rlw", "none", "normal", 0, 51.0, 48), ("rlw", "none", "normal", 1, 52.0, 49),
        ("rlw", "none", "normal", 2, 53.0, 50),
        ("rlw", "none", "uniform", 0, 50.0, None), ("rlw", "none", "uniform", 1, 51.5, None),
        ("ew", "cagrad", None, 0, 54.0, None), ("ew", "cagrad", None, 1, 55.0, None),
        ("ew", "rgw", None, 0, 50.5, None), ("ew", "rgw", None, 1, 49.5, None),
    ]  # fmt: skip
    for loss, grad, distribution, seed, miou, first in runs:
        hparams = {"distribution": distribution} if distribution else {}
        history = [
            {"epoch": e, "metrics": {"segmentation": {"miou": first + e}}} for e in range(3 if first else 0)
        ]
        payload = {
            "dataset": "nyuv2",
            "arch": "hps",
            "loss_method": loss,
            "grad_method": grad,
            "seed": seed,
            "tasks": tasks,
            "metrics": {"test": {"segmentation": {"miou": miou}}},
            "config": {"weighting": {"loss": {"name": loss, "hparams": hparams}, "grad": {"name": grad}}},
            "val_history": history,
        }
        write_json_atomic(root / f"{loss}-{grad}-{distribution}" / f"s{seed}" / "results.json", payload)
    return root


@pytest.fixture
def drawn(tmp_path, monkeypatch):
    """name → (the Figure each figure function drew, savefig's keywords), without rasterising the PNGs."""
    from matplotlib.figure import Figure

    from rw_mtl.report import figures
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import build_tables

    tables, _ = build_tables(collect([write_figure_sweep(tmp_path / "runs")]), "test", None)
    closed, saved = [], []
    monkeypatch.setattr(figures.plt, "close", closed.append)
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: saved.append(kwargs))
    out = {}
    for name in ("distribution_boxplot", "validation_curves", "litmus_plot"):
        path = tmp_path / f"{name}.png"
        assert getattr(figures, name)(tables, path) == path and path.is_file()
        out[name] = (closed[-1], saved[-1])
    return out


def _lines(axes, marker):
    return [
        (list(line.get_xdata()), list(line.get_ydata())) for line in axes.lines if line.get_marker() == marker
    ]


def test_fig1_boxes_per_sampler_in_section_5_3_order_with_every_seed_as_a_dot(drawn):
    figure, saved = drawn["distribution_boxplot"]
    assert saved == {"dpi": 200, "format": "png", "bbox_inches": "tight"}
    assert list(figure.get_size_inches()) == pytest.approx([3.4, 2.3])
    (axes,) = figure.axes
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == (
        "nyuv2: RLW, 2–3 seeds",
        "RLW sampling distribution",
        "Δp vs EW (%)",
    )
    assert axes.title.get_fontsize() == 8 and axes.xaxis.label.get_fontsize() == 8
    assert [label.get_text() for label in axes.get_xticklabels()] == ["Uniform", "Normal"]
    assert axes.get_xticklabels()[0].get_fontsize() == 7
    # the dots: uniform's seeds (0, 3 %) spread ±0.03 around box 1, normal's (2, 4, 6 %) ±0.04 around box 2
    dots = [line for line in axes.lines if line.get_marker() == "o" and len(line.get_xdata())]
    assert [x for line in dots for x in line.get_xdata()] == pytest.approx([0.97, 1.03, 1.96, 2.0, 2.04])
    assert [list(line.get_ydata()) for line in dots] == [[0.0, 3.0], [2.0, 4.0, 6.0]]
    assert {(line.get_color(), line.get_markersize(), line.get_alpha()) for line in dots} == {
        ("tab:blue", 2.5, 0.7)
    }
    medians = [list(line.get_ydata()) for line in axes.lines if line.get_color() == "C1"]
    assert medians == [[1.5, 1.5], [4.0, 4.0]]
    boxes = [list(line.get_xdata()) for line in axes.lines if len(line.get_xdata()) == 5]
    assert boxes == [[0.75, 1.25, 1.25, 0.75, 0.75], [1.75, 2.25, 2.25, 1.75, 1.75]]  # widths 0.5
    (ew,) = [line for line in axes.lines if line.get_label() == "EW"]
    assert (list(ew.get_ydata()), ew.get_linestyle(), ew.get_color(), ew.get_linewidth()) == (
        [0.0, 0.0],
        "--",
        "0.4",
        0.8,
    )
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["EW"] and legend._ncols == 1
    assert not legend.get_frame_on() and legend.get_texts()[0].get_fontsize() == 7
    # one legend under the panels: its top centre anchored at the figure's bottom centre
    assert legend._loc == 9  # matplotlib's code of "upper center"
    anchor = legend.get_bbox_to_anchor().transformed(figure.transFigure.inverted())
    assert (anchor.x0, anchor.y0) == pytest.approx((0.5, 0.0))


def test_fig2_validation_curves_are_the_seed_mean_and_a_one_std_band(drawn):
    """EW: epoch Δp (−6, −2), (−4, 0), (−2, 2): mean −4, −2, 0, std 2√2; RLW: mean −2, 0, 2, std 2."""
    figure, _ = drawn["validation_curves"]
    assert list(figure.get_size_inches()) == pytest.approx([3.4, 2.5])
    (axes,) = figure.axes
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == (
        "nyuv2 (EW: its last epoch; band: ± 1 std over seeds)",
        "epoch",
        "validation Δp vs EW (%)",
    )
    curves = {line.get_label(): line for line in axes.lines if line.get_linestyle() == "-"}
    assert list(curves) == ["EW (2 seeds)", "RLW (3 seeds)"]
    assert {label: list(line.get_xdata()) for label, line in curves.items()} == {
        "EW (2 seeds)": [0, 1, 2],
        "RLW (3 seeds)": [0, 1, 2],
    }
    assert [list(line.get_ydata()) for line in curves.values()] == [[-4.0, -2.0, 0.0], [-2.0, 0.0, 2.0]]
    assert {line.get_linewidth() for line in curves.values()} == {1.2}
    spread = 2 * 2**0.5
    bands = [collection.get_paths()[0].vertices for collection in axes.collections]
    assert [sorted({round(float(y), 6) for x, y in band if x == 0}) for band in bands] == [
        [round(-4 - spread, 6), round(-4 + spread, 6)],
        [-4.0, 0.0],
    ]
    assert [sorted({round(float(y), 6) for x, y in band if x == 2}) for band in bands] == [
        [round(-spread, 6), round(spread, 6)],
        [0.0, 4.0],
    ]
    for collection, line in zip(axes.collections, curves.values(), strict=True):
        assert collection.get_alpha() == 0.2 and collection.get_linewidth() == 0
        assert list(collection.get_facecolor()[0][:3]) == pytest.approx(
            list(matplotlib_rgb(line.get_color()))
        )
    (zero,) = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert list(zero.get_ydata()) == [0.0, 0.0] and zero.get_linewidth() == 0.8
    assert all(float(tick).is_integer() for tick in axes.xaxis.get_major_locator()())
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["EW (2 seeds)", "RLW (3 seeds)"]
    assert legend._ncols == 2


def matplotlib_rgb(color):
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def test_litmus_plot_shows_every_rows_t_interval_and_the_random_rows_band(drawn):
    """t_{0.975,1} = 12.706, t_{0.975,2} = 4.303: EW (−2, 2): 0 ± 25.412; RLW (2, 4, 6): 4 ± 4.968;
    RLW uniform (0, 3): 1.5 ± 19.059; CAGrad (8, 10): 9 ± 12.706; RGW (1, −1): 0 ± 12.706."""
    figure, _ = drawn["litmus_plot"]
    assert list(figure.get_size_inches()) == pytest.approx([3.4, 0.8 + 0.22 * 5 + 0.3])
    (axes,) = figure.axes
    assert (axes.get_title(), axes.get_xlabel()) == (
        "nyuv2 — HPS (2–3 seeds)",
        "Δp vs EW (%): mean, 95% t-interval over seeds",
    )
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "EW",
        "RLW",
        "RLW (distribution=uniform)",
        "CAGrad",
        "RGW",
    ]
    assert list(axes.get_yticks()) == [4, 3, 2, 1, 0] and axes.get_ylim() == pytest.approx((-0.7, 4.7))
    means = _lines(axes, "o")
    assert means == [([0.0], [4]), ([4.0], [3]), ([1.5], [2]), ([9.0], [1]), ([0.0], [0])]
    ends = [x[0] for x, _ in _lines(axes, "|")]
    half = [25.412409, 4.968275, 19.059307, 12.706205, 12.706205]
    expected = [end for (mean,), _ in means for end in (mean, mean)]
    signs = [-1, 1] * 5
    assert ends == pytest.approx(
        [e + s * h for e, s, h in zip(expected, signs, [h for h in half for _ in (0, 1)], strict=True)]
    )
    colours = [line.get_color() for line in axes.lines if line.get_marker() == "o"]
    assert colours == ["0.3", "tab:blue", "tab:blue", "tab:orange", "tab:orange"]
    assert {line.get_markersize() for line in axes.lines if line.get_marker() == "o"} == {3}
    bands = {c.get_label(): c.get_paths()[0].vertices for c in axes.collections if c.get_label()[0] != "_"}
    assert list(bands) == ["RLW 95% CI (Loss Bal.)", "RGW 95% CI (Gradient Bal.)"]
    rlw, rgw = (bands[label] for label in bands)
    assert (min(rlw[:, 0]), max(rlw[:, 0]), min(rlw[:, 1]), max(rlw[:, 1])) == pytest.approx(
        (4 - 4.968275, 4 + 4.968275, 1.55, 3.45)
    )
    assert (min(rgw[:, 0]), max(rgw[:, 0]), min(rgw[:, 1]), max(rgw[:, 1])) == pytest.approx(
        (-12.706205, 12.706205, -0.45, 1.45)
    )
    assert {c.get_alpha() for c in axes.collections if c.get_label()[0] != "_"} == {0.15}
    (ew,) = [line for line in axes.lines if line.get_label() == "EW"]
    assert (list(ew.get_xdata()), ew.get_linestyle()) == ([0.0, 0.0], "--")
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == [
        "RLW 95% CI (Loss Bal.)",
        "RGW 95% CI (Gradient Bal.)",
        "EW",
    ]


def test_figures_without_data_are_not_drawn(tmp_path):
    from rw_mtl.report import figures

    for draw in (figures.distribution_boxplot, figures.validation_curves, figures.litmus_plot):
        assert draw([], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


# ---------------------------------------------------------------------------------------------- W&B
class _FakeWandb:
    """What log_report calls of ``wandb``, recorded: the run's init keywords, the logged payload, the
    summary, finish and teardown."""

    def __init__(self, directory: Path) -> None:
        self.calls: list[str] = []
        self.init_kwargs: dict = {}
        self.logged: dict = {}
        self.summary: dict = {}
        self.dir = str(directory)

    def init(self, **kwargs):
        self.init_kwargs = kwargs
        return self

    def Table(self, columns, data):  # noqa: N802 (wandb's name)
        return ("table", columns, data)

    def Image(self, path):  # noqa: N802 (wandb's name)
        return ("image", path)

    def log(self, payload):
        self.logged = payload

    def finish(self):
        self.calls.append("finish")

    def teardown(self):
        self.calls.append("teardown")


def test_wandb_report_logs_each_table_the_records_the_verdicts_and_figures(report, tmp_path, monkeypatch):
    import sys

    from rw_mtl.report.wandb_report import log_report

    fake = _FakeWandb(tmp_path / "wandb-run")
    monkeypatch.setitem(sys.modules, "wandb", fake)
    figure = tmp_path / "litmus.png"
    assert log_report("proj", "sweep/a", tmp_path, report.tables, [figure]) == str(tmp_path / "wandb-run")
    assert fake.init_kwargs == {
        "project": "proj",
        "job_type": "report",
        "group": "sweep/a",
        "dir": str(tmp_path),
        "name": "report-sweep/a",
    }
    assert fake.calls == ["finish", "teardown"]
    assert list(fake.logged) == [
        "tables/nyuv2_HPS",
        "tables/nyuv2_the_paper_s_Table_1_its_printed_numbers_this_layout",
        "tables/nyuv2_MTAN",
        "report",
        "litmus",
        "figures/litmus",
    ]
    kind, columns, rows = fake.logged["tables/nyuv2_HPS"]
    assert columns == [
        "block",
        "method",
        "seeds",
        "segmentation/miou ↑",
        "segmentation/pix_acc ↑",
        "depth/abs_err ↓",
        "Δp ↑",
        "vs RLW/RGW",
    ]
    assert rows[1] == [
        "loss",
        "UW",
        "2",
        r"52.00\* ± 1.41",
        r"0.7200\* ± 0.0141",
        r"0.4000\* ± 0.0141",
        r"+3.22%\* ± 2.87",
        "+1.61 [-1.02, +4.24] ≈",
    ]
    assert fake.logged["tables/nyuv2_the_paper_s_Table_1_its_printed_numbers_this_layout"][2][0][:3] == [
        "baseline",
        "EW",
        "paper",
    ]
    _, columns, rows = fake.logged["report"]
    assert columns[:8] == [
        "dataset",
        "setting",
        "arch",
        "block",
        "method",
        "seeds",
        "config",
        "segmentation/miou_mean",
    ]
    assert [row[4] for row in rows] == ["EW", "UW", "RLW", "CAGrad", "RGW", "EW"]
    _, columns, rows = fake.logged["litmus"]
    assert columns == [
        "table",
        "method",
        "random",
        "difference",
        "ci_low",
        "ci_high",
        "seeds",
        "verdict",
        "seeds_needed",
    ]
    assert [row[:3] + row[6:] for row in rows] == [
        ["nyuv2 — HPS", "UW", "RLW", 2, "indistinguishable", 9],
        ["nyuv2 — HPS", "CAGrad", "RGW", 2, "beats random weighting", 5],
    ]
    assert rows[0][3:6] == pytest.approx([1.611631, -1.020143, 4.243405], rel=1e-5)
    assert fake.logged["figures/litmus"] == ("image", str(figure))
    assert fake.summary == {
        "litmus/nyuv2_HPS/UW": "indistinguishable",
        "litmus/nyuv2_HPS/CAGrad": "beats random weighting",
    }


# ------------------------------------------------------------------------------- litmus: seeds needed
@pytest.mark.parametrize(
    ("mean", "sd", "needed"),
    [
        (1.0, 1.0, 10),  # effect size 1: power 0.748 at n = 9, 0.803 at n = 10 (G*Power's one-sample t: 10)
        (-0.5, 1.0, 34),  # effect 0.5: 0.795 at 33, 0.808 at 34 (G*Power: 34); the sign does not matter
        (2.0, 1.0, 5),
        (10.0, 0.1, 2),  # the smallest n with a spread
        (0.5, 0.0, 2),  # no spread: any difference is settled by 2 seeds
        (1.5e-12, 0.0, 2),  # above the rounding threshold 1e-12 · max(1, sd)
        (1e-12, 0.0, None),  # at it: no difference
        (0.0, 0.5, None),
    ],
)
def test_seeds_needed_is_the_smallest_n_with_80_percent_power(mean, sd, needed):
    from rw_mtl.report.litmus import seeds_needed

    assert seeds_needed(mean, sd) == needed


def test_seeds_needed_gives_up_beyond_max_seeds(monkeypatch):
    from rw_mtl.report import litmus

    monkeypatch.setattr(litmus, "MAX_SEEDS", 10)
    assert litmus.seeds_needed(1.0, 1.0) == 10
    monkeypatch.setattr(litmus, "MAX_SEEDS", 9)
    assert litmus.seeds_needed(1.0, 1.0) is None


# ---------------------------------------------------------------------------------------- identity
def test_config_part_drops_what_only_results_json_knows():
    from rw_mtl.report.identity import config_part

    part = {"tasks": "[…]", "result.arch": "hps", "arch.name": "hps", "weighting.loss.name": "ew"}
    assert config_part(part) == {"arch.name": "hps", "weighting.loss.name": "ew"}


def test_config_identity_is_the_digest_of_the_setting_and_method_parts():
    from rw_mtl.report.identity import config_identity, digest

    config = {
        "seed": 3,
        "dataset": {"name": "nyuv2", "datamodule": {"batch_size": 8}},
        "arch": {"name": "hps"},
        "weighting": {"loss": {"name": "rlw", "hparams": {"distribution": "normal"}}},
    }
    setting = {"dataset.name": "nyuv2", "dataset.datamodule.batch_size": 8}
    method = {
        "arch.name": "hps",
        "weighting.loss.name": "rlw",
        "weighting.loss.hparams.distribution": "normal",
    }
    assert config_identity(config) == (digest(setting), digest(method))
    assert config_identity({**config, "seed": 4}) == config_identity(config)


def test_show_writes_values_as_yaml_does():
    from rw_mtl.report.identity import show

    assert [show(None), show(True), show(False), show(0.5), show("Rep")] == [
        "null",
        "true",
        "false",
        "0.5",
        "Rep",
    ]


def test_slug_keeps_names_and_drops_the_rest():
    from rw_mtl.report.wandb_report import slug

    assert slug("  XLoss (c=0.5) X ") == "XLoss_c=0.5_X"
    assert slug("__a/b__") == "a_b"


def test_report_group_falls_back_to_the_directory_name(tmp_path):
    """Two different log_dirs, or a log_dir the directory is not under: the directory's own name."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.wandb_report import report_group

    metrics = {"segmentation": {"miou": 50.0}}
    tasks = {"segmentation": {"miou": True}}
    sweep = tmp_path / "x" / "m" / "sweep"
    for seed, log_dir in ((0, tmp_path), (1, tmp_path / "x")):  # both above the sweep: no one log_dir
        payload = {
            "dataset": "toy", "arch": "hps", "loss_method": "ew", "grad_method": "none", "seed": seed,
            "tasks": tasks, "metrics": {"test": metrics}, "config": {"paths": {"log_dir": str(log_dir)}},
        }  # fmt: skip
        write_json_atomic(sweep / f"s{seed}" / "results.json", payload)
    assert report_group(collect([sweep]), [sweep]) == "sweep"
    elsewhere = tmp_path / "elsewhere" / "sweep2"
    payload["config"] = {"paths": {"log_dir": str(tmp_path / "x")}}
    write_json_atomic(elsewhere / "s0" / "results.json", {**payload, "seed": 0})
    assert report_group(collect([elsewhere]), [elsewhere]) == "sweep2"


# ------------------------------------------------------------------------------- python -m rw_mtl.report
@pytest.fixture
def no_rasterising(monkeypatch):
    """Figures drawn but not rasterised (savefig writes nothing): the CLI tests stay fast."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: None)


def test_cli_writes_every_output_and_prints_the_report(tmp_path, capsys, no_rasterising, monkeypatch):
    from rw_mtl.report.__main__ import main

    runs, paper = write_sweep(tmp_path)
    out = tmp_path / "out"
    assert main([str(runs), "--paper-dir", str(paper), "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    expected = build([runs], "test", paper).markdown
    assert printed.out.startswith(expected + "\n")
    names = ["report.md", "report.csv", "report.tex", "litmus.json", "fig1_distributions.png", "litmus.png"]
    assert printed.out.endswith("wrote " + ", ".join(str(out / name) for name in names) + "\n")
    assert printed.err == ""
    assert (out / "report.md").read_text() == expected
    assert json.loads((out / "litmus.json").read_text())["comparisons"][0]["method"] == "UW"

    # the defaults: <first dir>/report, the paper's tables shipped with rw_mtl, and --no-delta-p
    assert main([str(runs), "--split", "test", "--no-delta-p"]) == 0
    markdown = (runs / "report" / "report.md").read_text()
    assert "Δp ↑" not in markdown and "### nyuv2 — the paper's Table 1" in markdown


def test_cli_refuses_a_split_no_run_has_and_a_missing_directory(tmp_path, capsys, no_rasterising):
    from rw_mtl.report.__main__ import main

    runs, _ = write_sweep(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([str(runs)])  # the default split, test_at_best_val: these runs only have test metrics
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"warning: skipped {runs / 'hps' / 'ew-none' / 's0' / 'results.json'}: no test_at_best_val metrics"
        in err
    )
    assert err.rstrip().endswith(f"error: no usable results.json under {runs}; run `rw-mtl` first")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing"), "--split", "test"])
    assert (
        capsys.readouterr().err.rstrip().endswith(f"error: no such results directory: {tmp_path / 'missing'}")
    )
    with pytest.raises(SystemExit):
        main([str(runs), "--split", "val"])
    assert "invalid choice: 'val' (choose from" in capsys.readouterr().err


def test_cli_help_says_what_each_option_does(capsys, monkeypatch):
    from rw_mtl.report.__main__ import main

    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: rw-mtl report [-h] [--out OUT] [--split {test_at_best_val,test}]")
    for help_text in (
        "run or sweep directories holding results.json",
        "where to write the report (default: <first dir>/report)",
        "test metrics of the best-validation checkpoint (default) or of the final model",
        "force the Δp column on (or off); default: as the paper's table of the dataset has one (not Tables 3, 7, 8)",
        "--wandb [PROJECT] also log the tables and figures as a W&B run (default project: rw_mtl)",
        "--wandb-group WANDB_GROUP the W&B group (default: the sweep's, as its runs logged)",
        "``rw-mtl report DIR…``: results.json files → the paper's tables",
    ):
        assert help_text in text


def test_cli_logs_to_wandb_in_the_sweeps_group(tmp_path, capsys, no_rasterising, monkeypatch):
    import sys

    from rw_mtl.report.__main__ import main

    runs, paper = write_sweep(tmp_path)
    fake = _FakeWandb(tmp_path / "wandb")
    monkeypatch.setitem(sys.modules, "wandb", fake)
    assert main([str(runs), "--split", "test", "--wandb"]) == 0
    assert (fake.init_kwargs["project"], fake.init_kwargs["group"]) == ("rw_mtl", "runs")
    assert list(fake.logged)[-1] == "figures/litmus"  # the PNGs only
    assert "logged to W&B: project rw_mtl, group runs\n" in capsys.readouterr().out
    assert main([str(runs), "--split", "test", "--wandb", "proj", "--wandb-group", "g"]) == 0
    assert (fake.init_kwargs["project"], fake.init_kwargs["group"]) == ("proj", "g")


def write_edge_sweep(root: Path) -> Path:
    """Figures' edge cases, one task (mIoU ↑): a setting whose EW ends validation at mIoU 0 (no Fig. 2
    panel: Δp divides by it) with an MTAN run; a setting without EW (no reference); then NYUv2 with RLW
    without a distribution key (the default, normal), RLW with a sampler Section 5.3 does not name, RLW on
    MTAN, a one-seed UW, and RGW's validation history after rows without one."""

    def history(first):
        return (
            [{"epoch": e, "metrics": {"segmentation": {"miou": first + e}}} for e in range(3)]
            if first
            else []
        )

    def every_other(last):  # validated at epochs 0, 2, 4
        return [{"epoch": 2 * e, "metrics": {"segmentation": {"miou": last - 2 + e}}} for e in range(3)]

    runs = [  # directory, dataset, arch, loss, grad, distribution, seed, test mIoU, validation history
        (
            "0aaa-ew",
            "aaa",
            "hps",
            "ew",
            "none",
            None,
            0,
            50.0,
            [{"epoch": 0, "metrics": {"segmentation": {"miou": 0.0}}}],
        ),
        ("0aaa-mtan", "aaa", "mtan", "ew", "none", None, 0, 40.0, []),
        ("0aab-uw", "aab", "hps", "uw", "none", None, 0, 40.0, []),
        ("ew", "nyuv2", "hps", "ew", "none", None, 0, 49.0, history(47)),
        ("ew", "nyuv2", "hps", "ew", "none", None, 1, 51.0, history(49)),
        ("rlw", "nyuv2", "hps", "rlw", "none", None, 0, 51.0, []),
        ("rlw", "nyuv2", "hps", "rlw", "none", None, 1, 53.0, []),
        ("rlw-beta", "nyuv2", "hps", "rlw", "none", "beta", 0, 50.0, []),
        ("rlw-beta", "nyuv2", "hps", "rlw", "none", "beta", 1, 52.0, []),
        ("rlw-mtan", "nyuv2", "mtan", "rlw", "none", "uniform", 0, 52.0, history(48)),
        ("rlw-mtan", "nyuv2", "mtan", "rlw", "none", "uniform", 1, 54.0, history(50)),
        ("uw", "nyuv2", "hps", "uw", "none", None, 0, 52.0, []),
        ("rgw", "nyuv2", "hps", "ew", "rgw", None, 0, 50.0, history(48)),
        ("rgw", "nyuv2", "hps", "ew", "rgw", None, 1, 50.0, history(50)),
        ("zzz-ew", "zzz", "hps", "ew", "none", None, 0, 50.0, every_other(49)),
        ("zzz-ew", "zzz", "hps", "ew", "none", None, 1, 50.0, every_other(51)),
        ("zzz-uw", "zzz", "hps", "uw", "none", None, 0, 50.0, every_other(50)),
    ]
    for directory, dataset, arch, loss, grad, distribution, seed, miou, val_history in runs:
        weighting = {"name": loss, **({"hparams": {"distribution": distribution}} if distribution else {})}
        payload = {
            "dataset": dataset, "arch": arch, "loss_method": loss, "grad_method": grad, "seed": seed,
            "tasks": {"segmentation": {"miou": True}}, "metrics": {"test": {"segmentation": {"miou": miou}}},
            "config": {"weighting": {"loss": weighting, "grad": {"name": grad}}},
            "val_history": val_history,
        }  # fmt: skip
        write_json_atomic(root / directory / f"s{seed}" / "results.json", payload)
    return root


def test_figures_skip_what_they_cannot_draw_and_draw_the_rest(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from rw_mtl.report import figures
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import build_tables

    tables, _ = build_tables(collect([write_edge_sweep(tmp_path / "runs")]), "test", None)
    closed = []
    monkeypatch.setattr(figures.plt, "close", closed.append)
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: None)
    for draw in (figures.distribution_boxplot, figures.validation_curves, figures.litmus_plot):
        assert draw(tables, tmp_path / "figure.png") is not None
    boxes, curves, litmus = closed

    (axes,) = boxes.axes  # HPS only: not the RLW runs on MTAN
    assert axes.get_title() == "nyuv2: RLW, 2 seeds each"
    assert [label.get_text() for label in axes.get_xticklabels()] == ["Normal", "beta"]

    # NYUv2 and zzz on HPS: aaa's EW ends at 0, aab has no EW, MTAN is not HPS
    assert [axes.get_title()[:6] for axes in curves.axes] == ["nyuv2 ", "zzz (E"]
    assert list(curves.get_size_inches()) == pytest.approx([3.4, 5.0])
    nyuv2, zzz = curves.axes
    lines = {line.get_label(): list(line.get_ydata()) for line in nyuv2.lines if line.get_linestyle() == "-"}
    assert lines == {"EW (2 seeds)": [-4.0, -2.0, 0.0], "RGW (2 seeds)": [-2.0, 0.0, 2.0]}
    # zzz: EW's last epoch 50 on average; UW's one seed 48, 49, 50 at epochs 0, 2, 4 with no spread
    (uw,) = [line for line in zzz.lines if line.get_label() == "UW (1 seeds)"]
    assert (list(uw.get_xdata()), list(uw.get_ydata())) == ([0, 2, 4], [-4.0, -2.0, 0.0])
    band = zzz.collections[1].get_paths()[0].vertices
    assert sorted({round(float(y), 9) for x, y in band if x == 2}) == [-2.0]
    (zero,) = [line for line in zzz.lines if line.get_linestyle() == "--"]
    assert (list(zero.get_ydata()), zero.get_color()) == ([0.0, 0.0], "0.4")

    assert [axes.get_title() for axes in litmus.axes] == [
        "aaa — HPS (1 seeds)",
        "aaa — MTAN (1 seeds)",
        "nyuv2 — HPS (1–2 seeds)",
        "nyuv2 — MTAN (2 seeds)",
        "zzz — HPS (1–2 seeds)",
    ]
    rows = [1, 1, 5, 1, 2]  # the panels' heights follow their rows: 0.8 + 0.22 per row
    heights = [axes.get_position().height for axes in litmus.axes]
    ratios = [(0.8 + 0.22 * n) / (0.8 + 0.22 * rows[0]) for n in rows]
    assert [h / heights[0] for h in heights] == pytest.approx(ratios, rel=1e-3)
    assert list(litmus.get_size_inches()) == pytest.approx([3.4, sum(0.8 + 0.22 * n for n in rows) + 0.3])
    nyuv2 = litmus.axes[2]
    labels = [label.get_text() for label in nyuv2.get_yticklabels()]
    assert labels == ["EW", "UW", "RLW", "RLW (distribution=beta)", "RGW"]
    uw = [line for line in nyuv2.lines if line.get_ydata()[0] == 3]  # UW's one seed: Δp 4 %, no interval
    assert sorted(float(line.get_xdata()[0]) for line in uw) == [4.0, 4.0, 4.0]


def test_seed_counts_in_titles():
    from rw_mtl.report.figures import _seed_text

    assert _seed_text([[0.0, 1.0], [2.0, 3.0]]) == "2 seeds each"
    assert _seed_text([[0.0, 1.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]]) == "2–4 seeds"


# ------------------------------------------------------------------------------------------------ Δp
def test_delta_p_with_a_reference_of_one_and_its_errors_named():
    """A reference metric of exactly 1 is an ordinary value; no task, or a reference of 0, is refused
    with the sentence that says why."""
    directions = {"seg": {"miou": True}, "depth": {"abs_err": False}}
    reference = {"seg": {"miou": 1.0}, "depth": {"abs_err": 0.5}}
    metrics = {"seg": {"miou": 1.1}, "depth": {"abs_err": 0.6}}
    assert delta_p(metrics, reference, directions) == pytest.approx(100 * (0.1 - 0.2) / 2)
    with pytest.raises(ValueError) as error:
        delta_p(metrics, reference, {})
    assert str(error.value) == "Δp needs at least one task"
    with pytest.raises(ValueError) as error:
        delta_p(metrics, {"seg": {"miou": 0.0}, "depth": {"abs_err": 0.5}}, directions)
    assert str(error.value) == "Δp is undefined: the reference's seg/miou is 0"


def test_architectures_sort_in_the_papers_order_then_by_name():
    """Table 5's four, then LibMTL's others in ``ARCHS``' order, then any other name alphabetically."""
    names = ["zeta_net", "ple", "mtan", "alpha_net", "hps", "cross_stitch"]
    assert sorted(names, key=arch_rank) == ["hps", "cross_stitch", "mtan", "ple", "alpha_net", "zeta_net"]


def test_rows_fall_in_the_papers_four_blocks_in_order():
    """EW alone, a loss method alone, a gradient method with EW losses, both (Table 4's combined rows)."""
    pairs = [("uw", "pcgrad"), ("ew", "pcgrad"), ("uw", "none"), ("ew", "none")]
    assert [block_of(loss, grad) for loss, grad in pairs] == ["combined", "grad", "loss", "baseline"]
    assert sorted(pairs, key=lambda pair: row_rank(*pair)) == pairs[::-1]
    # every gradient row (RGW last among them) comes before every combined row
    assert sorted([("uw", "pcgrad"), ("ew", "rgw")], key=lambda pair: row_rank(*pair)) == [
        ("ew", "rgw"),
        ("uw", "pcgrad"),
    ]


@pytest.mark.parametrize(
    ("block", "names", "expected"),
    [
        ("loss", ["rlw", "famo", "dwa", "uw"], ["uw", "dwa", "famo", "rlw"]),
        (
            "grad",
            ["rgw", "upgrad", "pcgrad", "mgda_ub", "aligned_mtl"],
            ["mgda_ub", "pcgrad", "aligned_mtl", "upgrad", "rgw"],
        ),
    ],
)
def test_methods_sort_paper_first_then_by_name_then_random_weighting_last(block, names, expected):
    """Within a block: the paper's Table 1 order, then methods the paper did not run by name, RLW/RGW last."""
    assert sorted(names, key=lambda name: method_rank(name, block)) == expected


def test_gradient_and_combined_rows_sort_as_table_4_reads():
    """Loss and gradient rows: paper order, others by name, RLW/RGW last; combined rows: by gradient method,
    then by loss method in the same order."""
    grad_rows = [("ew", "rgw"), ("ew", "upgrad"), ("ew", "pcgrad")]
    assert sorted(grad_rows, key=lambda pair: row_rank(*pair)) == [
        ("ew", "pcgrad"),
        ("ew", "upgrad"),
        ("ew", "rgw"),
    ]
    loss_rows = [("rlw", "none"), ("famo", "none"), ("uw", "none")]
    assert sorted(loss_rows, key=lambda pair: row_rank(*pair)) == [
        ("uw", "none"),
        ("famo", "none"),
        ("rlw", "none"),
    ]
    combined = [
        ("uw", "rgw"),
        ("rlw", "pcgrad"),
        ("famo", "pcgrad"),
        ("uw", "pcgrad"),
        ("dwa", "pcgrad"),
        ("uw", "upgrad"),
    ]
    assert sorted(combined, key=lambda pair: row_rank(*pair)) == [
        ("uw", "pcgrad"),
        ("dwa", "pcgrad"),
        ("famo", "pcgrad"),
        ("rlw", "pcgrad"),
        ("uw", "upgrad"),
        ("uw", "rgw"),
    ]

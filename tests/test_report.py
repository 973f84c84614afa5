"""The report: the paper's layout and marks, Δp against EW, the litmus column, grouping by full identity,
bad files skipped with a note, figures."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from rw_mtl.report.__main__ import main
from rw_mtl.results import write_json_atomic

DIRECTIONS = {"segmentation": {"miou": True}, "depth": {"abs_err": False}}


def write_run(
    path: Path,
    *,
    dataset: str = "nyuv2",
    arch: str = "hps",
    loss: str = "ew",
    grad: str = "none",
    seed=0,
    metrics: dict,
    tasks: dict | None = None,
    config: dict | None = None,
    history: list | None = None,
) -> Path:
    """A results.json as rw_mtl.train writes it, with only the fields the report reads."""
    payload = {
        "dataset": dataset,
        "arch": arch,
        "loss_method": loss,
        "grad_method": grad,
        "seed": seed,
        "tasks": tasks or {task: {metric: True for metric in values} for task, values in metrics.items()},
        "metrics": {"test": metrics, "test_at_best_val": metrics, "val_at_best": metrics},
        "val_history": history or [],
        "config": config or {},
    }
    return write_json_atomic(path / "results.json", payload)


def fake_run(
    root: Path,
    loss: str,
    grad: str,
    seed: int,
    miou: float,
    err: float,
    distribution: str = "normal",
    arch: str = "hps",
):
    """A two-task NYUv2-like run (mIoU ↑, abs err ↓) with a 3-epoch validation history."""
    metrics = {"segmentation": {"miou": miou}, "depth": {"abs_err": err}}
    history = [
        {"epoch": e, "score": 0.0, "metrics": {**metrics, "segmentation": {"miou": miou - 2 + e}}}
        for e in range(3)
    ]
    config = {
        "weighting": {
            "loss": {"name": loss, "hparams": {"distribution": distribution} if loss == "rlw" else {}},
            "grad": {"name": grad, "hparams": {}},
        }
    }
    suffix = f"-{distribution}" if distribution != "normal" else ""
    write_run(
        root / arch / f"{loss}-{grad}{suffix}" / f"seed{seed}",
        arch=arch,
        loss=loss,
        grad=grad,
        seed=seed,
        metrics=metrics,
        tasks=DIRECTIONS,
        config=config,
        history=history,
    )


def table(markdown: str, title: str) -> list[dict[str, str]]:
    """The Markdown table under ``### <title>`` as one dict per row (header → cell)."""
    lines = markdown.splitlines()
    start = lines.index(f"### {title}") + 2
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, [cell.strip() for cell in line.strip("|").split("|")], strict=True)))
    return rows


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    fake_run(root, "ew", "none", 1, 52.0, 0.40)
    fake_run(root, "rlw", "none", 0, 55.0, 0.36)
    fake_run(root, "rlw", "none", 1, 53.0, 0.38)
    fake_run(root, "rlw", "cagrad", 0, 51.0, 0.42)
    fake_run(root, "rlw", "none", 0, 49.0, 0.40, distribution="dirichlet")
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "table1_nyuv2.csv").write_text(
        "group,method,seg_miou,depth_abs_err,delta_p\nbaseline,EW,53.77,0.3845,0.00\nloss,RLW,54.11,0.3809,1.04\n"
    )
    return root, paper


def test_report_tables_and_figures(sweep, tmp_path, capsys):
    root, paper = sweep
    out = tmp_path / "report"
    assert main([str(root), "--out", str(out), "--paper-dir", str(paper)]) == 0
    markdown = (out / "report.md").read_text()
    # EW mean 51 ± 1.41; Δp per RLW seed vs EW's mean (51, 0.40): seed 0 → (55/51−1 + 0.04/0.4)/2
    seed0 = (55 / 51 - 1 + (0.40 - 0.36) / 0.40) / 2 * 100
    seed1 = (53 / 51 - 1 + (0.40 - 0.38) / 0.40) / 2 * 100
    ours = table(markdown, "nyuv2 — HPS")
    assert [row["method"] for row in ours] == ["EW", "RLW", "RLW (distribution=dirichlet)", "RLW + CAGrad"]
    assert [row[""] for row in ours] == ["", "Loss Bal.", "", "Loss + Grad."]
    ew, rlw = ours[0], ours[1]
    # the paper's decimals (53.77 → 2, 0.3845 → 4); the loss block's best starred, the overall best bold
    assert ew["segmentation/miou ↑"] == "51.00 ± 1.41" and ew["depth/abs_err ↓"] == "0.4000 ± 0.0000"
    assert (
        rlw["segmentation/miou ↑"] == r"**54.00**\* ± 1.41"
        and rlw["depth/abs_err ↓"] == r"**0.3700**\* ± 0.0141"
    )
    assert rlw["Δp ↑"].startswith(f"**{(seed0 + seed1) / 2:+.2f}%**")
    assert ew["Δp ↑"] == "+0.00% ± 1.39"  # EW's seeds against their own mean: ∓0.98%
    assert rlw["vs RLW/RGW"] == "reference" and ours[2]["vs RLW/RGW"] == "—"
    paper_table = table(markdown, "nyuv2 — the paper's Table 1 (its printed numbers, this layout)")
    assert paper_table[1] == {
        "": "Loss Bal.",
        "method": "RLW",
        "seeds": "paper",
        "segmentation/miou ↑": "**54.11**",
        "depth/abs_err ↓": "**0.3809**",
        "Δp ↑": "**+1.04%**",
        "vs RLW/RGW": "reference",
    }
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert [row["method"] for row in rows] == ["EW", "RLW", "RLW (distribution=dirichlet)", "RLW + CAGrad"]
    by_method = {row["method"]: row for row in rows}
    assert float(by_method["RLW"]["segmentation/miou_mean"]) == pytest.approx(54.0)
    assert float(by_method["RLW"]["delta_p_mean"]) == pytest.approx((seed0 + seed1) / 2)
    latex = (out / "report.tex").read_text()
    assert r"\begin{tabular}" in latex and r"$\mathbf{54.00}^{*} \pm 1.41$" in latex
    for figure in ("fig1_distributions.png", "fig2_validation.png", "litmus.png"):
        data = (out / figure).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, figure
    assert "wrote" in capsys.readouterr().out


def test_report_without_results_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty")])


def test_report_reads_real_runs(fast_config):
    from rw_mtl.train import run

    config = fast_config("trainer.max_epochs=1", "dataset.datamodule.train_size=256")
    run(config)
    out = Path(config.paths.output_dir).parent / "report"
    assert main([str(config.paths.output_dir), "--out", str(out)]) == 0
    rows = table((out / "report.md").read_text(), "multi_digits — HPS")
    assert [(row["method"], row["seeds"]) for row in rows] == [("RLW", "1")]
    assert json.loads((Path(config.paths.output_dir) / "results.json").read_text())["loss_method"] == "rlw"


def test_csv_splits_mean_and_std_for_every_dataset(tmp_path):
    """A report over two datasets: the second one's metric columns are absent from the first row."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import build_tables, render_csv, table_records

    root = tmp_path / "runs"
    fake_run(root / "a", "ew", "none", 0, 50.0, 0.40)
    write_run(root / "b" / "ew-none" / "seed0", dataset="multi_digits", metrics={"digit0": {"acc": 90.0}})
    tables, _ = build_tables(collect([root]), "test", None)
    rows = list(csv.DictReader(io.StringIO(render_csv(table_records(tables)))))
    digits = next(row for row in rows if row["dataset"] == "multi_digits")
    assert float(digits["digit0/acc_mean"]) == 90.0 and float(digits["digit0/acc_std"]) == 0.0
    assert digits["segmentation/miou_mean"] == ""


def test_table4_grid_crosses_loss_and_gradient_methods_beside_the_paper(tmp_path):
    root, paper = tmp_path / "runs", tmp_path / "paper"
    paper.mkdir()
    (paper / "table4_nyuv2_combinations.csv").write_text(
        "grad_method,EW,UW\nVanilla,0.00,0.64\nCAGrad,1.36,1.07\n"
    )
    # found in an order unlike the paper's: its rows and columns are still EW, UW and Vanilla, CAGrad
    fake_run(root, "uw", "cagrad", 0, 50.0, 0.42)  # -2.5%
    fake_run(root, "uw", "none", 0, 55.0, 0.36)  # Δp = ((55-50)/50 + (0.40-0.36)/0.40) / 2 = +10%
    fake_run(root, "ew", "cagrad", 0, 45.0, 0.40)  # -5%
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "gradient × loss method on HPS" in report
    assert "| | EW | UW |" in report
    assert "| Vanilla | +0.00 (+0.00) | **+10.00** (+0.64) |" in report  # the best of each row in bold
    assert "| CAGrad | -5.00 (+1.36) | **-2.50** (+1.07) |" in report
    assert "method × architecture" not in report  # one architecture only


def test_a_list_of_methods_gets_no_grid(tmp_path):
    """Table 1's rows (EW, UW, CAGrad, … each alone) cross nothing: no Table 4 grid."""
    root, paper = tmp_path / "list", tmp_path / "paper"
    paper.mkdir()
    for loss, grad, miou in (("ew", "none", 50.0), ("uw", "none", 51.0), ("ew", "cagrad", 52.0)):
        fake_run(root, loss, grad, 0, miou, 0.40)
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    assert "gradient × loss method" not in (tmp_path / "out" / "report.md").read_text()


def test_table5_grid_crosses_methods_and_architectures_in_the_papers_order(tmp_path):
    root, paper = tmp_path / "runs", tmp_path / "paper"
    paper.mkdir()
    (paper / "table5_nyuv2_architectures.csv").write_text(
        "method,HPS,MTAN\nEW,0.00,2.56\nCAGrad,1.36,2.26\nRLW,1.04,2.66\nRLW+CAGrad,2.20,2.92\n"
    )
    fake_run(root, "rlw", "cagrad", 0, 50.0, 0.36)  # +5%
    fake_run(root, "rlw", "none", 0, 52.0, 0.40)  # +2%
    fake_run(root, "ew", "cagrad", 0, 51.0, 0.40)  # +1%
    fake_run(root, "ew", "none", 0, 60.0, 0.40, arch="mtan")  # +10%: Δp is against EW with HPS
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    lines = report.splitlines()
    start = lines.index("| | HPS | MTAN |")
    assert lines[start + 2 : start + 6] == [  # Table 5's rows: EW, CAGrad, RLW, RLW+CAGrad; best per column
        "| EW | +0.00 (+0.00) | +10.00 (+2.56) |",  # the only MTAN value: nothing to mark
        "| CAGrad | +1.00 (+1.36) | — (+2.26) |",
        "| RLW | +2.00 (+1.04) | — (+2.66) |",
        "| RLW + CAGrad | **+5.00** (+2.20) | — (+2.92) |",
    ]
    assert "### nyuv2 — MTAN" in report  # a table per architecture


def test_many_tasks_show_their_average_beside_the_paper(tmp_path):
    """CelebA-like: 14 one-metric tasks → md/tex show the average accuracy (Table 7's only column) and no
    Δp (the paper's Table 7 has none), the CSV keeps every task and Δp."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import build_tables, render_csv, render_latex, render_markdown, table_records

    root, paper = tmp_path / "runs", tmp_path / "paper"
    paper.mkdir()
    (paper / "table7_celeba.csv").write_text("group,method,avg_acc\nbaseline,EW,90.70\n")
    tasks = [f"attr{i}" for i in range(14)]
    for seed, offset in ((0, 0.0), (1, 2.0)):
        metrics = {task: {"acc": 80.0 + i + offset} for i, task in enumerate(tasks)}
        write_run(root / f"seed{seed}", dataset="celeba", seed=seed, metrics=metrics)
    tables, _ = build_tables(collect([root]), "test", paper)
    # per seed: mean of 80..93 = 86.5, and 88.5; over seeds 87.5 ± sample std √2
    assert tables[0].rows[0].values["avg/acc"] == pytest.approx((87.5, 2**0.5))
    markdown = render_markdown(tables)
    assert "|  | method | seeds | avg/acc ↑ | vs RLW/RGW |" in markdown
    assert "|  | EW | 2 | 87.50 ± 1.41 | — |" in markdown  # one row: nothing to mark best
    assert "|  | EW | paper | 90.70 | — |" in markdown and "attr3" not in markdown
    assert "attr3" not in render_latex(tables) and "avg/acc" in render_latex(tables)
    assert "attr13/acc_mean" in render_csv(table_records(tables)) and "delta_p_mean" in render_csv(
        table_records(tables)
    )
    forced, _ = build_tables(collect([root]), "test", paper, delta_p_column=True)
    assert "| avg/acc ↑ | Δp ↑ | vs RLW/RGW |" in render_markdown(forced)


# The paper's Table 1 as printed (paper, Section 5.1): * / † the best of the loss / gradient block.
PRINTED_TABLE1 = """
EW 53.77 75.45 0.3845 0.1605 23.5737 17.0438 35.04 60.93 72.07 +0.00%
UW 54.14 75.92 0.3833 0.1597 23.2989 16.8691 35.33 61.37 72.48 +0.64%
DWA 53.81 75.56 0.3792* 0.1565* 23.6111 17.0609 34.89 60.89 71.97 +0.63%
IMTL-L 53.50 75.18 0.3824 0.1596 23.3805 16.8088 35.44 61.43 72.43 +0.35%
MOML 54.98* 75.98* 0.3877 0.1618 23.2401* 16.7388 35.90* 61.81* 72.76* +0.76%
RLW 54.11 75.77 0.3809 0.1575 23.3777 16.7385* 35.71 61.52 72.45 +1.04%*
MGDA-UB 50.42 73.46 0.3834 0.1555† 22.7827† 16.1432† 36.90† 62.88 73.61 +0.38%
GradNorm 53.58 75.06 0.3931 0.1663 23.4360 16.9844 35.11 61.11 72.24 -0.99%
PCGrad 53.70 75.41 0.3903 0.1607 23.4281 16.9699 35.16 61.19 72.28 -0.16%
GradDrop 53.58 75.56 0.3855 0.1592 23.5518 17.0137 35.08 60.97 72.02 +0.08%
IMTL-G 53.54 75.45 0.3880 0.1589 23.0530 16.4328 36.21 62.31 73.15 +0.80%
GradVac 54.89† 75.98† 0.3828 0.1635 23.6865 17.1301 34.82 60.71 71.81 +0.07%
CAGrad 53.12 75.19 0.3871 0.1599 22.5257 15.8821 37.42 63.50† 74.17† +1.36%†
RotoGrad 53.90 75.46 0.3812 0.1596 23.0197 16.3714 36.37 62.28 73.05 +1.19%
RGW 53.85 75.87 0.3772† 0.1562 23.6725 17.2439 34.62 60.49 71.75 +0.62%
"""
# The paper's Table 6 (CityScapes, Appendix C.1) as printed.
PRINTED_TABLE6 = """
EW 68.71 91.50 0.0132 45.58 +0.00%
UW 68.84 91.53 0.0132 46.18 -0.09%
DWA 68.56 91.48 0.0135 44.49 +0.05%
IMTL-L 69.71* 91.77* 0.0128* 45.08 +1.58%*
MOML 69.34 91.65 0.0129 46.33 +0.59%
RLW 68.78 91.45 0.0134 43.68* +0.69%
MGDA-UB 68.41 91.13 0.0124† 46.85 +0.64%
GradNorm 68.60 91.48 0.0133 45.32 +0.01%
PCGrad 68.54 91.47 0.0135 44.82 -0.10%
GradDrop 68.62 91.45 0.0136 45.05 -0.42%
IMTL-G 68.62 91.48 0.0130 44.29 +1.09%
GradVac 68.60 91.47 0.0134 44.92 -0.06%
CAGrad 68.89 91.50 0.0128 44.72 +1.38%
RotoGrad 68.96 91.47 0.0127 43.85† +2.13%
RGW 69.68† 91.85† 0.0127 43.91 +2.36%†
"""
NYUV2 = {
    "segmentation": {"miou": True, "pix_acc": True},
    "depth": {"abs_err": False, "rel_err": False},
    "normal": {"mean": False, "median": False, "within_11_25": True, "within_22_5": True, "within_30": True},
}
CITYSCAPES = {"segmentation": {"miou": True, "pix_acc": True}, "depth": {"abs_err": False, "rel_err": False}}
PRESETS = {  # the paper's row → the (loss, grad) of rw_mtl/conf/method/
    "EW": ("ew", "none"),
    "UW": ("uw", "none"),
    "DWA": ("dwa", "none"),
    "IMTL-L": ("imtl_l", "none"),
    "MOML": ("moml", "none"),
    "RLW": ("rlw", "none"),
    "MGDA-UB": ("ew", "mgda_ub"),
    "GradNorm": ("ew", "gradnorm"),
    "PCGrad": ("ew", "pcgrad"),
    "GradDrop": ("ew", "graddrop"),
    "IMTL-G": ("ew", "imtl_g"),
    "GradVac": ("ew", "gradvac"),
    "CAGrad": ("ew", "cagrad"),
    "RotoGrad": ("ew", "rotograd"),
    "RGW": ("ew", "rgw"),
}


def _paper_as_results(root: Path, dataset: str, directions: dict) -> None:
    """Every row of the paper's table of ``dataset`` (rw_mtl/report/paper) as one results.json, found in
    reverse order, so that the layout owes nothing to the order the files are read in."""
    from rw_mtl.report.tables import PAPER_TABLES
    from rw_mtl.resources import PAPER_TABLES_DIR

    file, columns = PAPER_TABLES[dataset]
    with open(PAPER_TABLES_DIR / file) as handle:
        for index, row in enumerate(reversed(list(csv.DictReader(handle)))):
            metrics: dict[str, dict[str, float]] = {}
            for ours, theirs in columns.items():
                task, metric = ours.split("/")
                metrics.setdefault(task, {})[metric] = float(row[theirs])
            loss, grad = PRESETS[row["method"]]
            write_run(
                root / f"{index:02d}",
                dataset=dataset,
                loss=loss,
                grad=grad,
                metrics=metrics,
                tasks=directions,
            )


def _cells(text: str) -> str:
    return text.replace("**", "").replace("\\", "")


@pytest.mark.parametrize(
    ("dataset", "directions", "printed", "misprints", "tolerance"),
    [
        # Table 1 marks MGDA-UB's Mean, Median and 11.25 as the gradient block's best, but CAGrad's
        # 22.5257, 15.8821 and 37.42 are better: our marks go to CAGrad there.
        (
            "nyuv2",
            NYUV2,
            PRINTED_TABLE1,
            {(row, column) for row in ("MGDA-UB", "CAGrad") for column in (4, 5, 6)},
            0.021,
        ),
        ("cityscapes", CITYSCAPES, PRINTED_TABLE6, set(), 0.2),
    ],
)
def test_the_papers_numbers_give_the_papers_table(
    tmp_path, dataset, directions, printed, misprints, tolerance
):
    """The paper's own numbers fed as results: our table equals the printed one cell for cell — rows in
    its order, its decimals, its * / † marks — except the marks the paper itself misprints. Δp is
    recomputed from the printed means, while the paper's is over its unrounded per-seed results: Table 1's
    agree to a rounding step (0.02), Table 6's within 0.2; either way the same rows carry the marks."""
    root = tmp_path / "paper_as_runs"
    _paper_as_results(root, dataset, directions)
    assert main([str(root), "--out", str(tmp_path / "out"), "--split", "test"]) == 0
    rows = table((tmp_path / "out" / "report.md").read_text(), f"{dataset} — HPS")
    expected = [line.split() for line in printed.strip().splitlines()]
    assert [row["method"] for row in rows] == [line[0] for line in expected]
    columns = [
        f"{task}/{metric} {'↑' if up else '↓'}"
        for task, ms in directions.items()
        for metric, up in ms.items()
    ]
    differences = set()
    for row, line in zip(rows, expected, strict=True):
        for index, (column, printed_cell) in enumerate(zip(columns, line[1:], strict=False)):
            if _cells(row[column]) != printed_cell:
                differences.add((line[0], index))
        ours, theirs = _cells(row["Δp ↑"]), line[-1]
        assert float(ours.rstrip("*†%")) == pytest.approx(float(theirs.rstrip("*†%")), abs=tolerance), line[0]
        assert ours.partition("%")[2] == theirs.partition("%")[2], line[0]  # the same mark
    assert differences == misprints
    if dataset == "nyuv2":  # the misprinted cells carry the mark on CAGrad's row instead
        cagrad = next(row for row in rows if row["method"] == "CAGrad")
        assert (
            _cells(cagrad["normal/mean ↓"]) == "22.5257†"
            and _cells(cagrad["normal/within_11_25 ↑"]) == "37.42†"
        )
        # bold: the best over all rows; ties share it (MOML's and GradVac's 75.98)
        bold = {(row["method"], column) for row in rows for column in columns if row[column].startswith("**")}
        assert ("MOML", "segmentation/pix_acc ↑") in bold and ("GradVac", "segmentation/pix_acc ↑") in bold
        assert ("RGW", "depth/abs_err ↓") in bold and ("MGDA-UB", "depth/rel_err ↓") in bold
        assert len(bold) == 10  # 9 columns, one of them a tie of two


def test_rep_and_param_mode_rgw_are_two_rows(tmp_path):
    """13.5: RGW's mode is part of its identity; the param-mode row is named by what differs from RGW's
    defaults (rw_mtl/conf/weighting/grad/rgw.yaml: mode rep)."""
    from rw_mtl.report.collect import collect

    metrics = {"segmentation": {"miou": 50.0}, "depth": {"abs_err": 0.4}}
    for mode in ("rep", "param"):
        for seed in (0, 1):
            config = {
                "weighting": {"loss": {"name": "ew"}, "grad": {"name": "rgw", "mode": mode, "hparams": {}}}
            }
            write_run(
                tmp_path / mode / str(seed),
                grad="rgw",
                seed=seed,
                metrics=metrics,
                tasks=DIRECTIONS,
                config=config,
            )
    (section,) = collect([tmp_path]).sections
    assert [(g.label, g.seeds) for g in section.groups] == [("RGW", [0, 1]), ("RGW (mode=param)", [0, 1])]


def test_three_and_four_task_runs_are_never_averaged(tmp_path, capsys):
    """13.5: two task sets of one dataset are two sections, each with its own EW reference."""
    for digits, acc in ((3, 90.0), (4, 80.0)):
        tasks = {f"digit{i}": {"acc": acc} for i in range(digits)}
        config = {"dataset": {"name": "multi_digits", "datamodule": {"num_digits": digits}}}
        write_run(tmp_path / f"d{digits}", dataset="multi_digits", metrics=tasks, config=config)
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    three = table(markdown, "multi_digits (num_digits=3, 3 tasks) — HPS")
    four = table(markdown, "multi_digits (num_digits=4, 4 tasks) — HPS")
    assert three[0]["avg/acc ↑"] == "90.00" and "digit3/acc ↑" not in three[0]
    assert four[0]["avg/acc ↑"] == "80.00" and four[0]["digit3/acc ↑"] == "80.00"


def test_a_run_given_twice_or_copied_counts_once(tmp_path, capsys):
    """13.5: the same file twice (a directory and its results.json), or a copy of a run directory (same
    config and seed), is one seed, with a note naming both files."""
    root = tmp_path / "runs"
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    fake_run(root, "ew", "none", 1, 52.0, 0.40)
    shutil.copytree(root / "hps" / "ew-none" / "seed1", root / "copy" / "seed1")
    again = root / "hps" / "ew-none" / "seed0" / "results.json"
    assert main([str(root), str(again), "--out", str(tmp_path / "out")]) == 0
    (ew,) = table((tmp_path / "out" / "report.md").read_text(), "nyuv2 — HPS")
    assert ew["seeds"] == "2" and ew["segmentation/miou ↑"] == "51.00 ± 1.41"
    err = capsys.readouterr().err
    assert f"{again}: the same file as {again}; counted once" in err
    assert f"{root / 'hps' / 'ew-none' / 'seed1' / 'results.json'}: the same config and seed (1) as" in err


def test_a_fractional_seed_is_refused_not_counted_as_a_new_seed(tmp_path, capsys):
    """13.5: seed=1.5 trained as seed 1 (Lightning's int(seed)) while recording 1.5: skipped with a
    warning naming the file, rather than counted as a third seed; an integral 2.0 is seed 2."""
    root = tmp_path / "runs"
    metrics = {"segmentation": {"miou": 50.0}, "depth": {"abs_err": 0.4}}
    for name, seed in (("a", 0), ("b", 1), ("c", 1.5), ("d", 2.0)):
        write_run(root / name, seed=seed, metrics=metrics, tasks=DIRECTIONS)
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    (ew,) = table((tmp_path / "out" / "report.md").read_text(), "nyuv2 — HPS")
    assert ew["seeds"] == "3"
    err = capsys.readouterr().err
    assert f"warning: skipped {root / 'c' / 'results.json'}: its seed 1.5 is not an integer" in err
    assert "trained it as seed 1" in err


def test_a_corrupt_results_file_is_skipped_with_a_warning_naming_it(tmp_path, capsys):
    root = tmp_path / "runs"
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    fake_run(root, "rlw", "none", 0, 55.0, 0.36)
    broken = root / "hps" / "rlw-none" / "seed1" / "results.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"dataset": "nyuv2", "metr')
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    rows = table((tmp_path / "out" / "report.md").read_text(), "nyuv2 — HPS")
    assert [(row["method"], row["seeds"]) for row in rows] == [("EW", "1"), ("RLW", "1")]
    err = capsys.readouterr().err
    assert f"warning: skipped {broken}: unreadable (JSONDecodeError" in err
    assert f"skipped {broken}" in (tmp_path / "out" / "report.md").read_text()


def test_a_zero_reference_metric_leaves_delta_p_blank_with_a_note(tmp_path, capsys):
    root = tmp_path / "runs"
    fake_run(root, "ew", "none", 0, 50.0, 0.0)  # EW's abs err is 0: Δp would divide by it
    fake_run(root, "rlw", "none", 0, 55.0, 0.36)
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    rows = table(markdown, "nyuv2 — HPS")
    assert [row["Δp ↑"] for row in rows] == ["—", "—"] and rows[1]["segmentation/miou ↑"] == "**55.00**"
    assert "Δp left blank: EW's depth/abs_err is 0" in markdown
    assert "Δp left blank" in capsys.readouterr().err


def test_the_report_says_what_was_grouped(sweep, tmp_path):
    from rw_mtl.report.collect import collect

    root, paper = sweep
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    section = markdown[markdown.index("## What was grouped") :]
    assert "Not compared: seed, paths, dataset.datamodule.data_dir, logger" in section
    groups = {g.label: g for g in collect([root]).groups}
    assert f"| hps | RLW | 0, 1 | {groups['RLW'].key} | {root / 'hps' / 'rlw-none'}/… |" in section
    assert (
        f"| hps | RLW (distribution=dirichlet) | 0 | {groups['RLW (distribution=dirichlet)'].key} |"
        in section
    )


def test_report_logged_to_wandb_offline_as_tables_and_images(sweep, tmp_path, monkeypatch):
    """`--wandb`: one run in the sweep's group holding every table (as printed), the numbers, the litmus
    verdicts and the three figures."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    root, paper = sweep
    fake_run(root, "uw", "none", 0, 54.0, 0.37)
    fake_run(root, "uw", "none", 1, 54.0, 0.37)
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--paper-dir", str(paper), "--wandb"]) == 0
    (run,) = (out / "wandb").glob("offline-run-*")
    media = run / "files" / "media"
    (ours,) = (media / "table" / "tables").glob("nyuv2_HPS_*.table.json")
    printed = json.loads(ours.read_text())
    assert printed["columns"] == [
        "block", "method", "seeds", "segmentation/miou ↑", "depth/abs_err ↓", "Δp ↑", "vs RLW/RGW"
    ]  # fmt: skip
    assert [row[1] for row in printed["data"]] == [
        "EW",
        "UW",
        "RLW",
        "RLW (distribution=dirichlet)",
        "RLW + CAGrad",
    ]
    (litmus,) = (media / "table").glob("litmus_*.table.json")
    verdicts = json.loads(litmus.read_text())
    assert [row[1:3] for row in verdicts["data"]] == [["UW", "RLW"]]
    assert {path.name.rsplit("_", 2)[0] for path in (media / "images" / "figures").glob("*.png")} == {
        "fig1_distributions",
        "fig2_validation",
        "litmus",
    }
    record = next(run.glob("*.wandb")).read_bytes()
    assert b"sweep" in record and b"report" in record  # the group (the sweep's directory) and the job type


def test_the_wandb_group_is_the_sweeps(tmp_path):
    """As rw_mtl.wandb_run groups the training runs: experiment_name, else the sweep directory relative to
    paths.log_dir."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.wandb_report import report_group

    metrics = {"segmentation": {"miou": 50.0}, "depth": {"abs_err": 0.4}}
    logs = tmp_path / "outputs"
    for name, config in (("a", {"experiment_name": "table1"}), ("b", {"paths": {"log_dir": str(logs)}})):
        write_run(
            logs / name / "multirun" / "x" / "seed0", seed=0, metrics=metrics, tasks=DIRECTIONS, config=config
        )
    assert report_group(collect([logs / "a"]), [logs / "a"]) == "table1"
    assert report_group(collect([logs / "b" / "multirun"]), [logs / "b" / "multirun"]) == "b/multirun"


def test_marks_compare_printed_values_and_bold_counts_ew(tmp_path):
    """Without a paper table: 2 decimals, 4 below 1. Two loss methods that print the same (54.001 and
    53.999 → 54.00) share the *; EW, in no block, still gets the bold of a column it is best in."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import build_tables, render_markdown

    for loss, grad, miou, err in (
        ("ew", "none", 56.0, 0.50), ("uw", "none", 54.001, 0.40), ("rlw", "none", 53.999, 0.41),
        ("ew", "cagrad", 50.0, 0.45), ("ew", "rgw", 51.0, 0.44),
    ):  # fmt: skip
        metrics = {"segmentation": {"miou": miou}, "depth": {"abs_err": err}}
        write_run(
            tmp_path / f"{loss}-{grad}",
            dataset="toy",
            loss=loss,
            grad=grad,
            metrics=metrics,
            tasks=DIRECTIONS,
        )
    tables, _ = build_tables(collect([tmp_path]), "test", None)
    rows = table(render_markdown(tables), "toy — HPS")
    cells = {row["method"]: (row["segmentation/miou ↑"], row["depth/abs_err ↓"]) for row in rows}
    assert cells == {
        "EW": ("**56.00**", "0.5000"),
        "UW": (r"54.00\*", r"**0.4000**\*"),
        "RLW": (r"54.00\*", "0.4100"),
        "CAGrad": ("50.00", "0.4500"),
        "RGW": ("51.00†", "0.4400†"),
    }


def test_variant_names_are_the_shortest_unambiguous_keys():
    from rw_mtl.report.identity import short_keys

    keys = [
        "weighting.loss.hparams.c",
        "weighting.grad.hparams.c",
        "weighting.grad.mode",
        "dataset.datamodule.shift",
    ]
    assert short_keys(keys) == {
        "weighting.loss.hparams.c": "loss.c",
        "weighting.grad.hparams.c": "grad.c",
        "weighting.grad.mode": "mode",
        "dataset.datamodule.shift": "shift",
    }


def test_runs_that_differ_only_in_where_they_ran_are_pooled(tmp_path):
    """Data read from another directory, other loggers, another run name: the same experiment."""
    from rw_mtl.report.collect import collect

    metrics = {"segmentation": {"miou": 50.0}, "depth": {"abs_err": 0.4}}
    for seed, where in ((0, "/data/a"), (1, "/scratch/b")):
        config = {
            "dataset": {"name": "nyuv2", "datamodule": {"data_dir": f"{where}/nyuv2", "batch_size": 8}},
            "paths": {"data_dir": where, "output_dir": f"{where}/out"},
            "logger": {"wandb": {"project": where}} if seed else {},
            "run_name": f"run{seed}",
        }
        write_run(tmp_path / str(seed), seed=seed, metrics=metrics, tasks=DIRECTIONS, config=config)
    (group,) = collect([tmp_path]).groups
    assert group.seeds == [0, 1]

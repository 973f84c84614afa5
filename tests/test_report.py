"""The report: mean ± std over seeds, Δp against EW, best marks, the paper's Δp beside ours, figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from rw_mtl.report.__main__ import main
from rw_mtl.results import write_json_atomic

DIRECTIONS = {"segmentation": {"miou": True}, "depth": {"abs_err": False}}


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
    metrics = {"segmentation": {"miou": miou}, "depth": {"abs_err": err}}
    history = [
        {"epoch": e, "score": 0.0, "metrics": {**metrics, "segmentation": {"miou": miou - 2 + e}}}
        for e in range(3)
    ]
    payload = {
        "dataset": "nyuv2",
        "arch": arch,
        "loss_method": loss,
        "grad_method": grad,
        "seed": seed,
        "tasks": DIRECTIONS,
        "metrics": {"test": metrics, "test_at_best_val": metrics, "val_at_best": metrics},
        "val_history": history,
        "config": {
            "weighting": {
                "loss": {"hparams": {"distribution": distribution} if loss == "rlw" else {}},
                "grad": {"hparams": {}},
            }
        },
    }
    suffix = f"-{distribution}" if distribution != "normal" else ""
    write_json_atomic(root / arch / f"{loss}-{grad}{suffix}" / f"seed{seed}" / "results.json", payload)


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
    # EW mean 51 ± 1.41; RLW mean 54; Δp per RLW seed vs EW mean (51, 0.40): seed 0 → (55/51−1 + 0.04/0.4)/2
    seed0 = (55 / 51 - 1 + (0.40 - 0.36) / 0.40) / 2 * 100
    seed1 = (53 / 51 - 1 + (0.40 - 0.38) / 0.40) / 2 * 100
    rlw = next(line for line in markdown.splitlines() if "| RLW |" in line)
    assert "| hps | RLW | 2 | **54 ± 1.4** | **0.37 ± 0.014** |" in rlw
    assert f"{(seed0 + seed1) / 2:+.2f}%" in rlw and rlw.endswith("| +1.04% |")
    assert "| hps | EW | 2 | 51 ± 1.4 | 0.4 ± 0 | +0.00% ± 1.4 | +0.00% |" in markdown  # seeds ∓0.98%
    assert "| RLW + CAGrad | 1 |" in markdown and "| RLW (dirichlet) | 1 |" in markdown
    lines = markdown.splitlines()
    assert lines[lines.index(rlw) + 1] == "|  | *paper* |  | *54.11* | *0.3809* |  |  |"
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert [row["method"] for row in rows] == ["EW", "RLW + CAGrad", "RLW", "RLW (dirichlet)"]
    by_method = {row["method"]: row for row in rows}
    assert float(by_method["RLW"]["segmentation/miou_mean"]) == pytest.approx(54.0)
    assert float(by_method["RLW"]["delta_p_mean"]) == pytest.approx((seed0 + seed1) / 2)
    assert r"\begin{tabular}" in (out / "report.tex").read_text()
    for figure in ("fig1_distributions.png", "fig2_validation.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_report_without_results_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty")])


def test_report_reads_real_runs(fast_config):
    from rw_mtl.train import run

    config = fast_config("trainer.max_epochs=1")
    run(config)
    out = Path(config.paths.output_dir).parent / "report"
    assert main([str(config.paths.output_dir), "--out", str(out)]) == 0
    assert "| hps | RLW | 1 |" in (out / "report.md").read_text()
    assert json.loads((Path(config.paths.output_dir) / "results.json").read_text())["loss_method"] == "rlw"


def test_csv_splits_mean_and_std_for_every_dataset(tmp_path):
    """A report over two datasets: the second one's metric columns are absent from the first row."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import render_csv, table_rows

    root = tmp_path / "runs"
    fake_run(root / "a", "ew", "none", 0, 50.0, 0.40)
    other = root / "b" / "ew-none" / "seed0" / "results.json"
    metrics = {"digit0": {"acc": 90.0}}
    write_json_atomic(
        other,
        {
            "dataset": "multi_digits",
            "arch": "hps",
            "loss_method": "ew",
            "grad_method": "none",
            "seed": 0,
            "tasks": {"digit0": {"acc": True}},
            "val_history": [],
            "config": {},
            "metrics": {"test": metrics, "test_at_best_val": metrics, "val_at_best": metrics},
        },
    )
    rows = list(csv.DictReader(io.StringIO(render_csv(table_rows(collect([root]), "test")))))
    digits = next(row for row in rows if row["dataset"] == "multi_digits")
    assert float(digits["digit0/acc_mean"]) == 90.0 and float(digits["digit0/acc_std"]) == 0.0
    assert digits["segmentation/miou_mean"] == ""


def test_table4_grid_crosses_loss_and_gradient_methods_beside_the_paper(tmp_path, capsys):
    root, paper = tmp_path / "runs", tmp_path / "paper"
    paper.mkdir()
    (paper / "table4_nyuv2_combinations.csv").write_text(
        "grad_method,EW,UW\nVanilla,0.00,0.64\nCAGrad,1.36,1.07\n"
    )
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    fake_run(root, "uw", "none", 0, 55.0, 0.36)  # Δp = ((55-50)/50 + (0.40-0.36)/0.40) / 2 = +10%
    fake_run(root, "ew", "cagrad", 0, 45.0, 0.40)  # -5%
    fake_run(root, "uw", "cagrad", 0, 50.0, 0.42)  # -2.5%
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "gradient × loss method on HPS" in report
    assert "| | EW | UW |" in report
    assert "| Vanilla | +0.00 (+0.00) | +10.00 (+0.64) |" in report
    assert "| CAGrad | -5.00 (+1.36) | -2.50 (+1.07) |" in report
    assert "method × architecture" not in report  # one architecture only


def test_a_list_of_methods_gets_no_grid(tmp_path):
    """Table 1's rows (EW, UW, CAGrad, … each alone) cross nothing: no Table 4 grid."""
    root, paper = tmp_path / "list", tmp_path / "paper"
    paper.mkdir()
    for loss, grad, miou in (("ew", "none", 50.0), ("uw", "none", 51.0), ("ew", "cagrad", 52.0)):
        fake_run(root, loss, grad, 0, miou, 0.40)
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    assert "gradient × loss method" not in (tmp_path / "out" / "report.md").read_text()


def test_table5_grid_crosses_methods_and_architectures(tmp_path):
    root, paper = tmp_path / "runs", tmp_path / "paper"
    paper.mkdir()
    (paper / "table5_nyuv2_architectures.csv").write_text(
        "method,HPS,MTAN\nEW,0.00,2.56\nRLW+CAGrad,2.20,2.92\n"
    )
    fake_run(root, "ew", "none", 0, 50.0, 0.40)
    fake_run(root, "ew", "none", 0, 60.0, 0.40, arch="mtan")  # +10%: Δp is against EW with HPS
    fake_run(root, "rlw", "cagrad", 0, 50.0, 0.36)  # +5%
    assert main([str(root), "--out", str(tmp_path / "out"), "--paper-dir", str(paper)]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| | HPS | MTAN |" in report
    assert "| EW | +0.00 (+0.00) | +10.00 (+2.56) |" in report
    assert "| RLW + CAGrad | +5.00 (+2.20) | — (+2.92) |" in report


def test_many_tasks_show_their_average_beside_the_paper(tmp_path):
    """CelebA-like: 14 one-metric tasks → md/tex show the average accuracy (Table 7's only column), the
    CSV keeps every task."""
    from rw_mtl.report.collect import collect
    from rw_mtl.report.tables import paper_rows, render_csv, render_latex, render_markdown, table_rows

    root, paper = tmp_path / "runs", tmp_path / "paper"
    paper.mkdir()
    (paper / "table7_celeba.csv").write_text("group,method,avg_acc\nbaseline,EW,90.70\n")
    tasks = [f"attr{i}" for i in range(14)]
    for seed, offset in ((0, 0.0), (1, 2.0)):
        metrics = {task: {"acc": 80.0 + i + offset} for i, task in enumerate(tasks)}
        write_json_atomic(
            root / f"seed{seed}" / "results.json",
            {
                "dataset": "celeba",
                "arch": "hps",
                "loss_method": "ew",
                "grad_method": "none",
                "seed": seed,
                "tasks": {task: {"acc": True} for task in tasks},
                "val_history": [],
                "config": {},
                "metrics": {"test": metrics, "test_at_best_val": metrics, "val_at_best": metrics},
            },
        )
    groups = collect([root])
    rows = table_rows(groups, "test")
    # per seed: mean of 80..93 = 86.5, and 88.5; over seeds 87.5 ± sample std √2
    assert rows[0]["avg/acc"] == pytest.approx((87.5, 2**0.5))
    markdown = render_markdown(rows, groups, {"celeba": paper_rows(paper, "celeba")})
    assert "| arch | method | seeds | avg/acc ↑ | Δp ↑ |" in markdown
    assert "| hps | EW | 2 | **87.5 ± 1.4** |" not in markdown  # one row: nothing to mark best
    assert "| hps | EW | 2 | 87.5 ± 1.4 | +0.00% ± 1.6 |" in markdown
    assert "|  | *paper* |  | *90.7* |  |" in markdown and "attr3" not in markdown
    assert "attr3" not in render_latex(rows) and "avg/acc" in render_latex(rows)
    assert "attr13/acc_mean" in render_csv(rows)

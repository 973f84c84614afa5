"""The litmus test: its statistics, its verdict on results whose answer is known, and `rw-mtl litmus` end to
end on multi_digits."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scipy import stats

from rw_mtl.litmus import LitmusError, method_overrides, parse, plan, seeds_of
from rw_mtl.report.document import build
from rw_mtl.report.litmus import BEATS, SAME, WORSE, compare, seeds_needed, t_interval
from rw_mtl.report.tables import litmus_entries

from .test_report import DIRECTIONS, write_run

REPOSITORY = Path(__file__).resolve().parents[1]


def test_t_interval_is_students():
    values = [3.0, 3.2, 2.9]
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)  # 4.303 · 0.1528 / √3
    assert t_interval(values) == pytest.approx((mean - half, mean + half))
    assert t_interval(values) == pytest.approx((2.6539, 3.4128), abs=1e-4)
    assert t_interval([1.0]) is None


def test_seeds_needed_is_the_paired_t_tests_power():
    """80% power, α = 0.05 two-sided: effect size 1 needs 10 seeds, 0.5 needs 34 (Cohen's tables; G*Power)."""
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(-0.5, 1.0) == 34
    assert seeds_needed(2.0, 0.5) == seeds_needed(4.0, 1.0)  # only the effect size matters
    assert seeds_needed(1.0, 0.0) == 2 and seeds_needed(0.0, 1.0) is None
    assert seeds_needed(4e-16, 3.0) is None  # equal Δp up to rounding: no difference, not "> 1000 seeds"


def test_compare_pairs_seeds_and_gives_the_verdict():
    method = {0: 5.0, 1: 6.0, 2: 4.0, 7: 100.0}  # seed 7 has no RLW run: neither is paired
    random = {0: 1.0, 1: 2.2, 2: 0.1, 9: -50.0}  # seed 9 has no UW run
    comparison = compare("UW", "RLW", method, random)
    assert comparison.seeds == [0, 1, 2] and comparison.differences == pytest.approx([4.0, 3.8, 3.9])
    assert comparison.verdict == BEATS and comparison.mean == pytest.approx(3.9)
    assert comparison.cell() == "+3.90 [+3.65, +4.15] beats"
    single = compare("UW", "RLW", {0: 1.0}, {0: 2.0})
    assert single.verdict == SAME and single.cell() == "-1.00 (1 seed: no CI)"
    assert single.seeds_note == "one paired seed: the spread is unknown"


def _known_answer_runs(root: Path, offsets: list[float]) -> None:
    """EW (mIoU 49, 50, 51), RLW (52, 53, 51) and UW = RLW + ``offsets`` (mIoU points) over seeds 0–2, abs
    err fixed: a seed's Δp against EW's mean 50 is (mIoU / 50 − 1) / 2 · 100, so UW − RLW = offset."""
    for seed, (ew, rlw, offset) in enumerate(
        zip([49.0, 50.0, 51.0], [52.0, 53.0, 51.0], offsets, strict=True)
    ):
        for loss, miou in (("ew", ew), ("rlw", rlw), ("uw", rlw + offset)):
            metrics = {"segmentation": {"miou": miou}, "depth": {"abs_err": 0.4}}
            write_run(root / loss / str(seed), loss=loss, seed=seed, metrics=metrics, tasks=DIRECTIONS)


@pytest.mark.parametrize(
    ("offsets", "verdict", "word"),
    [
        ([3.0, 3.2, 2.9], BEATS, "beats"),  # clearly better
        ([-3.0, -3.2, -2.9], WORSE, "worse"),  # clearly worse
        ([0.5, -0.4, 0.2], SAME, "≈"),  # equal within the noise
    ],
)
def test_verdict_on_results_whose_answer_is_known(tmp_path, offsets, verdict, word):
    _known_answer_runs(tmp_path, offsets)
    report = build([tmp_path], "test", None)
    ((title, comparison),) = litmus_entries(report.tables)
    assert title == "nyuv2 — HPS" and (comparison.method, comparison.reference) == ("UW", "RLW")
    assert comparison.differences == pytest.approx(offsets)  # in Δp points: offset / 50 / 2 · 100
    assert comparison.interval == pytest.approx(t_interval(offsets))
    assert comparison.verdict == verdict
    uw = next(row for row in report.tables[0].rows if row.label == "UW")
    assert uw.litmus.cell().endswith(word)
    needed = seeds_needed(statistics.fmean(offsets), statistics.stdev(offsets))
    assert comparison.seeds_needed == needed and (needed <= 3) == (verdict != SAME)
    assert "| nyuv2 — HPS | UW | " in report.markdown and f"| **{verdict}** |" in report.markdown


def test_a_gradient_method_is_judged_against_rgw_and_a_combination_against_its_loss_method_with_rgw(tmp_path):
    runs = [("ew", "none", 50.0), ("ew", "rgw", 51.0), ("ew", "cagrad", 52.0), ("rlw", "rgw", 53.0)]
    for loss, grad, miou in [*runs, ("rlw", "cagrad", 54.0)]:
        for seed in (0, 1):
            metrics = {"segmentation": {"miou": miou + seed}, "depth": {"abs_err": 0.4}}
            write_run(
                tmp_path / f"{loss}-{grad}" / str(seed),
                loss=loss,
                grad=grad,
                seed=seed,
                metrics=metrics,
                tasks=DIRECTIONS,
            )
    pairs = {c.method: c.reference for _, c in litmus_entries(build([tmp_path], "test", None).tables)}
    assert pairs == {"CAGrad": "RGW", "RLW + CAGrad": "RLW + RGW"}


def test_arguments_split_into_options_method_overrides_and_run_overrides():
    options, method_only, common = parse(
        [
            "method=cagrad",
            "dataset=multi_digits",
            "seeds=2",
            "weighting.grad.hparams.c=0.2",
            "trainer.max_epochs=1",
        ]
    )
    assert options["method"] == "cagrad" and options["datasets"] == "multi_digits" and options["seeds"] == "2"
    assert method_only == ["weighting.grad.hparams.c=0.2"] and common == ["trainer.max_epochs=1"]
    with pytest.raises(LitmusError, match="method=<name> is required"):
        parse(["seeds=3"])
    with pytest.raises(LitmusError, match="choose the method under test with method="):
        parse(["method=uw", "weighting/grad=cagrad"])
    assert seeds_of("3") == [0, 1, 2] and seeds_of("0,5,7") == [0, 5, 7]
    for bad in ("x", "0,0", "-1,2", "0"):
        with pytest.raises(LitmusError, match="seeds="):
            seeds_of(bad)


def test_a_method_is_a_preset_a_weighting_config_or_a_class(tmp_path, monkeypatch, request):
    assert method_overrides("moml") == ["+method=moml"]  # the preset: MOML's held-out validation split
    assert method_overrides("cagrad") == ["+method=cagrad"]
    (tmp_path / "my_methods.py").write_text(
        textwrap.dedent(
            """
            from rw_mtl.weighting.base import GradWeighting, LossWeighting
            from rw_mtl.weighting.loss.ew import EW
            from rw_mtl.weighting.grad.rgw import RGW

            class Mine(EW):
                pass

            class MyGrad(RGW):
                pass

            class Neither:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop("my_methods", None))  # test_custom_method.py uses the name
    assert method_overrides("my_methods.Mine") == [
        "weighting/loss=custom",
        "weighting.loss.target=my_methods.Mine",
        "weighting/grad=none",
    ]
    assert method_overrides("my_methods.MyGrad")[1:] == [
        "weighting/grad=custom",
        "weighting.grad.target=my_methods.MyGrad",
    ]
    with pytest.raises(LitmusError, match="LossWeighting or GradWeighting subclass"):
        method_overrides("my_methods.Neither")
    with pytest.raises(LitmusError, match="not a method preset .*cagrad"):
        method_overrides("cagard")
    grad = plan(["method=my_methods.MyGrad", "seeds=2"])
    assert grad.kind == "grad" and grad.random == "rgw" and grad.seeds == [0, 1]
    assert plan(["method=uw"]).kind == "loss"
    with pytest.raises(LitmusError, match="a baseline of the litmus test itself"):
        plan(["method=rgw"])
    with pytest.raises(LitmusError, match="rep"):  # a rep-mode method on an architecture without one z
        plan(["method=cagrad", "weighting.grad.mode=rep", "arch=cross_stitch"])


def test_litmus_command_end_to_end_on_multi_digits(tmp_path):
    """The real command, 2 seeds of tiny runs: EW, RLW and UW trained, the verdict written; a second
    call trains nothing (every run directory holds its finished result) and gives the same verdict."""
    tiny = [
        "dataset.datamodule.train_size=192",
        "dataset.datamodule.val_size=64",
        "dataset.datamodule.test_size=64",
        "dataset.encoder.width=8",
        "dataset.optimizer.lr=0.01",
        "trainer.max_epochs=1",
        "logger=none",
        "print_config=false",
        "~callbacks.progress_bar",
    ]
    command = [
        sys.executable,
        "-m",
        "rw_mtl",
        "litmus",
        "method=uw",
        "seeds=2",
        f"out={tmp_path / 'litmus'}",
        *tiny,
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "litmus" / "litmus-uw"
    payload = json.loads((out / "litmus.json").read_text())
    (benchmark,) = payload["benchmarks"]
    assert benchmark["method"] == "UW" and benchmark["reference"] == "RLW" and benchmark["seeds"] == [0, 1]
    assert benchmark["verdict"] in (BEATS, SAME, WORSE) and len(benchmark["interval"]) == 2
    assert benchmark["method_delta_p"]["per_seed"].keys() == {"0", "1"}
    markdown = (out / "litmus.md").read_text()
    assert "| multi_digits — HPS | UW |" in markdown and "| RLW |" in markdown and markdown in first.stdout
    assert (out / "litmus.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = sorted((tmp_path / "litmus").rglob("results.json"))
    assert len(results) == 6  # EW, RLW, UW × 2 seeds
    stamps = [path.stat().st_mtime_ns for path in results]
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [path.stat().st_mtime_ns for path in results] == stamps
    assert json.loads((out / "litmus.json").read_text())["benchmarks"] == payload["benchmarks"]

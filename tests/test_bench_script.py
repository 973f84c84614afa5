"""scripts/bench_step.py: every preset builds its model and batch, and a tiny run prints the ratio table.

Not a timing test: it checks that the benchmark the GPU numbers in docs/perf.md come from still runs.
"""

from __future__ import annotations

import json
import runpy
import statistics
from pathlib import Path

import pytest

BENCH = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_step.py"))


@pytest.mark.parametrize("preset", ["nyuv2", "celeba40"])
@pytest.mark.parametrize("method", ["ew", "ew+rotograd", "ew+gradnorm@rep"])
def test_presets_build_their_model_for_every_method(preset, method):
    spec = BENCH["PRESETS"][preset]
    tasks = spec["tasks"]()
    module = BENCH["build_module"](BENCH["_config"](spec, method, []), tasks)
    batch = spec["batch"]()
    assert set(batch["targets"]) == set(tasks) == set(module.task_names)
    if preset == "celeba40":
        assert len(tasks) == 40 and batch["inputs"].shape == (256, 3, 64, 64)
        assert module.arch.encoder.out_features == 512  # ResNet-18's pooled features


@pytest.mark.parametrize("clock", [[], ["--clock", "cpu", "--threads", "1"]], ids=["wall", "cpu"])
def test_tiny_run_prints_the_ratio_table(capsys, tmp_path, clock):
    """Each row is the method's median step time and its ratio to the first method's median, both from the
    raw times written to --json (the baseline's own 1.00 proves nothing: the other rows are checked)."""
    out = tmp_path / "times.json"
    methods = ["ew", "ew+pcgrad", "ew+mgda_ub@last_layer"]
    code = BENCH["main"](
        ["--preset", "digits", "--device", "cpu", "--steps", "3", "--warmup", "1", "--json", str(out), *clock]
        + ["--methods", *methods]
    )
    assert code == 0
    times = json.loads(out.read_text())["times_s"]
    assert list(times) == methods
    assert all(len(times[m]) == 3 and all(t > 0 for t in times[m]) for m in methods)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ew")]
    baseline = statistics.median(times["ew"])
    expected = [
        f"| {m} | {1000 * statistics.median(times[m]):.1f} | {statistics.median(times[m]) / baseline:.2f} |"
        for m in methods
    ]
    assert rows == expected


def test_methods_with_extra_batches_draw_them_from_the_fit_loader(capsys):
    """The bench passes its loader to fit() directly (no data module): SDMGrad's two extra batches a step
    come from a second pass over that loader."""
    code = BENCH["main"](
        ["--preset", "digits", "--device", "cpu", "--steps", "2", "--warmup", "1"]
        + ["--methods", "ew", "ew+sdmgrad", "ew+modo@rep"]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "| ew+sdmgrad | " in table and "| ew+modo@rep | " in table


def test_methods_bench_prints_every_method(capsys):
    bench = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_methods.py"))
    assert bench["main"](["--tasks", "3", "--dim", "50", "--repeats", "1", "--clock", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "| pcgrad | " in table and "| 1.00 |" in table
    assert all(f"| {name} |" in table for name in bench["DEFAULT_METHODS"])

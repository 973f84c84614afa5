"""scripts/bench_step.py: every preset builds its model and batch, and a tiny run prints the ratio table.

Not a timing test: it checks that the benchmark the GPU numbers in docs/perf.md come from still runs.
"""

from __future__ import annotations

import json
import runpy
import statistics
from pathlib import Path

import pytest

from rw_mtl.weighting import get

BENCH = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_step.py"))


@pytest.mark.parametrize("preset", ["nyuv2", "celeba40"])
@pytest.mark.parametrize("method", ["ew", "ew+rotograd", "ew+gradnorm@rep"])
def test_presets_build_their_model_for_every_method(preset, method):
    spec = BENCH["PRESETS"][preset]
    tasks = spec["tasks"]()
    module = BENCH["build_module"](BENCH["_config"](spec, method, []), tasks)
    batch = spec["batch"]()
    assert set(batch["targets"]) == set(tasks) == set(module.task_names)
    loss, _, grad = method.partition("+")
    grad, _, mode = grad.partition("@")
    assert type(module.loss_weighting) is get(loss)
    assert type(module.grad_weighting) is (get(grad) if grad else type(None))
    assert module.grad_mode == (mode or {"": "param", "rotograd": "rep"}[grad])  # none.yaml, rotograd.yaml
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


def test_methods_bench_prints_every_method(capsys, monkeypatch):
    """Every default method is timed (its aggregate runs) and gets one row: its median time and its ratio to
    pcgrad's. The clock is replaced by known times (method i: i + 1 ms, so row i reads i + 1 and × (i + 1))
    — the baseline's own 1.00 alone would not show a wrong ratio."""
    bench = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_methods.py"))
    methods = bench["DEFAULT_METHODS"]
    measure = bench["main"].__globals__["time_aggregate"]
    timed = []

    def known_times(name, grads, repeats, clock):
        timed.append((name, len(measure(name, grads, repeats, clock))))
        return [(methods.index(name) + 1) / 1000, 1.0, 0.0][:repeats]  # the median: (i + 1) ms

    monkeypatch.setitem(bench["main"].__globals__, "time_aggregate", known_times)
    assert bench["main"](["--tasks", "3", "--dim", "50", "--repeats", "1", "--clock", "cpu"]) == 0
    assert timed == [(name, 1) for name in methods] and methods[0] == "pcgrad"
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| method | ms per call | × pcgrad |"
    assert rows[1:] == [f"| {name} | {i + 1}.0 | {i + 1}.00 |" for i, name in enumerate(methods)]

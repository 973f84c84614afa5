"""scripts/bench_step.py: every preset builds its model and batch, and a tiny run prints the ratio table.

Not a timing test: it checks that the benchmark the GPU numbers in docs/perf.md come from still runs.
"""

from __future__ import annotations

import json
import runpy
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
    out = tmp_path / "times.json"
    code = BENCH["main"](
        ["--preset", "digits", "--device", "cpu", "--steps", "2", "--warmup", "1", "--json", str(out), *clock]
        + ["--methods", "ew", "ew+pcgrad", "ew+mgda_ub@last_layer"]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "| ew | " in table and "| 1.00 |" in table and "| ew+mgda_ub@last_layer |" in table
    times = json.loads(out.read_text())["times_s"]
    assert len(times["ew+pcgrad"]) == 2 and all(t > 0 for t in times["ew+pcgrad"])


def test_methods_bench_prints_every_method(capsys):
    bench = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_methods.py"))
    assert bench["main"](["--tasks", "3", "--dim", "50", "--repeats", "1", "--clock", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "| pcgrad | " in table and "| 1.00 |" in table
    assert all(f"| {name} |" in table for name in bench["DEFAULT_METHODS"])

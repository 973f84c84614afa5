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

from .conftest import modules_built

BENCH = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_step.py"))


@pytest.mark.parametrize("preset", ["nyuv2", "celeba40"])
@pytest.mark.parametrize("method", ["ew", "ew+rotograd", "ew+gradnorm@rep"])
def test_presets_build_their_model_for_every_method(preset, method):
    spec = BENCH["PRESETS"][preset]
    tasks = spec["tasks"]()
    module = BENCH["build_module"](BENCH["_config"](spec, method, []), tasks)
    batch = BENCH["preset_batch"](spec)
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


def test_methods_with_extra_or_validation_batches_draw_them_from_the_data_module(capsys, tmp_path):
    """SDMGrad's two extra training batches a step and the bilevel methods' validation batch come from the
    bench's data module (its training and validation loaders yield the same batch)."""
    out = tmp_path / "times.json"
    methods = [
        "ew",
        "ew+sdmgrad",
        "ew+modo@rep",
        "ew+sdmgrad@rep:sampling=halves",
        "auto_lambda",
        "forum",
        "moml",
    ]
    code = BENCH["main"](
        ["--preset", "digits", "--device", "cpu", "--steps", "2", "--warmup", "1", "--batch-size", "8"]
        + ["--json", str(out), "--methods", *methods]
    )
    assert code == 0
    assert list(json.loads(out.read_text())["times_s"]) == methods
    table = capsys.readouterr().out
    assert all(f"| {method} | " in table for method in methods)


@pytest.mark.parametrize(
    ("method", "loss_hparams", "grad_hparams"),
    [
        ("ew+sdmgrad@rep:sampling=halves", {}, {"sampling": "halves", "lamda": 0.3}),
        ("ew+modo@rep:gamma=0.5,sampling=halves", {}, {"gamma": 0.5, "sampling": "halves"}),
        ("auto_lambda:init=0.5", {"init": 0.5}, None),
    ],
)
def test_a_method_spec_sets_hyperparameters(method, loss_hparams, grad_hparams):
    """``:key=value,…`` sets the gradient method's hyperparameters, or the loss method's without one."""
    config = BENCH["_config"](BENCH["PRESETS"]["digits"], method, [])
    assert {key: config.weighting.loss.hparams[key] for key in loss_hparams} == loss_hparams
    if grad_hparams is None:
        assert config.weighting.grad.name == "none"
    else:
        assert {key: config.weighting.grad.hparams[key] for key in grad_hparams} == grad_hparams
        assert config.weighting.grad.mode == "rep"


@pytest.mark.parametrize("preset", ["nyuv2", "celeba40", "digits"])
def test_batch_size_and_resolution_apply_to_every_preset(preset):
    spec = BENCH["PRESETS"][preset]
    batch = BENCH["preset_batch"](spec, 2, (24, 32))
    assert batch["inputs"].shape[0] == 2 and batch["inputs"].shape[-2:] == (24, 32)
    assert all(target.shape[0] == 2 for target in batch["targets"].values())
    if preset == "nyuv2":
        assert batch["targets"]["depth"].shape == (2, 1, 24, 32)
        assert batch["targets"]["segmentation"].shape == (2, 24, 32)
    default = BENCH["preset_batch"](spec)
    assert (default["inputs"].shape[0], *default["inputs"].shape[-2:]) == (
        spec["batch_size"],
        *spec["resolution"],
    )


def test_batch_size_and_resolution_reach_the_run_and_its_record(capsys, tmp_path):
    """--batch-size/--resolution replace the preset's size in the timed run, and the table's header and the
    JSON say which size was timed."""
    out = tmp_path / "times.json"
    code = BENCH["main"](
        ["--preset", "digits", "--device", "cpu", "--steps", "1", "--warmup", "0", "--batch-size", "4"]
        + ["--resolution", "20x24", "--clock", "cpu", "--threads", "1", "--json", str(out), "--methods", "ew"]
    )
    assert code == 0
    record = json.loads(out.read_text())
    assert record["batch_size"] == 4 and record["resolution"] == [20, 24]
    assert "preset digits (batch 4, 20×24)" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["96", "96x", "x128", "0x128", "96x-1", "axb"])
def test_bad_resolution_names_the_expected_form(text):
    with pytest.raises(SystemExit):
        BENCH["main"](["--resolution", text, "--list"])
    with pytest.raises(Exception, match="HEIGHTxWIDTH"):
        BENCH["parse_resolution"](text)


def test_default_list_has_every_registered_method(capsys):
    """`make bench` (bench_step.py without --methods) times every loss method and every gradient method in
    its default mode, with EW first as the baseline."""
    from rw_mtl.weighting import GRAD_METHODS, LOSS_METHODS

    assert BENCH["main"](["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed[0] == "ew" and len(listed) == len(set(listed))
    assert set(LOSS_METHODS) <= set(listed)
    assert {f"ew+{name}" for name in GRAD_METHODS} <= set(listed)
    assert set(BENCH["MODE_VARIANTS"]) <= set(listed)


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


def test_a_repeated_method_gets_its_own_row(capsys, tmp_path):
    """Naming a method twice times it twice (the noise between the two is the table's resolution); the
    baseline is its first run."""
    out = tmp_path / "times.json"
    code = BENCH["main"](
        ["--preset", "digits", "--device", "cpu", "--steps", "2", "--warmup", "0", "--batch-size", "8"]
        + ["--json", str(out), "--methods", "ew", "rlw", "ew"]
    )
    assert code == 0
    times = json.loads(out.read_text())["times_s"]
    assert list(times) == ["ew", "rlw", "ew (2)"]
    baseline = statistics.median(times["ew"])
    table = capsys.readouterr().out
    assert f"| ew (2) | {1000 * statistics.median(times['ew (2)']):.1f} | " in table
    rlw = statistics.median(times["rlw"])
    assert f"| rlw | {1000 * rlw:.1f} | {rlw / baseline:.2f} |" in table


def test_each_timed_method_is_freed_before_the_next():
    """A process times every method in turn: a finished method's model and trainer must not stay in memory
    (they did, in reference cycles, until the NYUv2 param-mode bench was killed for memory: docs/perf.md)."""
    with modules_built() as (built, alive):
        times = BENCH["time_method"]("digits", "ew+pcgrad", 1, 0, "cpu", [])
        assert len(times) == 1 and built == ["MTLModule"] and len(alive) == 0

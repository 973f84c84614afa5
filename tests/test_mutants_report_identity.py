"""The report's run identity (rw_mtl.report.identity), its CLI (``python -m rw_mtl.report``) and the W&B
group it logs to, checked exactly: written against the surviving mutants of ``make mutate``
(docs/testing.md, "Report: identity, CLI and W&B"). Fast: no figure is rasterised, W&B is a fake.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from rw_mtl.report.collect import collect
from rw_mtl.report.identity import config_flat, digest, experiment_config, flatten, short_keys
from rw_mtl.report.wandb_report import report_group
from rw_mtl.results import write_json_atomic
from tests.test_mutants_report import _FakeWandb, no_rasterising, write_sweep  # noqa: F401 (a fixture)


# ---------------------------------------------------------------------------------------- identity
def test_flatten_writes_empty_mappings_and_lists_as_json_text():
    """An empty subtree stays a key (``{}``: ``hparams: {}`` differs from a missing key); a list is JSON
    text with sorted keys (so the same list of dicts compares and hashes the same), any object as str."""
    tree = {"hparams": {}, "w": [{"b": 1, "a": Path("x/y")}, None], "t": (1, 2), "n": {"m": None}}
    assert flatten(tree) == {
        "hparams": "{}",
        "w": '[{"a": "x/y", "b": 1}, null]',
        "t": "[1, 2]",
        "n.m": None,
    }
    assert flatten({}) == {}  # the root: nothing to name


def test_config_flat_drops_what_grad_none_does_not_use_and_keeps_any_other_grads():
    config = {
        "seed": 1,
        "weighting": {
            "loss": {"name": "rlw", "mode": "loss", "hparams": {"distribution": "normal"}},
            "grad": {"name": "none", "mode": "rep", "hparams": {"c": 0.4}, "batched_jacobian": True},
        },
    }
    assert config_flat(config) == {
        "weighting.loss.name": "rlw",
        "weighting.loss.mode": "loss",
        "weighting.loss.hparams.distribution": "normal",
        "weighting.grad.name": "none",
    }
    config["weighting"]["grad"]["name"] = "cagrad"
    assert config_flat(config) == {
        "weighting.loss.name": "rlw",
        "weighting.loss.mode": "loss",
        "weighting.loss.hparams.distribution": "normal",
        "weighting.grad.name": "cagrad",
        "weighting.grad.mode": "rep",
        "weighting.grad.hparams.c": 0.4,
    }


def test_experiment_config_adds_the_results_json_fields():
    run = {
        "dataset": "nyuv2",
        "tasks": {"segmentation": {"miou": True}, "depth": {"abs_err": False}},
        "arch": "hps",
        "loss_method": "ew",
        "grad_method": "none",
        "grad_mode": "rep",  # ignored: grad none has no mode
        "config": {"seed": 0, "trainer": {"max_epochs": 2}},
    }
    tasks = '{"depth": {"abs_err": false}, "segmentation": {"miou": true}}'
    assert experiment_config(run) == {
        "trainer.max_epochs": 2,
        "dataset.name": "nyuv2",
        "tasks": tasks,
        "result.arch": "hps",
        "result.loss_method": "ew",
        "result.grad_method": "none",
    }
    run.update(grad_method="pcgrad", config=None, arch=None)
    assert experiment_config(run) == {
        "dataset.name": "nyuv2",
        "tasks": tasks,
        "result.loss_method": "ew",
        "result.grad_method": "pcgrad",
        "result.grad_mode": "rep",
    }


def test_digest_is_the_first_ten_hex_digits_of_the_sha1_of_the_sorted_items():
    part = {"b": Path("d/e"), "a": 1}
    text = '[["a", 1], ["b", "d/e"]]'
    assert digest(part) == hashlib.sha1(text.encode()).hexdigest()[:10]
    assert len(digest(part)) == 10


def test_short_keys_are_the_shortest_unique_tails_without_the_bookkeeping_words():
    keys = [
        "weighting.loss.hparams.c",
        "weighting.grad.hparams.c",
        "weighting.mode",  # "weighting" dropped: "mode" is unique as a tail of one word
        "weighting.grad.mode",
        "dataset.datamodule.validation",  # "datamodule" dropped
        "trainer.validation",
        "result.arch",  # "result" dropped
        "model.arch",
        "a.b.size",  # three words: its one-word tail "size" is shared with "d.size"
        "d.size",
        "weighting.loss.hparams.c",  # a repeat is one key
    ]
    assert short_keys(keys) == {
        "weighting.loss.hparams.c": "loss.c",
        "weighting.grad.hparams.c": "grad.c",
        "weighting.mode": "mode",
        "weighting.grad.mode": "grad.mode",
        "dataset.datamodule.validation": "dataset.validation",
        "trainer.validation": "trainer.validation",
        "result.arch": "arch",
        "model.arch": "model.arch",
        "a.b.size": "b.size",
        "d.size": "d.size",
    }
    assert short_keys(["x.y", "y.z", "hparams"]) == {"x.y": "y", "y.z": "z", "hparams": "hparams"}


# ---------------------------------------------------------------------------------------------- W&B
def write_runs(sweep: Path, configs: list[dict | None]) -> Path:
    """One results.json per config (seed 0, 1, …) under ``sweep``."""
    for seed, config in enumerate(configs):
        payload = {
            "dataset": "toy", "arch": "hps", "loss_method": "ew", "grad_method": "none", "seed": seed,
            "tasks": {"t": {"acc": True}}, "metrics": {"test": {"t": {"acc": 50.0}}}, "config": config,
        }  # fmt: skip
        write_json_atomic(sweep / f"s{seed}" / "results.json", payload)
    return sweep


def test_report_group_is_the_runs_experiment_name(tmp_path):
    sweep = write_runs(
        tmp_path / "logs" / "sweep", [{"experiment_name": "exp1"}, {"experiment_name": "exp1"}]
    )
    assert report_group(collect([sweep]), [sweep]) == "exp1"
    # two names, or a run without one: no common name, the directory's
    for index, second in enumerate(({"experiment_name": "exp2"}, {}, None)):
        other = write_runs(tmp_path / f"other{index}" / "sweep", [{"experiment_name": "exp1"}, second])
        assert report_group(collect([other]), [other]) == "sweep"


def test_report_group_is_the_directory_under_the_runs_log_dir(tmp_path):
    logs = tmp_path / "logs"
    sweep = write_runs(logs / "nyuv2" / "sweep", [{"paths": {"log_dir": str(logs)}}] * 2)
    assert report_group(collect([sweep]), [sweep]) == "nyuv2/sweep"
    # the log_dir itself: its name
    assert report_group(collect([logs]), [logs]) == "logs"
    # a run without a log_dir: the directory's name
    bare = write_runs(tmp_path / "bare" / "sweep", [{"paths": {"log_dir": str(logs)}}, {"paths": {}}])
    assert report_group(collect([bare]), [bare]) == "sweep"


# ------------------------------------------------------------------------------- python -m rw_mtl.report
def test_cli_help_keeps_the_docstrings_lines_and_each_options_exact_help(capsys, monkeypatch):
    from rw_mtl.report.__main__ import main

    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "\n\nThe same as ``python -m rw_mtl.report DIR…``.\n\nOne table per setting" in out
    lines = [" ".join(line.split()) for line in out[out.index("positional arguments:") :].splitlines()]
    assert lines == [
        "positional arguments:",
        "dirs run or sweep directories holding results.json",
        "",
        "options:",
        "-h, --help show this help message and exit",
        "--out OUT where to write the report (default: <first dir>/report)",
        "--split {test_at_best_val,test}",
        "test metrics of the best-validation checkpoint (default) or of the final model",
        "--paper-dir PAPER_DIR",
        "--delta-p, --no-delta-p",
        "force the Δp column on (or off); default: as the paper's table of the dataset has one "
        "(not Tables 3, 7, 8)",
        "--wandb [PROJECT] also log the tables and figures as a W&B run (default project: rw_mtl)",
        "--wandb-group WANDB_GROUP",
        "the W&B group (default: the sweep's, as its runs logged)",
    ]


def test_cli_hands_build_paths_and_the_options(tmp_path, monkeypatch):
    """``build`` gets the directories and the paper directory as Paths (its signature), whether given or
    defaulted."""
    from rw_mtl.report import __main__ as cli
    from rw_mtl.resources import PAPER_TABLES_DIR

    calls = []

    def build(*args):
        calls.append(args)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(cli, "build", build)
    for argv in (
        ["a", "b", "--paper-dir", "p", "--delta-p"],
        ["a", "--split", "test", "--no-delta-p"],
        ["a"],
    ):
        with pytest.raises(SystemExit):
            cli.main(argv)
    assert calls == [
        ([Path("a"), Path("b")], "test_at_best_val", Path("p"), True),
        ([Path("a")], "test", PAPER_TABLES_DIR, False),
        ([Path("a")], "test_at_best_val", PAPER_TABLES_DIR, None),
    ]


def test_cli_names_every_directory_without_a_usable_run(tmp_path, capsys):
    from rw_mtl.report.__main__ import main

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    with pytest.raises(SystemExit):
        main([str(first), str(second)])
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"error: no usable results.json under {first}, {second}; run `rw-mtl` first")


def test_cli_logs_the_figures_from_the_report_directory(tmp_path, capsys, no_rasterising, monkeypatch):  # noqa: F811
    from rw_mtl.report.__main__ import main

    runs, paper = write_sweep(tmp_path)
    fake = _FakeWandb(tmp_path / "wandb")
    monkeypatch.setitem(sys.modules, "wandb", fake)
    out = tmp_path / "out"
    assert main([str(runs), "--split", "test", "--paper-dir", str(paper), "--out", str(out), "--wandb"]) == 0
    assert fake.init_kwargs["dir"] == str(out)
    figures = {key: value for key, value in fake.logged.items() if key.startswith("figures/")}
    assert figures == {
        "figures/fig1_distributions": ("image", str(out / "fig1_distributions.png")),
        "figures/litmus": ("image", str(out / "litmus.png")),
    }
    assert json.loads((out / "litmus.json").read_text())["comparisons"][0]["method"] == "UW"

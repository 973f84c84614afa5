"""logger=wandb works offline: the run is recorded locally with the config's group and tags."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate

from rw_mtl.train import run


def test_wandb_offline_run(fast_config, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = fast_config("logger=wandb", "trainer.max_epochs=1", "weighting/loss=rlw")

    init = instantiate(config.logger)._wandb_init
    assert init["group"] == "multi_digits" and "loss=rlw" in init["tags"] and "arch=hps" in init["tags"]

    results = run(config)
    assert results["loss_method"] == "rlw"
    offline_runs = list((Path(config.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    records = list(offline_runs[0].glob("*.wandb"))
    assert records and records[0].stat().st_size > 0


def test_sweeps_group_runs_by_experiment_and_summaries_hold_the_metrics(fast_config, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = fast_config("logger=wandb", "+experiment_name=table4", "trainer.max_epochs=1")
    assert instantiate(config.logger)._wandb_init["group"] == "table4"
    results = run(config)
    records = list((Path(config.paths.output_dir) / "wandb").glob("offline-run-*/*.wandb"))
    assert len(records) == 1
    # offline, the summary lives in the run's protobuf records: its keys and JSON-encoded values are there
    data = records[0].read_bytes()
    accuracy = results["metrics"]["test_at_best_val"]["digit0"]["acc"]
    assert b"test_at_best_val/digit0/acc" in data and json.dumps(accuracy).encode() in data


def test_report_logged_to_wandb_offline(fast_config, monkeypatch, tmp_path):
    from rw_mtl.report.__main__ import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = fast_config("trainer.max_epochs=1")
    run(config)
    out = tmp_path / "table1" / "report"
    assert main([str(config.paths.output_dir), "--out", str(out), "--wandb", "rw_mtl"]) == 0
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))[0].stat().st_size > 0

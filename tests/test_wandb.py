"""logger=wandb works offline: the run is recorded locally with the config's group and tags."""

from __future__ import annotations

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

"""Sweeps through the Hydra launchers: joblib (local parallel) and submitit (its local executor stands in for
SLURM, which runs the same job pickles)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TINY = [
    "dataset.datamodule.train_size=256",
    "dataset.datamodule.val_size=64",
    "dataset.datamodule.test_size=64",
    "dataset.encoder.width=8",
    "trainer.max_epochs=1",
    "logger=none",
]


@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
        ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "hydra.launcher.cpus_per_task=1"],
    ],
)
def test_sweep_through_launcher(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rw_mtl",
            "-m",
            "weighting/loss=ew,rlw",
            *TINY,
            *launcher,
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = {json.loads(p.read_text())["loss_method"] for p in sweep.rglob("results.json")}
    assert found == {"ew", "rlw"}

"""Run directories: unique by default, claimed by exactly one process, never written by a refused one."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from rw_mtl import cli

#: tiny data and one epoch: a whole run in a few seconds
TINY = [
    "dataset.datamodule.train_size=256",
    "dataset.datamodule.val_size=64",
    "dataset.datamodule.test_size=64",
    "dataset.encoder.width=8",
    "trainer.max_epochs=1",
    "print_config=false",
    "~callbacks.progress_bar",
]


def run_cli(argv: list[str], monkeypatch) -> int:
    """``python -m rw_mtl argv`` in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["rw_mtl"])
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    finally:  # Hydra leaves its run's config behind, which the next run would take for its own
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
    return code or 0


class _FrozenClock(dt.datetime):
    """``datetime.now()`` stuck in one second, as for two commands started together."""

    @classmethod
    def now(cls, tz=None):
        return cls(2024, 1, 2, 3, 4, 5)


def test_default_run_dirs_of_one_second_do_not_collide(tmp_path, monkeypatch):
    """The README's `logger=…` commands, started in the same second, once shared one timestamped directory
    and the second was refused as another config's run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("hydra.core.utils.datetime", _FrozenClock)
    assert run_cli([*TINY, "logger=none"], monkeypatch) == 0
    assert run_cli([*TINY, "logger=csv"], monkeypatch) == 0
    seed_dir = tmp_path / "outputs" / "runs" / "multi_digits" / "hps" / "rlw-none" / "seed0"
    runs = sorted(seed_dir.iterdir())
    assert len(runs) == 2 and all(run.name.startswith("2024-01-02_03-04-05_") for run in runs), runs
    loggers = {json.dumps(json.loads((run / "results.json").read_text())["config"]["logger"]) for run in runs}
    assert len(loggers) == 2, loggers  # each run's results in its own directory


def test_every_timestamped_directory_has_the_unique_suffix():
    """Every config that names a directory by the clock (default, debug, searches) adds ``${rw_mtl.uid:}``."""
    from rw_mtl.resources import CONFIG_DIR

    texts = {path: path.read_text() for path in Path(CONFIG_DIR).rglob("*.yaml")}
    stamped = [path for path, text in texts.items() if "${now:" in text]
    assert len(stamped) >= 3
    for path in stamped:
        for line in texts[path].splitlines():
            if "${now:" in line:
                assert "${now:%Y-%m-%d_%H-%M-%S}_${rw_mtl.uid:}" in line, (path, line)

"""Run directories: unique by default, claimed by exactly one process, never written by a refused one."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from rw_mtl import cli
from rw_mtl.run_dir import OtherConfigError, RunClaim
from rw_mtl.run_lock import LockHeld, RunLock

from .conftest import compose_config

#: tiny data and one epoch: a whole run in a few seconds
TINY = [
    "dataset.datamodule.train_size=256",
    "dataset.datamodule.val_size=64",
    "dataset.datamodule.test_size=64",
    "dataset.encoder.width=8",
    "trainer.max_epochs=1",
    "print_config=false",
    "~callbacks.progress_bar",
    "logger=none",
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
    assert run_cli([*TINY], monkeypatch) == 0
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


# --------------------------------------------------------------------------------------------- claiming
def launch(run_dir: Path, *overrides: str) -> subprocess.Popen:
    """``python -m rw_mtl`` on TINY into ``run_dir``, as a separate process."""
    return subprocess.Popen(
        [sys.executable, "-m", "rw_mtl", *TINY, *overrides, f"hydra.run.dir={run_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``directory``: its bytes and modification time."""
    return {
        str(path.relative_to(directory)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_refused_processes_write_nothing_into_a_held_directory(tmp_path):
    """A run in progress (its lock held, its config recorded, Hydra's files there): a second run of the same
    config and one of another config, started together, both exit non-zero naming the holder, and leave
    every file as it was; once the directory is free, the other config is still refused, writing nothing."""
    run_dir = tmp_path / "run"
    config = compose_config(TINY, output_dir=run_dir)
    run_dir.mkdir()
    (run_dir / "run_config.json").write_text(json.dumps(OmegaConf.to_container(config, resolve=True)))
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- the running job's overrides\n")
    (run_dir / "train.log").write_text("the running job's log\n")
    holder = RunLock(run_dir)
    holder.acquire()
    before = snapshot(run_dir)

    same, other = launch(run_dir, "seed=0"), launch(run_dir, "seed=1")
    for code, output in (finish(same), finish(other)):
        assert code != 0, output
        assert f"{run_dir} is in use by another run (pid {os.getpid()} on " in output, output
    assert snapshot(run_dir) == before

    holder.release()
    before = snapshot(run_dir)
    code, output = finish(launch(run_dir, "seed=1"))
    assert code != 0 and f"{run_dir} holds a run of another config (run_config.json)" in output, output
    assert snapshot(run_dir) == before  # no failed.json, no .hydra/ of the refused config


def test_runs_started_together_into_one_directory_train_once(tmp_path):
    """Three runs started at once into one directory — two of one config, one of another: exactly one
    trains; each other exits non-zero saying why, or, of the same config, skips the finished run. The
    directory ends with one run's results.json, matching its run_config.json, and no failed.json."""
    run_dir = tmp_path / "run"
    processes = [launch(run_dir, "seed=0"), launch(run_dir, "seed=0"), launch(run_dir, "seed=1")]
    outcomes = [finish(process) for process in processes]
    trained = [index for index, (code, output) in enumerate(outcomes) if "wrote " in output and code == 0]
    assert len(trained) == 1, outcomes
    winner = trained[0]
    for index, (code, output) in enumerate(outcomes):
        if index == winner:
            continue
        refused = code != 0 and (
            "is in use by another run" in output or "holds a run of another config" in output
        )
        skipped = code == 0 and "skipping:" in output and (index < 2) == (winner < 2)
        assert refused or skipped, output
    results = json.loads((run_dir / "results.json").read_text())
    assert results["config"] == json.loads((run_dir / "run_config.json").read_text())
    assert results["seed"] == (1 if winner == 2 else 0)
    assert not (run_dir / "failed.json").exists() and not (run_dir / ".lock").exists()


def test_run_config_is_created_once_and_complete(tmp_path):
    """Without a lock (a filesystem without flock) two claims can both find the directory empty: the
    first to record its config wins, the other config is refused, the same config goes on."""
    RunClaim(OmegaConf.create(), tmp_path, {"seed": 0}, None).record_config()
    assert json.loads((tmp_path / "run_config.json").read_text()) == {"seed": 0}
    RunClaim(OmegaConf.create(), tmp_path, {"seed": 0}, None).record_config()
    with pytest.raises(
        OtherConfigError, match=rf"{tmp_path} holds a run of another config \(run_config.json\)"
    ):
        RunClaim(OmegaConf.create(), tmp_path, {"seed": 1}, None).record_config()
    assert json.loads((tmp_path / "run_config.json").read_text()) == {"seed": 0}
    assert os.listdir(tmp_path) == ["run_config.json"]  # no temporary file left


def test_unreadable_run_config_is_named(tmp_path):
    (tmp_path / "run_config.json").write_text("{")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'run_config.json'} cannot be read \(.*\); remove it"):
        RunClaim(OmegaConf.create(), tmp_path, {"seed": 0}, None).record_config()
    assert os.listdir(tmp_path) == ["run_config.json"]


def test_lock_is_exclusive_and_released(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    holder = json.loads((tmp_path / ".lock").read_text())
    assert holder["pid"] == os.getpid()
    with pytest.raises(LockHeld, match=rf"{tmp_path} is in use by another run \(pid {os.getpid()} on "):
        second.acquire()
    first.release()
    assert not (tmp_path / ".lock").exists()
    second.acquire()  # free again
    second.release()

"""Checkpoints: last.ckpt is the last epoch, writes are atomic, a full disk or a damaged file never blocks
a run, and a run resumed from whatever checkpoint survives ends exactly like an uninterrupted one."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from rw_mtl import checkpoints
from rw_mtl.checkpoints import (
    AtomicCheckpointIO,
    CheckpointLoadError,
    CheckpointWriteError,
    checkpoint_problem,
)
from rw_mtl.run_dir import resume_checkpoint
from rw_mtl.train import run

from .conftest import FAST, compose_config

#: 10 steps an epoch, 3 epochs: a whole run in a few seconds; at this lr the best validation epoch is
#: epoch 1, so a run resumed from best.ckpt has an epoch to replay
SMALL = [
    *FAST,
    "dataset.datamodule.train_size=640",
    "dataset.optimizer.lr=0.06",  # epoch 1 scores best by a wide margin (12.6 against 2.8 at epoch 2)
    "trainer.max_epochs=3",
    "weighting/loss=rlw",
]


def small_config(directory: Path, *overrides: str):
    return compose_config([*SMALL, *overrides], output_dir=directory)


def saved_epoch(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["epoch"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The results of the SMALL run, trained in one go."""
    return run(small_config(tmp_path_factory.mktemp("uninterrupted") / "run"))


# ------------------------------------------------------------------------------------- last.ckpt (issue 16)
def test_last_checkpoint_is_the_last_epoch_when_the_score_stops_improving(tmp_path):
    """At lr = 0 (and no BatchNorm statistics) every epoch scores the same, so only epoch 0 is 'best';
    Lightning's save_last refreshed last.ckpt only with the best, leaving it at epoch 0."""
    config = small_config(tmp_path / "run", "dataset.optimizer.lr=0", "dataset.encoder.norm=none")
    results = run(config)
    assert results["best_epoch"] == 0 and len(results["val_history"]) == 3
    directory = Path(config.paths.output_dir) / "checkpoints"
    assert saved_epoch(directory / "best.ckpt") == 0
    assert saved_epoch(directory / "last.ckpt") == 2


# --------------------------------------------------------------------------------------- atomic writes
def _no_space_after(fraction: float, matching: str):
    """An ``open`` for rw_mtl.checkpoints whose files named like ``matching`` take ``fraction`` of what
    is written, then fail as a full disk does."""

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data) -> int:
            data = memoryview(data)
            self.handle.write(data[: int(len(data) * fraction)])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fake_open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        return FullDisk(handle) if matching in Path(path).name else handle

    return fake_open


def test_full_disk_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 0, "weights": torch.arange(1000.0)}, path)
    monkeypatch.setattr(checkpoints, "open", _no_space_after(0.5, "last.ckpt"), raising=False)
    with pytest.raises(
        CheckpointWriteError, match=rf"no space left to write checkpoint {path} .*run the same"
    ):
        writer.save_checkpoint({"epoch": 1, "weights": torch.zeros(1000)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # the half-written temporary is gone
    assert checkpoint_problem(path) is None
    assert saved_epoch(path) == 0 and torch.equal(
        writer.load_checkpoint(path)["weights"], torch.arange(1000.0)
    )


def test_other_write_errors_pass_through_unchanged(tmp_path, monkeypatch):
    def read_only(path, mode="r", *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(checkpoints, "open", read_only, raising=False)
    with pytest.raises(PermissionError, match="Permission denied") as caught:
        AtomicCheckpointIO().save_checkpoint({"epoch": 0}, tmp_path / "last.ckpt")
    assert not isinstance(caught.value, CheckpointWriteError)
    assert list(tmp_path.iterdir()) == []


def test_run_stopped_by_a_full_disk_resumes_once_there_is_space(tmp_path, monkeypatch, uninterrupted):
    saves = {"last": 0}
    fake_open = _no_space_after(0.3, "last.ckpt")

    def second_last_fails(path, mode="r", *args, **kwargs):  # epoch 0's last.ckpt is written, epoch 1's not
        if "last.ckpt" in Path(path).name and "w" in mode:
            saves["last"] += 1
            if saves["last"] == 2:
                return fake_open(path, mode, *args, **kwargs)
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "open", second_last_fails, raising=False)
    config = small_config(tmp_path / "run")
    with pytest.raises(CheckpointWriteError, match=r"no space left to write checkpoint .*last\.ckpt"):
        run(config)
    directory = Path(config.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in directory.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert saved_epoch(directory / "last.ckpt") == 0
    assert not (Path(config.paths.output_dir) / "results.json").exists()

    monkeypatch.undo()  # space freed: the same command resumes from epoch 0's checkpoint
    resumed = run(config)
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["val_history"] == uninterrupted["val_history"]


# ---------------------------------------------------------------------------------- damaged checkpoints
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte])
def test_checkpoint_problem_finds_damage(tmp_path, damage):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 3, "weights": torch.arange(5000.0)}, path)
    assert checkpoint_problem(path) is None
    damage(path)
    assert checkpoint_problem(path) is not None
    with pytest.raises(CheckpointLoadError, match=rf"checkpoint {path} cannot be loaded"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_damaged_checkpoint_given_as_resume_is_named(tmp_path):
    path = tmp_path / "mine.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, path)
    _truncate(path)
    with pytest.raises(CheckpointLoadError, match=rf"resume={path} cannot be loaded \(.*\); give another"):
        resume_checkpoint(OmegaConf.create({"resume": str(path)}), tmp_path)
    assert path.is_file()  # the user's own file is left where it is


def _finished_run_with_damaged(tmp_path, names: list[str]):
    """A finished SMALL run whose results.json is gone (as after a crash in testing) and whose named
    checkpoints are truncated."""
    config = small_config(tmp_path / "run")
    run(config)
    output_dir = Path(config.paths.output_dir)
    (output_dir / "results.json").unlink()
    for name in names:
        _truncate(output_dir / "checkpoints" / name)
    return config, output_dir / "checkpoints"


def test_damaged_last_checkpoint_is_set_aside_and_the_best_one_resumed(tmp_path, caplog, uninterrupted):
    config, directory = _finished_run_with_damaged(tmp_path, ["last.ckpt"])
    assert saved_epoch(directory / "best.ckpt") == 1  # the resumed run replays epoch 2
    with caplog.at_level(logging.WARNING, logger="rw_mtl.run_dir"):
        resumed = run(config)
    assert f"checkpoint {directory / 'last.ckpt'} cannot be loaded" in caplog.text
    assert f"resuming from {directory / 'best.ckpt'}, the previous good checkpoint" in caplog.text
    assert (directory / "last.ckpt.corrupt").is_file() and saved_epoch(directory / "last.ckpt") == 2
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["val_history"] == uninterrupted["val_history"]


def test_run_without_a_loadable_checkpoint_restarts_saying_so(tmp_path, caplog, uninterrupted):
    config, directory = _finished_run_with_damaged(tmp_path, ["last.ckpt", "best.ckpt"])
    with caplog.at_level(logging.WARNING, logger="rw_mtl.run_dir"):
        restarted = run(config)
    assert f"no loadable checkpoint left in {directory}: the run restarts from epoch 0" in caplog.text
    assert {p.name for p in directory.iterdir()} >= {"last.ckpt.corrupt", "best.ckpt.corrupt"}
    assert restarted["metrics"] == uninterrupted["metrics"]


@pytest.mark.parametrize(
    ("setting", "measured", "resumed"), [("auto", True, True), ("auto", False, False), ("false", True, False)]
)
def test_resumed_run_keeps_the_jacobian_way_auto_measured(fast_config, setting, measured, resumed):
    """``batched_jacobian=auto`` times both ways at the first step, which on a busy machine can come out
    either way: the checkpoint carries the choice, so a resumed run goes on computing G as it started
    (an explicit setting is kept as set)."""
    from rw_mtl.build import build_module
    from rw_mtl.tasks import ClassificationTask

    tasks = {f"digit{i}": ClassificationTask(num_classes=10) for i in range(3)}
    config = fast_config("weighting/grad=rgw", f"weighting.grad.batched_jacobian={setting}")
    interrupted, restarted = build_module(config, tasks), build_module(config, tasks)
    interrupted.jacobian.batched = measured
    checkpoint: dict = {}
    interrupted.on_save_checkpoint(checkpoint)
    restarted.on_load_checkpoint(checkpoint)
    assert restarted.jacobian.batched is resumed

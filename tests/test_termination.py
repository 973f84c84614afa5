"""SIGTERM (a SLURM time limit, a preemption) stops a run or a sweep with a non-zero exit, leaves the run
resumable, and a paper sweep with missing jobs builds no report without naming them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rw_mtl import build
from rw_mtl.checkpoints import checkpoint_problem
from rw_mtl.sweep import expand, job_directories, main
from rw_mtl.train import run

from .conftest import compose_config

#: 2 steps an epoch; enough epochs that a run is still training when its first checkpoint appears
LONG = [
    "dataset.datamodule.train_size=256",
    "dataset.datamodule.val_size=64",
    "dataset.datamodule.test_size=64",
    "dataset.encoder.width=8",
    "trainer.max_epochs=30",
    "print_config=false",
    "~callbacks.progress_bar",
    "logger=none",
]
STEPS_PER_EPOCH = 2


def launch(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rw_mtl", *argv, *LONG],  # Hydra's flags (-m) before the overrides
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def terminate_once_saved(process: subprocess.Popen, directory: Path) -> tuple[int, str]:
    """Send SIGTERM as soon as a last.ckpt appears below ``directory`` (epoch 0 done); the exit code and
    everything the process printed."""
    deadline = time.monotonic() + 600
    while not list(directory.rglob("last.ckpt")):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def count_training_steps(monkeypatch) -> dict:
    """Count the training steps of the runs built from now on."""
    calls = {"n": 0}
    build_module = build.build_module

    def counting(cfg, tasks, **options):
        module = build_module(cfg, tasks, **options)
        training_step = module.training_step

        def step(*args, **kwargs):
            calls["n"] += 1
            return training_step(*args, **kwargs)

        module.training_step = step
        return module

    monkeypatch.setattr(build, "build_module", counting)
    return calls


def test_terminated_run_exits_143_and_resumes_where_it_stopped(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    code, output = terminate_once_saved(launch(f"hydra.run.dir={run_dir}"), run_dir)
    assert code == 128 + signal.SIGTERM == 143, output
    assert "terminated by signal 15: exiting with 143; run the same command again" in output
    last = run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint_problem(last) is None
    stopped_after = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    assert stopped_after < 29
    assert not (run_dir / "results.json").exists() and not (run_dir / "failed.json").exists()
    assert not (run_dir / ".lock").exists()

    calls = count_training_steps(monkeypatch)
    results = run(compose_config(LONG, output_dir=run_dir))  # the same config: resume=auto continues
    assert calls["n"] == (29 - stopped_after) * STEPS_PER_EPOCH
    assert len(results["val_history"]) == 30 and results["epochs"] == 30


def test_terminated_sweep_exits_non_zero_and_starts_no_further_job(tmp_path):
    sweep_dir = tmp_path / "sweep"
    process = launch("-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}")
    code, output = terminate_once_saved(process, sweep_dir)
    assert code == 143, output
    seeds = sorted(path.name for path in sweep_dir.rglob("seed*") if path.is_dir())
    assert seeds == ["seed0"], seeds  # the sweep stopped at job 0
    assert not list(sweep_dir.rglob("results.json"))


def test_a_handler_outside_the_main_thread_is_not_installed():
    """``run`` from a worker thread keeps the process's SIGTERM handler (Python allows handlers only in
    the main thread)."""
    import threading

    from rw_mtl.termination import stop_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def worker():
        with stop_on_sigterm("somewhere"):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before] and signal.getsignal(signal.SIGTERM) == before


# --------------------------------------------------------------------------------------- partial sweeps
def test_check_lists_the_jobs_without_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    jobs = expand("table5", ["seed=0"])
    directories = job_directories(jobs)
    assert len(set(directories)) == len(jobs) == 16
    for directory in directories:
        directory.mkdir(parents=True)
        (directory / "results.json").write_text("{}")
    (directories[3] / "results.json").unlink()
    (directories[5] / "results.json").unlink()
    (directories[5] / "failed.json").write_text(json.dumps({"error": "RuntimeError: boom\nmore"}))
    (directories[7] / "results.json").write_text("{")

    assert main(["table5", "--check", "seed=0"]) == 1
    printed = capsys.readouterr().out
    assert f"#3: python -m rw_mtl {' '.join(jobs[3])}\n    {directories[3]}: no results" in printed
    assert f"{directories[5]}: failed: RuntimeError: boom\n" in printed
    assert f"{directories[7]}: unreadable results.json (JSONDecodeError" in printed
    assert "3 of 16 jobs of table5 have no results" in printed
    assert printed.count("\n#") + printed.startswith("#") == 3

    for number in (3, 5, 7):
        (directories[number] / "results.json").write_text("{}")
    assert main(["table5", "--check", "seed=0"]) == 0
    assert "all 16 jobs of table5 have their results" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="make")
def test_make_table_builds_no_report_from_a_sweep_with_failed_jobs(tmp_path):
    """`make table5` on a machine without NYUv2: both jobs fail at their data; the target lists them,
    in the directories the real sweep used, and exits non-zero without building a report."""
    venv = Path(sys.executable).parent.parent
    args = f"seed=0 arch=hps weighting/grad=none paths.data_dir={tmp_path / 'nowhere'} print_config=false"
    completed = subprocess.run(
        [
            "make",
            "-s",
            "-f",
            str(Path(__file__).parents[1] / "Makefile"),
            f"VENV={venv}",
            "-o",
            f"{venv}/.installed",
            "table5",
            f"ARGS={args}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert "failed: DatasetError" in output and "2 of 2 jobs of table5 have no results" in output, output
    assert len(list((tmp_path / "outputs" / "table5").rglob("failed.json"))) == 2
    assert not list(tmp_path.rglob("report.md"))

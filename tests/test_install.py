"""`pip install .` (not editable) gives a working tool: a wheel installed into a fresh virtual environment
runs training, the report (with the paper's numbers, shipped inside the package) and --help from a
directory outside the repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .test_report import fake_run

REPOSITORY = Path(__file__).resolve().parents[1]
# top-level folders that are not sources (rw_mtl/data is: only the repository root's data/ is skipped)
NOT_SOURCES_AT_ROOT = {".git", ".venv", "outputs", "multirun", "build", "data", "wandb"}
NOT_SOURCES_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")


def _not_sources(folder: str, names: list[str]) -> set[str]:
    ignored = set(NOT_SOURCES_ANYWHERE(folder, names))
    if Path(folder) == REPOSITORY:
        ignored |= NOT_SOURCES_AT_ROOT.intersection(names)
    return ignored


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the rw_mtl wheel; its dependencies (torch from this machine's disk, as
    the Makefile installs it) come from the test's own environment through a .pth line, so that the test
    needs no network and no second torch install."""
    root = tmp_path_factory.mktemp("install")
    # a copy of the sources, so that setuptools' build/ folder never lands in the checkout
    source = root / "source"
    shutil.copytree(REPOSITORY, source, ignore=_not_sources)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(root / "dist")],
        check=True,
        capture_output=True,
    )
    (wheel,) = (root / "dist").glob("rw_mtl-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # without PYTHONPATH: a checkout on it (its rw_mtl.egg-info) would make pip skip the wheel as installed
    clean = {**os.environ, "PYTHONPATH": ""}
    install = [python, "-m", "pip", "install", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=clean)
    return root / "venv" / "bin"


def _run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": ""}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    where = _run([installed / "python", "-c", "import rw_mtl; print(rw_mtl.__file__)"], tmp_path).stdout
    assert where.strip().startswith(str(installed.parent)), where


def test_help_lists_the_config_groups_outside_the_repository(installed, tmp_path):
    text = _run([installed / "rw-mtl", "--help"], tmp_path).stdout
    assert re.search(r"^  weighting/loss +loss weights", text, re.M)
    assert re.search(r"^    rlw +\* Random Loss Weighting", text, re.M)  # the option files ship in the wheel
    assert re.search(r"^    multi_digits +\* Embedded default", text, re.M)


def test_training_writes_results_into_the_callers_directory(installed, tmp_path):
    _run(
        [
            installed / "rw-mtl",
            "trainer.max_epochs=1",
            "dataset.datamodule.train_size=512",
            "dataset.datamodule.val_size=64",
            "dataset.datamodule.test_size=64",
            "logger=none",
        ],
        tmp_path,
    )
    (results,) = (tmp_path / "outputs").rglob("results.json")
    payload = json.loads(results.read_text())
    assert payload["epochs"] == 1 and payload["dataset"] == "multi_digits"
    assert set(payload["metrics"]["test"]) == {"digit0", "digit1", "digit2"}


def test_report_shows_the_papers_numbers_from_the_installed_package(installed, tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "ew", "none", 0, 50.0, 0.40)
    fake_run(runs, "rlw", "none", 0, 55.0, 0.36)
    text = _run([installed / "python", "-m", "rw_mtl.report", str(runs)], tmp_path).stdout
    # the paper's Table 1 in our layout below ours: RLW's mIoU 54.11, Abs Err 0.3809 and Δp +1.04%
    assert "### nyuv2 — the paper's Table 1 (its printed numbers, this layout)" in text
    assert r"|  | RLW | paper | 54.11 | 0.3809 | +1.04%\* | reference |" in text

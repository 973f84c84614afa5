"""Shared fixtures: composing the real Hydra configs with small, fast overrides."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rw_mtl.resources import CONFIG_DIR

os.environ.setdefault("WANDB_MODE", "disabled")
# One process alone gets the 2 cores of the test machines; `make test`'s workers (pytest-xdist, one per core)
# and `make mutate`'s (forked, one per core) get 1 thread each, so that they do not oversubscribe the cores
ONE_WORKER_PER_CORE = "PYTEST_XDIST_WORKER" in os.environ
torch.set_num_threads(int(os.environ.get("RW_MTL_TORCH_THREADS", "1" if ONE_WORKER_PER_CORE else "2")))

# Trainer settings for fast, deterministic CPU runs on any dataset.
FAST_TRAINER = [
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "trainer.deterministic=true",
    "logger=none",
]

# A multi_digits problem small enough for a training run in a few seconds on 2 CPU cores.
FAST = [
    "dataset.datamodule.train_size=3000",
    "dataset.datamodule.val_size=128",
    "dataset.datamodule.test_size=128",
    "dataset.datamodule.batch_size=64",
    "dataset.encoder.width=16",
    "dataset.encoder.feature_dim=64",
    "dataset.head.hidden=32",
    "dataset.optimizer.lr=3e-3",
    *FAST_TRAINER,
]


# test files whose collection alone is slow: not imported unless slow tests are selected (pytest -m slow)
SLOW_ONLY_FILES = {"test_protocol_methods.py"}


# `make mutate`: the address space one mutant's test session may add to what the forked worker already maps
MUTANT_MEMORY_HEADROOM = 4 * 2**30


def pytest_configure(config):
    """Under ``make mutate``, cap each mutant's worker at the address space it already maps plus
    ``MUTANT_MEMORY_HEADROOM``. A mutant that breaks a shape so that broadcasting builds a huge tensor (four
    ``squeeze(-1)`` → ``squeeze(±1/-2)`` mutants in ``dual_cone.nonnegative_qp``) then fails its test with an
    allocation error at once; without the cap each grew to 23 GiB over 50-99 s until the kernel's OOM killer
    stopped it, and that killer may pick any process on the machine."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    import resource

    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    limit = mapped + MUTANT_MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def pytest_ignore_collect(collection_path, config):
    """Skip collecting a slow-only file under the default ``-m 'not slow'`` (a file named on the command
    line is always collected)."""
    if collection_path.name in SLOW_ONLY_FILES and "not slow" in (config.getoption("markexpr") or ""):
        return True
    return None


def fit_quietly(module, datamodule, max_steps: int = 1, **trainer_options) -> None:
    """``max_steps`` real optimizer steps of ``module`` through a Lightning Trainer (no validation, no files,
    no console output); ``trainer_options``: more Trainer arguments (precision, callbacks)."""
    import lightning as L

    trainer = L.Trainer(
        max_steps=max_steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        **trainer_options,
    )
    trainer.fit(module, datamodule=datamodule)


@contextmanager
def modules_built() -> Iterator[tuple[list[str], weakref.WeakSet]]:
    """Records the ``MTLModule``s built inside: their class names, and a weak set of those still alive. The
    cyclic garbage collector is off inside, so a module the code under test does not free explicitly stays
    alive (its trainer and optimizer hold it in reference cycles)."""
    from rw_mtl.module import MTLModule

    names, alive = [], weakref.WeakSet()
    initialise = MTLModule.__init__

    def recording_init(self, *args, **kwargs):
        initialise(self, *args, **kwargs)
        names.append(type(self).__name__)
        alive.add(self)

    gc.collect()
    gc.disable()
    MTLModule.__init__ = recording_init
    try:
        yield names, alive
    finally:
        MTLModule.__init__ = initialise
        gc.enable()


def fit_one_step(module, datamodule) -> None:
    """One real optimizer step of ``module`` (``fit_quietly``)."""
    fit_quietly(module, datamodule)


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """The app's config with ``overrides``, as `python -m rw_mtl` would compose it."""
    extra = [f"paths.output_dir={output_dir}"] if output_dir is not None else []
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, *extra])


@pytest.fixture
def fast_config(tmp_path):
    """Factory: a FAST config for ``overrides`` writing into ``tmp_path/<run>``."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        return compose_config([*FAST, *overrides], output_dir=tmp_path / run)

    return make


def conf_options(group: str) -> list[str]:
    """The option names of a config group (the YAML files in rw_mtl/conf/<group>/)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))

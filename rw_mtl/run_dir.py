"""A run's directory: claiming it for one config, skipping finished runs, finding the checkpoint to resume."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rw_mtl.results import RESULTS_FILE, read_results, write_text_atomic
from rw_mtl.run_lock import LockHeld, RunLock

RUN_CONFIG_FILE = "run_config.json"
FAILED_FILE = "failed.json"
HYDRA_SUBDIR = ".hydra"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.ckpt", "best.ckpt"
#: where ``resume=auto`` looks, in order: the last epoch's checkpoint, then the best epoch's
RESUME_ORDER = (LAST_CHECKPOINT, BEST_CHECKPOINT)
#: appended to a checkpoint that cannot be loaded when it is moved aside
CORRUPT_SUFFIX = ".corrupt"

log = logging.getLogger(__name__)


class RunDirRefused(Exception):
    """This process may not run in the directory; it wrote nothing there (and leaves no failed.json)."""


class RunDirBusy(RunDirRefused, RuntimeError):
    """Another live process is running in the directory now."""


class OtherConfigError(RunDirRefused, ValueError):
    """The directory holds another config's run."""


class RunClaim:
    """A run directory held by this process (``claim_output_dir``): ``finished`` is the results.json of
    this exact config when the run is already done; ``record_config`` writes run_config.json."""

    def __init__(self, cfg: DictConfig, output_dir: Path, resolved: dict, finished: dict | None):
        self.cfg, self.output_dir, self.resolved, self.finished = cfg, output_dir, resolved, finished

    def record_config(self) -> None:
        """Create run_config.json, exclusively and complete: written to a temporary file and hard-linked
        into place, which fails when the file exists. So of two processes that both found the directory
        empty (where no lock could be taken) exactly one records its config; the other is refused here."""
        path = self.output_dir / RUN_CONFIG_FILE
        fd, temporary = tempfile.mkstemp(prefix=f".{RUN_CONFIG_FILE}.", suffix=".tmp", dir=self.output_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(self.resolved, indent=2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, path)
        except FileExistsError:
            try:
                existing = read_results(path)
            except ValueError as err:  # not written by this version, which creates it complete
                raise ValueError(
                    f"{path} cannot be read ({err}); remove it or choose another directory"
                ) from err
            _check_same_config(self.output_dir, path, existing, self.resolved)
        finally:
            os.unlink(temporary)

    def write_hydra_files(self) -> None:
        """What Hydra itself would write into ``.hydra/`` (config, hydra config, overrides), written only
        now that the directory is this run's: rw_mtl/conf/config.yaml sets ``hydra.output_subdir: null``,
        because Hydra writes there before any code of ours runs, also into a directory it is refused."""
        if not HydraConfig.initialized():
            return
        hydra = HydraConfig.get()
        folder = self.output_dir / HYDRA_SUBDIR
        files = {
            "config.yaml": self.cfg,
            "hydra.yaml": OmegaConf.create({"hydra": OmegaConf.to_container(hydra)}),
            "overrides.yaml": OmegaConf.create(OmegaConf.to_container(hydra.overrides.task)),
        }
        for name, node in files.items():
            write_text_atomic(folder / name, OmegaConf.to_yaml(node))


@contextmanager
def claim_output_dir(cfg: DictConfig, output_dir: Path, lock: bool = True) -> Iterator[RunClaim]:
    """Hold ``output_dir`` for this run, for the duration of the ``with`` block.

    First the directory's lock (rw_mtl.run_lock; ``lock=False`` for the extra ranks of a data-parallel
    run, whose rank 0 holds it): a directory in use by another live process is refused (``RunDirBusy``)
    — two runs of one config at once, or two configs started into one directory — and the refused process
    exits without writing anything there. Then, under the lock: a directory holding another config's run
    (run_config.json or results.json of another resolved config) is refused (``OtherConfigError``), so
    nothing written there is lost; results.json of this exact config is returned as ``finished``, so a
    re-launched sweep skips finished jobs. On leaving, the lock is released, and a directory this claim
    created is removed again if nothing was written into it (a run that stopped before finding its data).
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    run_lock = RunLock(output_dir)
    try:
        if lock:
            try:
                run_lock.acquire()
            except LockHeld as held:
                raise RunDirBusy(
                    f"{held}: this process exits without writing there. Wait for that run and launch again "
                    "(a finished run of this config is skipped, an interrupted one resumed), or choose "
                    "another directory (hydra.run.dir=… / hydra.sweep.dir=…)"
                ) from None
        yield RunClaim(cfg, output_dir, resolved, _finished_results(output_dir, resolved))
    finally:
        run_lock.release()
        if created:
            with suppress(OSError):  # not empty: the run wrote something, which stays
                output_dir.rmdir()


def _finished_results(output_dir: Path, resolved: dict) -> dict | None:
    """results.json of this config if the run is finished; refuses another config's directory."""
    results = output_dir / RESULTS_FILE
    finished = None
    for path in (output_dir / RUN_CONFIG_FILE, results):
        if not path.is_file():
            continue
        try:
            existing = read_results(path)
        except (OSError, ValueError):
            if path == results:
                raise
            continue
        _check_same_config(output_dir, path, existing, resolved)
        if path == results:
            finished = existing
    return finished


def _check_same_config(output_dir: Path, path: Path, existing: dict, resolved: dict) -> None:
    config = existing.get("config", existing) if path.name == RESULTS_FILE else existing
    if config != resolved:
        raise OtherConfigError(
            f"{output_dir} holds a run of another config ({path.name}); choose another directory "
            "(hydra.run.dir=… / paths.output_dir=…) or remove it"
        )


def resume_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """The checkpoint ``trainer.fit`` resumes from.

    ``resume: auto`` takes the run dir's last.ckpt, checked first (rw_mtl.checkpoints.checkpoint_problem):
    one that cannot be loaded is renamed ``<name>.corrupt`` (kept for inspection, never loaded again) and
    the run falls back to best.ckpt, a full checkpoint of an earlier epoch from which the run replays the
    same epochs, or else restarts from epoch 0; each step is logged, naming the file. A checkpoint given
    as ``resume=<path>`` that cannot be loaded is an error: the user chose it.
    """
    from rw_mtl.checkpoints import CheckpointLoadError, checkpoint_problem

    resume = cfg.get("resume")
    if resume is None:
        return None
    if resume == "auto":
        return _auto_resume(output_dir / CHECKPOINT_DIR)
    if not Path(resume).is_file():
        raise FileNotFoundError(f"resume={resume}: no such checkpoint; use resume=auto or resume=null")
    problem = checkpoint_problem(resume)
    if problem is not None:
        raise CheckpointLoadError(
            f"resume={resume} cannot be loaded ({problem}); give another checkpoint or resume=null"
        )
    return str(resume)


def _auto_resume(directory: Path) -> str | None:
    """The first loadable of last.ckpt and best.ckpt in ``directory``, setting aside those that are not."""
    from rw_mtl.checkpoints import checkpoint_problem

    set_aside = []
    for name in RESUME_ORDER:
        path = directory / name
        if not path.is_file():
            continue
        problem = checkpoint_problem(path)
        if problem is None:
            if set_aside:
                log.warning("resuming from %s, the previous good checkpoint", path)
            return str(path)
        aside = path.with_name(path.name + CORRUPT_SUFFIX)
        os.replace(path, aside)
        log.warning("checkpoint %s cannot be loaded (%s); moved aside to %s", path, problem, aside.name)
        set_aside.append(path)
    if set_aside:
        log.warning("no loadable checkpoint left in %s: the run restarts from epoch 0", directory)
    return None

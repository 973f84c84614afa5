"""A run's checkpoints: ``best.ckpt`` and ``last.ckpt``, written atomically, checked before a resume.

* ``RunCheckpoint`` saves ``best.ckpt`` when the validation score improves and ``last.ckpt`` at the end of
  every epoch. Lightning's ``ModelCheckpoint(save_last=True)`` with a monitored score refreshes
  ``last.ckpt`` only in the epochs that also save a best checkpoint, so a run whose score stopped improving
  would resume from its best epoch, not its last (issue 16). Both are saved at the end of the training
  epoch, after the module's own epoch-end hook has run (the loss methods' ``epoch_end``, the learning-rate
  scheduler's step), so a checkpoint holds the whole state of a finished epoch. Lightning does so by
  default only while validation runs every epoch (``check_val_every_n_epoch=1``), so it is set explicitly.
* ``AtomicCheckpointIO`` writes each checkpoint to a temporary file in the checkpoint's own directory,
  fsyncs it and renames it over the old one (``os.replace``, atomic on POSIX and Windows). Lightning's own
  writer stages the file in the system's temporary directory, which makes the final move a plain copy when
  outputs/ is on another filesystem, so a kill or a full disk during the copy left a truncated
  ``last.ckpt`` that blocked the run's resume for good. A full disk now fails with one error that names
  the file and leaves the previous checkpoint as it was.
* ``checkpoint_problem`` tells whether a file can be loaded (the zip's CRCs and the pickle); the run
  directory's resume logic (rw_mtl.run_dir) moves an unloadable one aside and falls back to the next.
"""

from __future__ import annotations

import errno
import io
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from rw_mtl.results import replace_atomically
from rw_mtl.run_dir import BEST_CHECKPOINT
from rw_mtl.scores import VALIDATION_SCORE

#: errors of a write that found no room: a full disk, an exhausted quota
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous file of that name is intact."""


class CheckpointLoadError(RuntimeError):
    """A checkpoint file cannot be loaded (truncated, corrupt, or not a checkpoint)."""


class RunCheckpoint(ModelCheckpoint):
    """``best.ckpt`` by ``val/score`` (rw_mtl.scores.VALIDATION_SCORE, higher is better) and ``last.ckpt``
    after every epoch, both at the end of the training epoch (see the module docstring)."""

    def __init__(self, dirpath: str | Path):
        super().__init__(
            dirpath=dirpath,
            filename=Path(BEST_CHECKPOINT).stem,
            monitor=VALIDATION_SCORE,
            mode="max",
            save_last=True,
            save_on_train_epoch_end=True,
        )
        self._last_saved_at_step = -1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)  # best.ckpt (and last.ckpt with it) if improved
        if trainer.fast_dev_run or trainer.sanity_checking or self._last_saved_at_step == trainer.global_step:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_saved_at_step = trainer.global_step


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint I/O with an atomic, same-directory write and errors that name the file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()  # serialized first, as Lightning does: a pickling error touches no file
        torch.save(checkpoint, buffer)
        path = Path(path)
        try:
            with replace_atomically(path) as temporary, open(temporary, "wb") as handle:
                handle.write(buffer.getbuffer())
        except OSError as err:
            if err.errno in NO_SPACE:
                raise CheckpointWriteError(
                    err.errno,
                    f"no space left to write checkpoint {path} ({err.strerror}); the checkpoints already "
                    "there are intact: free space and run the same command again (resume=auto continues)",
                ) from err
            raise

    def load_checkpoint(self, path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Load ``path``, checked first (``checkpoint_problem``: torch.load itself reads damaged tensor bytes
        without noticing); a file that cannot be loaded is named in the error."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path}: no such file")
        problem = checkpoint_problem(path)
        if problem is None:
            try:
                return super().load_checkpoint(path, *args, **kwargs)
            except Exception as err:
                problem = f"{type(err).__name__}: {err}"
        raise CheckpointLoadError(f"checkpoint {path} cannot be loaded: {problem}")


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a loadable checkpoint (a truncated or corrupted zip, an unreadable pickle), or
    None. Reads the file once to check every member's CRC, then unpickles it without loading its tensors
    (``mmap``), so the check costs one read and little memory."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged is not None:
            return f"member {damaged} fails its CRC check"
        torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # zipfile, pickle and torch errors alike: any of them means "cannot resume"
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None

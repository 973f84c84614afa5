"""An exclusive, non-blocking lock on a run directory, held by one process for as long as it runs there.

The lock is ``flock`` on ``<run dir>/.lock``: the kernel drops it when its process ends however it ends
(SIGKILL, out of memory, a crash), so a killed run never leaves a stale lock behind and a relaunch can
resume at once. The file records who holds it (pid, host, start time) for the message of a refused
process, and is removed by its holder on release. A process that opened the file just before the holder
removed it would lock an orphaned file, so a lock counts only when the locked file is still the one at
the path (same inode); otherwise the attempt is repeated on the new file.

Where the filesystem has no ``flock`` (Windows; Lustre mounted without ``-o flock``) the directory is
used unlocked, with a warning: two different configs are still kept apart by the exclusive creation of
run_config.json (rw_mtl.run_dir), only two runs of one config at once go undetected there.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".lock"

log = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another live process holds the lock; ``holder`` is what it recorded (pid, host, started)."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
        super().__init__(f"{path.parent} is in use by another run ({who})")


class RunLock:
    """``acquire()`` or raise ``LockHeld``; ``release()`` removes the file and drops the lock."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            log.warning("no flock on this platform: %s is used without a lock", self.path.parent)
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LockHeld(self.path, _read_holder(self.path)) from None
                log.warning("cannot lock %s (%s): the run directory is used without a lock", self.path, err)
                return
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the previous holder removed the file between our open and our lock: try again
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked, so nobody locks the file being removed
        os.close(self._fd)  # closing drops the lock
        self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # the holder is between creating the file and writing to it
        return {}

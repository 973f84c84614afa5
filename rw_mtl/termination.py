"""SIGTERM (a SLURM time limit, a preemption, ``kill``): the run stops, says so, and exits non-zero.

Without this, Lightning turned SIGTERM into its ``SIGTERMException``, a ``SystemExit`` without a code, so
a terminated run exited 0 with no results and a terminated Hydra sweep stopped silently, reporting success.
Now the run exits with 128 + the signal's number (143 for SIGTERM, what a shell reports for a process
the signal killed), and ``Terminated`` being a ``SystemExit`` passes through Hydra's job handling, so a
sweep stops at that job and exits with the same code instead of launching the next.

Inside ``trainer.fit``/``test`` Lightning's own handler runs first and stops the loop at the end of the
current step (``stop_at_a_step``); elsewhere (building the data, writing results) the signal stops the
run at once. Nothing is lost either way: the checkpoint of the last finished epoch (rw_mtl.checkpoints,
written atomically) is where ``resume=auto`` continues when the same command runs again, and the
unfinished epoch is trained again from its start, so the resumed run ends exactly like an uninterrupted one.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Terminated(SystemExit):
    """The run was stopped by ``signum``; exits with 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


class TerminationGuard:
    """Records a SIGTERM; raises ``Terminated`` at once unless Lightning is running its loop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._in_lightning = False

    def handle(self, signum: int, frame) -> None:
        self.signum = signum
        if not self._in_lightning:
            raise Terminated(signum)

    @contextmanager
    def stop_at_a_step(self) -> Iterator[None]:
        """Around ``trainer.fit``/``test``: Lightning stops at the end of the current step (its
        ``SIGTERMException``), which becomes ``Terminated``; a signal that came after Lightning's last look
        at it (while the final checkpoint was written) stops the run right after the loop."""
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        self._in_lightning = True
        try:
            yield
        except SIGTERMException as stop:
            raise Terminated(self.signum or signal.SIGTERM) from stop
        finally:
            self._in_lightning = False
        if self.signum is not None:
            raise Terminated(self.signum)


@contextmanager
def stop_on_sigterm(where: str) -> Iterator[TerminationGuard]:
    """Install the guard's SIGTERM handler for the ``with`` block (in the main thread: Python runs signal
    handlers only there) and restore the previous one after; ``where`` (the run directory) is named in the
    message of a terminated run."""
    guard = TerminationGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = signal.signal(signal.SIGTERM, guard.handle)
    try:
        yield guard
    except Terminated as stop:
        log.error(
            "terminated by signal %d: exiting with %d; run the same command again to continue %s from its "
            "last finished epoch (resume=auto)",
            stop.signum,
            stop.code,
            where,
        )
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)

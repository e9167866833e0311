"""How a pytest process of a run ends: SIGTERM as Ctrl-C, and an xdist worker with its
controller."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

# How a controller interrupts its xdist workers (``xdist_scheduling``): not SIGTERM, which a
# worker may already have from the same kill (a process group's), and whose second delivery
# ends a process at once, before its cleanup ends what it started on the hosts.
WORKER_INTERRUPT = signal.SIGUSR1


def handle_sigterm(worker: bool = False) -> None:
    """SIGTERM (how CI cancels a job) ends the run like Ctrl-C: the running test is reported
    as interrupted, reports are written, cleanup runs, then pytest exits.

    An xdist ``worker`` is interrupted once, by whichever comes first: SIGTERM, Ctrl-C (sent
    to the whole process group) or its controller's ``WORKER_INTERRUPT``. Ctrl-C and the
    controller's interrupt after that are ignored, so the cleanup runs to its end (the
    controller decides when to stop waiting); a second SIGTERM still ends it at once.
    """
    interrupted: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        if interrupted:  # a worker: the same interrupt, from another sender
            return
        if worker:
            interrupted.append(signum)
        name = signal.Signals(signum).name
        raise KeyboardInterrupt(f"signal {signum} ({name})")

    # not the main thread (an embedding runner): leave it alone
    with contextlib.suppress(ValueError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, interrupt)
        if worker:
            signal.signal(WORKER_INTERRUPT, interrupt)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, interrupt)


def die_with_controller() -> None:
    """An xdist worker ends when its controller dies (no orphans holding hosts or pods)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the controller is already gone
        os.kill(os.getpid(), signal.SIGTERM)

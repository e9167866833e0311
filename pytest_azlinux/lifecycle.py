"""How a pytest process of a run ends: SIGTERM as Ctrl-C, and an xdist worker with its
controller."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any


def handle_sigterm() -> None:
    """SIGTERM (how CI cancels a job) ends the run like Ctrl-C: the running test is reported
    as interrupted, reports are written, cleanup runs, then pytest exits."""

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        # not the main thread (an embedding runner): leave it alone
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, interrupt)


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

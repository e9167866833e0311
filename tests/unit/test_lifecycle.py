"""How a worker process takes interrupts (lifecycle.handle_sigterm): real signals sent to a
real child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent('''
    import os, signal, sys, time
    from pytest_azlinux.lifecycle import WORKER_INTERRUPT, handle_sigterm
    handle_sigterm(worker=True)
    try:
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        time.sleep(5)
        print("not interrupted", flush=True)
    except KeyboardInterrupt as exc:
        print("interrupted:", exc, flush=True)
        for name in sys.argv[2:]:  # the same interrupt from other senders, during cleanup
            os.kill(os.getpid(), getattr(signal, name))
            time.sleep(0.2)
        print("cleanup done", flush=True)
''')


def _child(*signals: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, *signals], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("first", ["SIGTERM", "SIGINT", "SIGUSR1"])
def test_a_worker_is_interrupted_once_and_finishes_its_cleanup(first: str) -> None:
    done = _child(first, "SIGUSR1", "SIGINT", "SIGUSR1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"interrupted: signal {getattr(signal, first).value} "
                                        f"({first})", "cleanup done"], done.stdout


def test_a_second_sigterm_ends_a_worker_at_once() -> None:
    done = _child("SIGTERM", "SIGTERM")
    assert done.returncode == -signal.SIGTERM, done.stdout
    assert "cleanup done" not in done.stdout

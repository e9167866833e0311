"""Commands on this machine, through subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from ..errors import CommandTimeout
from .protocol import CommandResult


class LocalTransport:
    """Runs each script in its own process group so a timeout kills all of it."""

    def __init__(self, name: str = "localhost", sudo_password: str | None = None) -> None:
        self.name = name
        self.description = "local"
        self._sudo_password = sudo_password

    def connect(self) -> None:
        return None

    def run(
        self, script: str, *, timeout: float, stdin: bytes | None = None, sudo: bool = False
    ) -> CommandResult:
        argv = ["sh", "-c", script]
        if sudo and os.geteuid() != 0:
            argv = ["sudo", "-n", "--", *argv]
        start = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise CommandTimeout(self.name, script, timeout) from None
        return CommandResult(script, proc.returncode, out, err, time.monotonic() - start)

    def close(self) -> None:
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue

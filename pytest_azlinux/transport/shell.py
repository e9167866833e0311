"""A persistent remote ``sh`` that runs one command after another.

Opening an SSH channel (or an exec stream) per command costs tens of milliseconds; a shell
kept open answers in about a millisecond. Each command is framed by a random token:

    $azl_setsid sh -c '<script>' </dev/null & azl_p=$!     # own session: killable as a group
    printf '<T> S %d\\n' "$azl_p"                           # its pid, for a timeout kill
    wait "$azl_p"; printf '<T> E %d\\n' $?; printf '<T> E\\n' >&2

Standard input travels base64-encoded in a here-document piped into the command. Output is
read from both streams at once, so neither can fill up and block the other.
"""

from __future__ import annotations

import base64
import re
import secrets
import selectors
import shlex
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import CommandTimeout, ConnectionLost
from .protocol import CommandResult

KILL_GRACE = 5.0
_SETUP = "if command -v setsid >/dev/null 2>&1; then azl_setsid=setsid; else azl_setsid=; fi\n"


class Stream(Protocol):
    """A bidirectional byte stream with separate stdout and stderr (an SSH channel...)."""

    def send(self, data: bytes) -> None: ...

    def fileno(self) -> int: ...

    def read_available(self) -> tuple[bytes, bytes, bool]:
        """Return (stdout, stderr, eof) without blocking."""
        ...

    def close(self) -> None: ...


Killer = Callable[[int], None]


class ShellSession:
    """Runs framed commands through one long-lived shell on ``stream``."""

    def __init__(self, stream: Stream, host: str, killer: Killer) -> None:
        self._stream = stream
        self._host = host
        self._killer = killer
        self.broken = False
        # False until the remote shell reported the command's pid. A connection that drops
        # before that (typically one the server closed while idle) is taken as not having
        # started the command, which is then sent once more on a new connection.
        self.run_started = False
        self._setup = _SETUP  # sent with the first command

    def close(self) -> None:
        self.broken = True
        self._stream.close()

    def run(self, script: str, *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        token = "AZL" + secrets.token_hex(12)
        start = time.monotonic()
        self.run_started = False
        try:
            self._stream.send((self._setup + _frame(script, token, stdin)).encode())
            self._setup = ""
        except (OSError, EOFError) as exc:
            self.broken = True
            raise ConnectionLost(f"{self._host}: connection lost sending a command: {exc}") from exc
        out, err, rc = self._collect(token, script, start + timeout, timeout)
        return CommandResult(script, rc, out, err, time.monotonic() - start)

    def _collect(
        self, token: str, script: str, deadline: float, timeout: float
    ) -> tuple[bytes, bytes, int]:
        tok = token.encode()
        start_re = re.compile(re.escape(tok) + rb" S (\d+)\n")
        end_out = re.compile(re.escape(tok) + rb" E (\d+)\n\Z")
        end_err = tok + b" E\n"
        out, err = bytearray(), bytearray()
        pid: int | None = None
        rc: int | None = None
        err_done = False
        timed_out = False
        sel = selectors.DefaultSelector()
        sel.register(self._stream.fileno(), selectors.EVENT_READ)
        try:
            while rc is None or not err_done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if timed_out:  # the kill did not bring the markers back: give up on it
                        self.close()
                        raise CommandTimeout(self._host, script, timeout)
                    timed_out = True
                    if pid is not None:
                        self._killer(pid)
                    deadline = time.monotonic() + KILL_GRACE
                    continue
                sel.select(min(remaining, 1.0))
                chunk_out, chunk_err, eof = self._stream.read_available()
                if chunk_out:
                    scan_from = max(0, len(out) - len(tok) - 32)
                    out += chunk_out
                    if pid is None:
                        m = start_re.search(out, scan_from)
                        if m:
                            pid = int(m.group(1))
                            self.run_started = True
                            del out[m.start() : m.end()]
                    m = end_out.search(out, max(0, len(out) - len(tok) - 16))
                    if m:
                        rc = int(m.group(1))
                        del out[m.start() :]
                if chunk_err:
                    err += chunk_err
                    if err.endswith(end_err):
                        del err[-len(end_err) :]
                        err_done = True
                if eof and (rc is None or not err_done):
                    self.broken = True
                    raise ConnectionLost(f"{self._host}: connection closed while running: {script}")
        finally:
            sel.close()
        if timed_out:
            raise CommandTimeout(self._host, script, timeout)
        return bytes(out), bytes(err), rc


def _frame(script: str, token: str, stdin: bytes | None) -> str:
    command = f"$azl_setsid sh -c {shlex.quote(script)}"
    if stdin is None:
        launch = f"{command} </dev/null & azl_p=$!\n"
    else:
        encoded = base64.encodebytes(stdin).decode()
        launch = f"base64 -d <<'{token}IN' | {command} & azl_p=$!\n{encoded}{token}IN\n"
    return (
        launch
        + f"printf '{token} S %d\\n' \"$azl_p\"\n"
        + f"wait \"$azl_p\"; printf '{token} E %d\\n' $?; printf '{token} E\\n' >&2\n"
    )


def kill_script(pid: int) -> str:
    """Kill a framed command's process group, falling back to the single process."""
    return (
        # No "--": dash (Debian's sh) rejects it and then only the group leader was killed.
        f"kill -TERM -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; "
        f"sleep 0.2; kill -0 -{pid} 2>/dev/null || kill -0 {pid} 2>/dev/null || exit 0; sleep 1; "
        f"kill -KILL -{pid} 2>/dev/null || kill -KILL {pid} 2>/dev/null; true"
    )

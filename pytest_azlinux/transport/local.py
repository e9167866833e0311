"""Commands on this machine, through subprocess."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from ..errors import CommandRefused, CommandTimeout
from .protocol import CommandResult
from .shell import SELINUX_ENFORCE, TAG_VARIABLE

# A longer script would not fit in one argument (Linux: MAX_ARG_STRLEN, 128 KiB): sh reads it
# from a file instead.
_ARGUMENT_LIMIT = 100_000
_PRUNE_EVERY = 256  # commands between forgetting the sessions nothing is left in


class LocalTransport:
    """Runs each script in its own process group so a timeout kills all of it.

    Output goes to unnamed files, not pipes: a process a command leaves behind cannot hold
    the command open or mix into a later one. Where SELinux is enabled it goes to pipes: a
    program running in a domain of its own (modprobe in ``kmod_t``...) may use a pipe of
    its caller's, but policies deny it a file in /tmp (see transport/shell.py). Every
    process started carries ``AZL_SHELL=<tag>`` in its environment and stays in its
    command's session unless it leaves it; ``close`` ends the processes of those sessions
    and the tagged ones still running (also what dropped the tag: ``env -i``, ``sudo``).
    """

    def __init__(self, name: str = "localhost", sudo_password: str | None = None) -> None:
        self.name = name
        self.description = "local"
        self._sudo_password = sudo_password
        self.tag = "azl" + secrets.token_hex(8)
        self.pipes = Path(SELINUX_ENFORCE).exists()
        # the sessions of commands that may have left processes (each command leads one)
        self._sessions: set[int] = set()
        self._runs = 0

    def connect(self) -> None:
        return None

    def run(
        self, script: str, *, timeout: float, stdin: bytes | None = None, sudo: bool = False
    ) -> CommandResult:
        if "\0" in script:
            raise CommandRefused(f"{self.name}: a command cannot contain a NUL byte")
        start = time.monotonic()
        with contextlib.ExitStack() as stack:
            argv = ["sh", "-c", script]
            if len(script) > _ARGUMENT_LIMIT // 4 and len(script.encode()) > _ARGUMENT_LIMIT:
                script_file = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".sh"))
                script_file.write(script)
                script_file.flush()
                argv = ["sh", script_file.name]
            if sudo and os.geteuid() != 0:  # sudo resets the environment: tag inside it
                argv = ["sudo", "-n", "--", "env", f"{TAG_VARIABLE}={self.tag}", *argv]
            files = None if self.pipes else (
                stack.enter_context(tempfile.TemporaryFile()),
                stack.enter_context(tempfile.TemporaryFile()),
            )
            self._runs += 1
            if self._runs % _PRUNE_EVERY == 0:  # sessions left empty: their ids may be reused
                self._sessions &= set(_sessions_in_use())
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE if files is None else files[0],
                stderr=subprocess.PIPE if files is None else files[1],
                start_new_session=True,
                env={**os.environ, TAG_VARIABLE: self.tag},
            )
            self._sessions.add(proc.pid)
            try:
                piped = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise CommandTimeout(self.name, script, timeout) from None
            except BaseException:  # Ctrl-C, SIGTERM turned into an exception: end it too
                _kill_group(proc)
                raise
            stdout, stderr = piped if files is None else (_read(files[0]), _read(files[1]))
            return CommandResult(script, proc.returncode, stdout, stderr,
                                 time.monotonic() - start)

    def close(self) -> None:
        """End what the commands left running (background processes, daemons)."""
        end_tagged(self.tag, self._sessions)


def _read(handle: IO[bytes]) -> bytes:
    handle.seek(0)
    return handle.read()


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


def _sessions_in_use() -> dict[int, list[int]]:
    """Session id -> its processes, for every process of this machine."""
    found: dict[int, list[int]] = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = path.read_text().rsplit(")", 1)[1].split()
            found.setdefault(int(fields[3]), []).append(int(path.parent.name))
    return found


def tagged_pids(tag: str) -> list[int]:
    """Processes of this machine whose environment holds ``AZL_SHELL=<tag>``."""
    entry = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for path in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if entry in path.read_bytes().split(b"\0"):
                found.append(int(path.parent.name))
    return found


def end_tagged(tag: str, sessions: set[int] | frozenset[int] = frozenset()) -> None:
    """TERM, then KILL, every process carrying ``tag`` or in one of ``sessions`` (those
    this user may signal)."""
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL):
        members = [pid for sid, pids in _sessions_in_use().items() if sid in sessions
                   for pid in pids] if sessions else []
        pids = [p for p in {*tagged_pids(tag), *members} if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        time.sleep(0.2)

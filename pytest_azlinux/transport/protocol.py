"""The shape every transport has, and what a command returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    """What one command did: exit code, output (bytes and text) and how long it took."""

    command: str
    rc: int
    stdout_bytes: bytes
    stderr_bytes: bytes
    duration: float

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def failed(self) -> bool:
        return self.rc != 0


class Transport(Protocol):
    """Runs POSIX shell scripts on one machine.

    ``run`` returns the script's result or raises an ``InfraError``: ``CommandTimeout``
    (the command was killed and the transport stays usable), ``ConnectionLost`` (the
    connection dropped while the command ran; a new one is open) or ``HostUnreachable``
    (the machine cannot be reached again). A script's output is its own: what a process
    it left behind writes later is not part of any result.
    """

    description: str

    def connect(self) -> None:
        """Open the connection now; raise ``HostUnreachable`` with the cause."""

    def run(
        self, script: str, *, timeout: float, stdin: bytes | None = None, sudo: bool = False
    ) -> CommandResult:
        """Run ``script`` with ``sh``; as root when ``sudo``."""

    def close(self) -> None:
        """End what the transport started on the machine (a running command, processes
        commands left behind, its shells) and release every resource; safe to call twice."""


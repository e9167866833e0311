"""One exception hierarchy users can catch.

``AzlError`` is the root. ``InfraError`` and its subclasses mean *the test could not look*
(unreachable host, timeout, lost connection): the plugin reports them as ERROR, never as a
finding. ``TargetsError`` means the configuration is wrong and becomes a usage error.
"""

from __future__ import annotations


class AzlError(Exception):
    """Root of every error raised by pytest-azlinux."""


class TargetsError(AzlError):
    """The targets file (or a profile file) is invalid; the message names file and field."""


class InfraError(AzlError):
    """The infrastructure failed: reported as ERROR, not as a test failure."""


class HostUnreachable(InfraError):
    """Connecting to a host failed (network, auth, host key)."""

    def __init__(self, host: str, address: str, cause: str) -> None:
        super().__init__(f"host {host} ({address}) unreachable: {cause}")
        self.host = host
        self.address = address
        self.cause = cause


class HostKeyError(HostUnreachable):
    """The host key is unknown or does not match the pinned one."""


class ConnectionLost(InfraError):
    """An established connection dropped while a command ran."""


class CommandTimeout(InfraError):
    """A command did not finish within its timeout; it was killed, the host stays usable."""

    def __init__(self, host: str, command: str, timeout: float) -> None:
        super().__init__(f"{host}: command timed out after {timeout:g} s: {command}")
        self.host = host
        self.command = command
        self.timeout = timeout


class CommandFailed(AzlError):
    """A command checked with ``check=True`` exited non-zero (a finding, not infra)."""

    def __init__(self, host: str, command: str, rc: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"{host}: command exited {rc}: {command}{detail}")
        self.host = host
        self.command = command
        self.rc = rc
        self.stderr = stderr

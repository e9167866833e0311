"""The parts of an SSH connection that keep no state of their own: the connect retry pauses,
the host-key policy for ``accept-new``, what a failed connect or handshake means, socket
options, and a channel as the persistent shell's stream (``ssh.py`` holds the connection)."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

RETRY_FIRST_PAUSE = 0.5  # before the second connect; doubled for each further one
RETRY_MAX_PAUSE = 5.0


class _HandshakeTracebacks(logging.Filter):
    """Drops the ERROR records paramiko's transport thread writes when a handshake fails
    (the exception and a 20-line traceback, which pytest shows under "Captured log"): the
    ``HostUnreachable`` raised for it says the same in one line. Kept when paramiko's
    debug log was asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or _PARAMIKO_LOG.isEnabledFor(logging.DEBUG)


_PARAMIKO_LOG = logging.getLogger("paramiko")
logging.getLogger("paramiko.transport").addFilter(_HandshakeTracebacks())


class ChannelStream:
    """Adapts a paramiko channel to the shell session's ``Stream``."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def send(self, data: bytes) -> None:
        if self._channel.closed:
            raise EOFError("channel closed")
        self._channel.sendall(data)

    def fileno(self) -> int:
        return self._channel.fileno()

    def read_available(self) -> tuple[bytes, bytes, bool]:
        ch = self._channel
        out = ch.recv(1 << 20) if ch.recv_ready() else b""
        err = ch.recv_stderr(1 << 20) if ch.recv_stderr_ready() else b""
        eof = not out and not err and bool(ch.exit_status_ready() or ch.closed or ch.eof_received)
        return out, err, eof

    def close(self) -> None:
        self._channel.close()


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """accept-new: trust an unknown key once and write it down; a changed key still fails."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def os_reason(exc: OSError) -> str:
    # paramiko's NoValidConnectionsError says only "Unable to connect"; the cause (refused,
    # no route...) is in its per-address errors.
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        inner = next(iter(errors.values()))
        return str(getattr(inner, "strerror", None) or inner)
    return exc.strerror or str(exc)


def stalled_handshake(
    client: paramiko.SSHClient, exc: Exception, timeout: float, started: float
) -> str | None:
    """The timeout behind a failed handshake, or None when the server did answer.

    paramiko reports a stalled exchange as an authentication failure ("Authentication
    timeout.", or "transport shut down or saw EOF" after its key-exchange timer closed the
    connection) or as a bare SSHException: under heavy packet loss that read "authentication
    failed", which sends people after their keys instead of their network.
    """
    elapsed = time.monotonic() - started
    transport = client.get_transport()
    # What the transport's own thread ran into (a banner timeout) is the first cause.
    inner = transport.get_exception() if transport is not None else None
    text = f"{exc} {inner or ''}"
    kex_timer = getattr(transport, "handshake_timeout", 15)
    packetizer = getattr(transport, "packetizer", None)
    slow = "the network is slow or losing packets, or sshd is stalled"
    if "Error reading SSH protocol banner" in text or not getattr(
        transport, "remote_version", "SSH-"
    ):
        return f"no SSH banner within {timeout:g} s ({slow})"
    if packetizer is not None and packetizer.handshake_timed_out():
        return f"the SSH key exchange did not finish within {kex_timer:g} s ({slow})"
    if "No existing session" in text:  # paramiko gave up waiting for the key exchange
        return f"the SSH key exchange did not finish within {timeout:g} s ({slow})"
    if "Authentication timeout" in text:
        return f"no answer to the authentication request within {timeout:g} s ({slow})"
    if "transport shut down or saw EOF" in text:
        return f"the server closed the connection during the SSH handshake after {elapsed:.1f} s"
    return None


def no_delay(sock: object) -> None:
    """Send small packets at once (a command is one): Nagle's algorithm would hold one
    back until the previous packet is acknowledged, and the server delays that ACK up to
    40 ms when it has nothing to say."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class Orphan:
    """A shell whose connection was lost before it could end what it started."""

    tag: str
    workdir: str | None
    session: int | None
    sudo: bool

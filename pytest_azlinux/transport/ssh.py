"""Commands over SSH (paramiko): verified host keys, jump hosts, one persistent shell.

One SSH connection per host per process; commands go through a long-lived ``sh`` on one
channel (and a second one under ``sudo`` when asked), not a channel per command.
"""

from __future__ import annotations

import selectors
import shlex
import threading
import time
from pathlib import Path
from typing import Any

import paramiko

from ..errors import CommandTimeout, ConnectionLost, HostKeyError, HostUnreachable, InfraError
from ..targets import HostSpec, JumpHost
from .protocol import CommandResult
from .shell import ShellSession, kill_script


class _ChannelStream:
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


# The sudo shell says it is ready on stdout; sudo -S prompts on stderr. The password is sent
# only in answer to the prompt, so it never reaches the shell (NOPASSWD, cached credentials).
_SUDO_PROMPT = "[azl-sudo-password]"
_SUDO_READY = "azl-sudo-ready"


class _KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
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


def _os_reason(exc: OSError) -> str:
    # paramiko's NoValidConnectionsError says only "Unable to connect"; the cause (refused,
    # no route...) is in its per-address errors.
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        inner = next(iter(errors.values()))
        return str(getattr(inner, "strerror", None) or inner)
    return exc.strerror or str(exc)


def _known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


class SshTransport:
    """One SSH connection to ``spec`` (through its jump hosts)."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        who = f"{spec.user}@" if spec.user else ""
        self.description = f"ssh {who}{spec.address}:{spec.port}"
        self._clients: list[paramiko.SSHClient] = []
        self._shells: dict[bool, ShellSession] = {}
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self._connected():
                return
            self._close_clients()
            self._open()

    def _connected(self) -> bool:
        if not self._clients:
            return False
        transport = self._clients[-1].get_transport()
        return transport is not None and transport.is_active()

    def _open(self) -> None:
        spec = self.spec
        sock: Any = None
        hops: list[tuple[JumpHost | HostSpec, str]] = [
            (j, f"jump host {j.address}") for j in spec.jump
        ]
        hops.append((spec, f"host {spec.name}"))
        for index, (hop, label) in enumerate(hops):
            if index > 0:
                prev = self._clients[-1].get_transport()
                assert prev is not None
                try:
                    sock = prev.open_channel(
                        "direct-tcpip", (hop.address, hop.port), ("127.0.0.1", 0),
                        timeout=spec.connect_timeout,
                    )
                except (paramiko.SSHException, OSError) as exc:
                    self._close_clients()
                    raise HostUnreachable(
                        spec.name, spec.address,
                        f"{label} not reachable through the jump host: {exc}",
                    ) from None
            self._clients.append(self._connect_one(hop, sock, label))

    def _connect_one(self, hop: JumpHost | HostSpec, sock: Any, label: str) -> paramiko.SSHClient:
        spec = self.spec
        client = paramiko.SSHClient()
        known = Path(spec.known_hosts) if spec.known_hosts else Path.home() / ".ssh" / "known_hosts"
        if known.exists():
            client.load_host_keys(str(known))
        if spec.host_key_policy == "accept-new":
            client.set_missing_host_key_policy(_KnownHostsPolicy(known))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        user = hop.user or spec.user
        identity = hop.identity_file or spec.identity_file
        password = hop.password or (spec.password if isinstance(hop, HostSpec) else None)
        try:
            client.connect(
                hop.address,
                port=hop.port,
                username=user,
                key_filename=identity,
                password=password.get_secret_value() if password else None,
                timeout=spec.connect_timeout,
                banner_timeout=spec.connect_timeout,
                auth_timeout=spec.connect_timeout,
                sock=sock,
                look_for_keys=identity is None and password is None,
                allow_agent=identity is None and password is None,
            )
        except paramiko.BadHostKeyException as exc:
            self._close_clients()
            raise HostKeyError(
                spec.name, spec.address,
                f"{label}: host key for {_known_hosts_name(hop.address, hop.port)} does not match "
                f"{known} (got {exc.key.get_name()} {exc.key.get_fingerprint().hex()}); "
                "refusing to connect",
            ) from None
        except paramiko.AuthenticationException as exc:
            self._close_clients()
            raise HostUnreachable(
                spec.name, spec.address, f"{label}: authentication failed for user {user}: {exc}"
            ) from None
        except paramiko.SSHException as exc:
            self._close_clients()
            text = str(exc)
            if "not found in known_hosts" in text:
                raise HostKeyError(
                    spec.name, spec.address,
                    f"{label}: unknown host key for {_known_hosts_name(hop.address, hop.port)} "
                    f"(not in {known}); pin it there or set host_key_policy: accept-new",
                ) from None
            raise HostUnreachable(spec.name, spec.address, f"{label}: SSH error: {text}") from None
        except TimeoutError:
            self._close_clients()
            raise HostUnreachable(
                spec.name, spec.address,
                f"{label}: connect to {hop.address}:{hop.port} timed out after "
                f"{spec.connect_timeout:g} s",
            ) from None
        except OSError as exc:
            self._close_clients()
            reason = _os_reason(exc)
            raise HostUnreachable(
                spec.name, spec.address, f"{label}: connect to {hop.address}:{hop.port}: {reason}"
            ) from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        return client

    # -- commands ---------------------------------------------------------------------
    def run(
        self, script: str, *, timeout: float, stdin: bytes | None = None, sudo: bool = False
    ) -> CommandResult:
        for attempt in (1, 2):
            shell = self._shell(sudo)
            try:
                return shell.run(script, timeout=timeout, stdin=stdin)
            except ConnectionLost:
                self._shells.pop(sudo, None)
                # Reconnect once, but only if the connection itself dropped; a command that
                # was running when it dropped is not run again (it may not be idempotent).
                if attempt == 2 or shell.run_started:
                    raise
            except CommandTimeout:
                if shell.broken:
                    self._shells.pop(sudo, None)
                raise
        raise AssertionError("unreachable")

    def _shell(self, sudo: bool) -> ShellSession:
        shell = self._shells.get(sudo)
        if shell is not None and not shell.broken and self._connected():
            return shell
        self.connect()
        client = self._clients[-1]
        transport = client.get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.spec.connect_timeout)
            channel.exec_command(self._shell_command(sudo))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionLost(f"{self.spec.name}: cannot open a shell: {exc}") from exc
        stream = _ChannelStream(channel)
        if sudo and self.spec.user != "root":
            self._sudo_handshake(stream)
        shell = ShellSession(stream, self.spec.name, lambda pid: self._kill(pid, sudo))
        self._shells[sudo] = shell
        return shell

    def _shell_command(self, sudo: bool) -> str:
        if not sudo or self.spec.user == "root":
            return "exec sh"
        start = shlex.quote(f"echo {_SUDO_READY}; exec sh")
        if self.spec.sudo_password is not None:
            # -k: always ask when a password is needed, so the answer is never left over.
            return f"exec sudo -S -k -p {shlex.quote(_SUDO_PROMPT)} sh -c {start}"
        return f"exec sudo -n sh -c {start}"

    def _sudo_handshake(self, stream: _ChannelStream) -> None:
        """Wait for the root shell; answer sudo's password prompt once if it asks."""
        password = self.spec.sudo_password
        ready, prompt = _SUDO_READY.encode() + b"\n", _SUDO_PROMPT.encode()
        out, err = b"", b""
        answered = False
        deadline = time.monotonic() + self.spec.connect_timeout
        sel = selectors.DefaultSelector()
        sel.register(stream.fileno(), selectors.EVENT_READ)
        try:
            while True:
                if ready in out:
                    return
                if prompt in err:
                    if answered or password is None:
                        stream.close()
                        raise self._sudo_error("sudo rejected the sudo_password")
                    err = err.replace(prompt, b"", 1)
                    stream.send(password.get_secret_value().encode() + b"\n")
                    answered = True
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stream.close()
                    raise self._sudo_error(f"no root shell after {self.spec.connect_timeout:g} s")
                sel.select(min(remaining, 0.5))
                chunk_out, chunk_err, eof = stream.read_available()
                out, err = out + chunk_out, err + chunk_err
                if eof and ready not in out and prompt not in err:
                    detail = err.decode("utf-8", "replace").strip() or "the sudo shell exited"
                    raise self._sudo_error(detail.splitlines()[-1])
        finally:
            sel.close()

    def _sudo_error(self, detail: str) -> InfraError:
        return InfraError(
            f"{self.spec.name}: cannot run commands as root with sudo as user "
            f"{self.spec.user or '(default)'}: {detail}"
        )

    def _kill(self, pid: int, sudo: bool) -> None:
        """Kill a timed-out command through a side channel of the same connection."""
        client = self._clients[-1] if self._clients else None
        if client is None:
            return
        password = self.spec.sudo_password if sudo and self.spec.user != "root" else None
        prefix = ""
        if sudo and self.spec.user != "root":
            prefix = "sudo -S -k -p '' " if password is not None else "sudo -n "
        try:
            command = f"{prefix}sh -c '{kill_script(pid)}'"
            stdin, stdout, _ = client.exec_command(command, timeout=10)
            if password is not None:  # read by sudo only; the kill script reads no input
                stdin.write(password.get_secret_value() + "\n")
            stdin.channel.shutdown_write()
            stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError):
            pass

    def close(self) -> None:
        with self._lock:
            for shell in self._shells.values():
                shell.close()
            self._shells.clear()
            self._close_clients()

    def _close_clients(self) -> None:
        for client in reversed(self._clients):
            client.close()
        self._clients.clear()

"""Commands over SSH (paramiko): verified host keys, jump hosts, one persistent shell.

One SSH connection per host per process; commands go through a long-lived ``sh`` on one
channel (and a second one under ``sudo`` when asked), not a channel per command.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any

import paramiko

from ..errors import CommandTimeout, ConnectionLost, HostKeyError, HostUnreachable, InfraError
from ..redaction import redact
from ..targets import HostSpec, JumpHost
from .protocol import CommandResult
from .shell import ShellSession, sweep_script
from .ssh_parts import (
    RETRY_FIRST_PAUSE,
    RETRY_MAX_PAUSE,
    ChannelStream,
    KnownHostsPolicy,
    Orphan,
    known_hosts_name,
    no_delay,
    os_reason,
    stalled_handshake,
)

# The sudo shell says it is ready on stdout; sudo -S prompts on stderr. The password is sent
# only in answer to the prompt, so it never reaches the shell (NOPASSWD, cached credentials).
_SUDO_PROMPT = "[azl-sudo-password]"
_SUDO_READY = "azl-sudo-ready"


class SshTransport:
    """One SSH connection to ``spec`` (through its jump hosts)."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        who = f"{spec.user}@" if spec.user else ""
        self.description = f"ssh {who}{spec.address}:{spec.port}"
        self._clients: list[paramiko.SSHClient] = []
        self._shells: dict[bool, ShellSession] = {}
        self._orphans: list[Orphan] = []
        self._unreachable: HostUnreachable | None = None
        # How long a keepalive may go unanswered before the connection counts as dead: long
        # enough for TCP to retransmit through heavy loss (RTO 0.2 s doubling: 6 tries).
        self._probe_wait = max(15.0, 2 * spec.connect_timeout)
        self._lock = threading.RLock()
        self._aborted = threading.Event()
        self._final = False  # the last connect failed for a reason that does not pass
        self._dialed: socket.socket | None = None  # the socket of a handshake under way
        self._handshaking: list[paramiko.SSHClient] = []  # clients not yet connected

    # -- connection -------------------------------------------------------------------
    def connect(self) -> None:
        """Connect, trying again within ``reconnect_within`` while the failure may pass."""
        with self._lock:
            if self._connected():
                return
            self._close_clients()
            self._open_within_budget()
            self._sweep_orphans()

    def abort(self) -> None:
        """Give up now, from another thread (the run is ending): a connect under way or a
        wait between tries ends at once with ``HostUnreachable``."""
        self._aborted.set()
        dialed = self._dialed
        if dialed is not None:  # the handshake's reads end at once
            with contextlib.suppress(OSError):
                dialed.shutdown(socket.SHUT_RDWR)
        for client in list(self._clients) + list(self._handshaking):
            with contextlib.suppress(Exception):
                client.close()

    def _open_within_budget(self) -> None:
        """``_open``, again after a pause while the cause may pass (refused, no route, no
        banner: a restarting daemon, a rebooting node) and ``reconnect_within`` seconds
        are not over; a bad key or a refused login is final at once."""
        # A host already found unreachable had its budget: one try (a later teardown step).
        budget = 0.0 if self._unreachable is not None else self.spec.reconnect_within
        deadline = time.monotonic() + budget
        pause = RETRY_FIRST_PAUSE
        tries = 0
        while True:
            tries += 1
            self._final = False
            try:
                self._open()
                return
            except HostUnreachable as exc:
                left = deadline - time.monotonic()
                if self._final or self._aborted.is_set() or left <= 0:
                    if tries > 1 and not self._aborted.is_set():
                        raise type(exc)(exc.host, exc.address, f"{exc.cause} (tried {tries} "
                                        f"times in {budget:g} s)") from None
                    raise
                if self._aborted.wait(min(pause, left)):
                    raise
                pause = min(pause * 2, RETRY_MAX_PAUSE)

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
            client.set_missing_host_key_policy(KnownHostsPolicy(known))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        user = hop.user or spec.user
        identity = hop.identity_file or spec.identity_file
        password = hop.password or (spec.password if isinstance(hop, HostSpec) else None)
        started = time.monotonic()
        self._handshaking.append(client)
        try:
            if sock is None:
                sock = self._dial(hop.address, hop.port)
                self._dialed = sock
            if self._aborted.is_set():
                raise OSError(errno.ECANCELED, "the run is ending")
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
            self._final = True
            raise HostKeyError(
                spec.name, spec.address,
                f"{label}: host key for {known_hosts_name(hop.address, hop.port)} does not match "
                f"{known} (got {exc.key.get_name()} {exc.key.get_fingerprint().hex()}); "
                "refusing to connect",
            ) from None
        except paramiko.AuthenticationException as exc:
            stalled = stalled_handshake(client, exc, spec.connect_timeout, started)
            client.close()
            self._close_clients()
            if stalled:
                raise HostUnreachable(spec.name, spec.address, f"{label}: {stalled}") from None
            self._final = not self._aborted.is_set()
            raise HostUnreachable(
                spec.name, spec.address, f"{label}: authentication failed for user {user}: {exc}"
            ) from None
        except paramiko.SSHException as exc:
            stalled = stalled_handshake(client, exc, spec.connect_timeout, started)
            client.close()
            self._close_clients()
            text = str(exc)
            if "not found in known_hosts" in text:
                self._final = True
                raise HostKeyError(
                    spec.name, spec.address,
                    f"{label}: unknown host key for {known_hosts_name(hop.address, hop.port)} "
                    f"(not in {known}); pin it there or set host_key_policy: accept-new",
                ) from None
            cause = stalled or f"SSH error: {text}"
            raise HostUnreachable(spec.name, spec.address, f"{label}: {cause}") from None
        except EOFError:  # closed inside the handshake (a restart under way): tried again
            client.close()
            self._close_clients()
            raise HostUnreachable(spec.name, spec.address, f"{label}: {hop.address}:{hop.port} "
                                  "closed the connection during the SSH handshake") from None
        except TimeoutError:
            client.close()
            self._close_clients()
            raise HostUnreachable(
                spec.name, spec.address,
                f"{label}: connect to {hop.address}:{hop.port} timed out after "
                f"{spec.connect_timeout:g} s",
            ) from None
        except OSError as exc:
            client.close()
            self._close_clients()
            reason = os_reason(exc)
            raise HostUnreachable(
                spec.name, spec.address, f"{label}: connect to {hop.address}:{hop.port}: {reason}"
            ) from None
        finally:
            self._handshaking.remove(client)
            self._dialed = None
        if self._aborted.is_set():
            client.close()
            self._close_clients()
            raise HostUnreachable(spec.name, spec.address, f"{label}: the run is ending")
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
            no_delay(transport.sock)
        return client

    def _dial(self, address: str, port: int) -> socket.socket:
        """A TCP connection to ``address:port`` within ``connect_timeout``, which ``abort``
        can end at once (paramiko's own connect would block for the whole timeout)."""
        timeout = self.spec.connect_timeout
        deadline = time.monotonic() + timeout
        try:
            infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(exc.errno, exc.strerror) from None
        last: OSError = OSError("no address")
        for family, kind, proto, _, addr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                code = sock.connect_ex(addr)
                if code not in (0, errno.EINPROGRESS):
                    raise OSError(code, os.strerror(code))
                with selectors.DefaultSelector() as sel:
                    sel.register(sock, selectors.EVENT_WRITE)
                    while not sel.select(min(0.2, max(0.0, deadline - time.monotonic()))):
                        if self._aborted.is_set():
                            raise OSError(errno.ECANCELED, "the run is ending")
                        if time.monotonic() >= deadline:
                            raise TimeoutError(f"timed out after {timeout:g} s")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
                sock.setblocking(True)
                return sock
            except TimeoutError:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                if self._aborted.is_set():
                    raise OSError(errno.ECANCELED, "the run is ending") from None
                last = exc
        raise last

    # -- commands ---------------------------------------------------------------------
    def run(
        self, script: str, *, timeout: float, stdin: bytes | None = None, sudo: bool = False
    ) -> CommandResult:
        for attempt in (1, 2):
            shell = self._shell(sudo)
            try:
                return shell.run(script, timeout=timeout, stdin=stdin)
            except ConnectionLost as lost:
                self._retire(sudo)
                # Reconnect now: that ends what the lost shell left, and a host that cannot
                # be reached again is unreachable (HostUnreachable), not one more lost
                # connection per remaining test. A command that was running is not sent
                # again (it may not be idempotent); one that never started is.
                self._reconnect(str(lost))
                if attempt == 2 or shell.run_started:
                    raise
            except CommandTimeout as timed_out:
                if shell.broken:  # the kill did not bring the shell back: is the host there?
                    self._retire(sudo)
                    self._reconnect(str(timed_out))
                raise
        raise AssertionError("unreachable")

    def _shell(self, sudo: bool) -> ShellSession:
        shell = self._shells.get(sudo)
        if shell is not None:
            if shell.usable and self._connected():
                return shell
            self._retire(sudo)
        self.connect()
        try:
            channel = self._open_shell_channel(sudo)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            # The transport looked active but cannot open a channel: it is dead.
            self._reconnect(f"{self.spec.name}: cannot open a shell: {exc}")
            try:
                channel = self._open_shell_channel(sudo)
            except (paramiko.SSHException, OSError, EOFError) as again:
                raise ConnectionLost(f"{self.spec.name}: cannot open a shell: {again}") from again
        stream = ChannelStream(channel)
        if sudo and self.spec.user != "root":
            self._sudo_handshake(stream)
        shell = ShellSession(
            stream, self.spec.name, lambda script: self._kill(script, sudo),
            alive=self._alive, secrets=self.spec.secrets(),
        )
        self._shells[sudo] = shell
        return shell

    def _open_shell_channel(self, sudo: bool) -> paramiko.Channel:
        transport = self._clients[-1].get_transport() if self._clients else None
        if transport is None:
            raise EOFError("not connected")
        channel = transport.open_session(timeout=self.spec.connect_timeout)
        channel.exec_command(self._shell_command(sudo))
        return channel

    def _retire(self, sudo: bool) -> None:
        """Stop using a shell; what it left is swept now, or after the next connect."""
        shell = self._shells.pop(sudo, None)
        if shell is not None and not shell.close() and shell.started:
            self._orphans.append(Orphan(shell.tag, shell.workdir, shell.session, sudo))

    def _reconnect(self, cause: str) -> None:
        """A new connection (HostUnreachable naming ``cause`` if there is none)."""
        with self._lock:
            self._close_clients()
            try:
                self._open_within_budget()
            except HostUnreachable as exc:
                self._unreachable = type(exc)(
                    self.spec.name, self.spec.address,
                    f"{redact(cause, self.spec.secrets())}; reconnecting failed: {exc.cause}",
                )
                raise self._unreachable from None
            self._sweep_orphans()

    def _shell_command(self, sudo: bool) -> str:
        if not sudo or self.spec.user == "root":
            return "exec sh"
        start = shlex.quote(f"echo {_SUDO_READY}; exec sh")
        if self.spec.sudo_password is not None:
            # -k: always ask when a password is needed, so the answer is never left over.
            return f"exec sudo -S -k -p {shlex.quote(_SUDO_PROMPT)} sh -c {start}"
        return f"exec sudo -n sh -c {start}"

    def _sudo_handshake(self, stream: ChannelStream) -> None:
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
            f"{self.spec.user or '(default)'}: {redact(detail, self.spec.secrets())}"
        )

    # -- side channel: kill, sweep, probe ---------------------------------------------------
    def _kill(self, script: str, sudo: bool) -> None:
        """Kill a timed-out command's process tree (``script``) through a second channel."""
        self._side_exec(script, sudo, timeout=15)

    def _sweep_orphans(self) -> None:
        """End what lost shells left (the shell itself, its commands, their children)."""
        for orphan in list(self._orphans):
            script = sweep_script(orphan.tag, orphan.workdir, orphan.session)
            if self._side_exec(script, orphan.sudo, timeout=15):
                self._orphans.remove(orphan)

    def _side_exec(self, script: str, sudo: bool, timeout: float) -> bool:
        """Run ``script`` on a channel of its own (as root if ``sudo``); True once it ended.

        The sudo password is sent only in answer to sudo's prompt, as in the shell's start.
        """
        transport = self._clients[-1].get_transport() if self._clients else None
        if transport is None or not transport.is_active():
            return False
        as_root = sudo and self.spec.user != "root"
        password = self.spec.sudo_password if as_root else None
        command = f"sh -c {shlex.quote(script)}"
        if as_root:
            command = (f"sudo -S -k -p {shlex.quote(_SUDO_PROMPT)} {command}"
                       if password is not None else f"sudo -n {command}")
        deadline = time.monotonic() + timeout
        try:
            channel = transport.open_session(timeout=min(timeout, self.spec.connect_timeout))
            try:
                channel.exec_command(command)
                err = b""
                while not channel.status_event.wait(0.05):
                    if time.monotonic() > deadline:
                        return False
                    while channel.recv_stderr_ready():
                        err += channel.recv_stderr(4096)
                    if password is not None and _SUDO_PROMPT.encode() in err:
                        err = err.replace(_SUDO_PROMPT.encode(), b"", 1)
                        channel.sendall(password.get_secret_value().encode() + b"\n")
                        password = None  # once: a second prompt means a wrong password
                return True
            finally:
                channel.close()
        except (paramiko.SSHException, OSError, EOFError):
            return False

    def _alive(self) -> bool:
        """Whether the server still answers: a keepalive request that wants a reply.

        paramiko's own keepalives want none, so a host that vanished (no RST: a link down,
        a frozen VM) would otherwise look connected until TCP gives up, many minutes later.
        """
        transport = self._clients[-1].get_transport() if self._clients else None
        if transport is None or not transport.is_active():
            return False
        answered = threading.Event()

        def probe() -> None:
            with contextlib.suppress(Exception):  # any reply, even a refusal, is an answer
                transport.global_request("keepalive@openssh.com", wait=True)
            answered.set()

        threading.Thread(target=probe, daemon=True, name="azl-ssh-probe").start()
        return answered.wait(self._probe_wait) and transport.is_active()

    # -- end ----------------------------------------------------------------------------
    def close(self) -> None:
        """End every shell and what it started, then the connection.

        A shell that cannot end itself in-band (a command running that cannot be killed, a
        lost connection) is swept through the connection, reopened once if it is gone
        (not for a host already found unreachable).
        """
        with self._lock:
            for sudo in list(self._shells):
                self._retire(sudo)
            if self._orphans and not self._connected() and self._unreachable is None:
                self._close_clients()
                with contextlib.suppress(HostUnreachable):
                    self._open()
            if self._orphans and self._connected():
                self._sweep_orphans()
            self._close_clients()

    def _close_clients(self) -> None:
        for client in reversed(self._clients):
            client.close()
        self._clients.clear()

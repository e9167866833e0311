"""The SSH transport under faults (issue 18), against real OpenSSH sshd and lab hosts.

What the run started on a host must end on every exit path (close, Ctrl-C, SIGTERM, a
dropped session); a command's output is its own; a host that vanishes is unreachable fast;
messages say what happened and carry no secret. Processes are found by the tag every shell
puts in the environment of what it starts (``AZL_SHELL=<tag>``): sshd runs on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from pytest_azlinux.errors import (
    CommandFailed,
    CommandRefused,
    CommandTimeout,
    ConnectionLost,
    HostUnreachable,
    InfraError,
    OutputLost,
)
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import tagged_pids
from pytest_azlinux.transport.shell import ShellSession
from pytest_azlinux.transport.ssh import SshTransport
from tests.fixtures.child import default_sigint
from tests.fixtures.lab import lab_host_specs, make_lab, unique_lab_name
from tests.fixtures.sshd import SshdFactory, SshServer

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]


def connect(spec: HostSpec, timeout: float = 60.0) -> Host:
    host = Host(spec, SshTransport(spec), default_timeout=timeout)
    host.transport.connect()
    return host


@pytest.fixture
def host(sshd_factory: SshdFactory, sshd: SshServer) -> Iterator[Host]:
    h = connect(sshd_factory.spec(sshd))
    yield h
    h.close()


def shell_of(host: Host, sudo: bool = False) -> ShellSession:
    shells: dict[bool, ShellSession] = host.transport._shells  # type: ignore[attr-defined]
    return shells[sudo]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def nothing_left(tag: str, workdir: str | None) -> Callable[[], bool]:
    return lambda: not tagged_pids(tag) and not (workdir and Path(workdir).exists())


def running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


# -- output belongs to its command (18.4) ------------------------------------------------------
@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_background_output_stays_out_of_later_commands(host: Host, sudo: bool) -> None:
    first = host.run("(sleep 1; echo late; echo late >&2) & echo first", sudo=sudo)
    assert (first.rc, first.stdout, first.stderr) == (0, "first\n", "")
    outputs = set()
    end = time.monotonic() + 2.5  # across the moment "late" is written
    while time.monotonic() < end:
        result = host.run("echo alive", timeout=10, sudo=sudo)
        outputs.add((result.rc, result.stdout, result.stderr))
    assert outputs == {(0, "alive\n", "")}


def test_long_commands_run_whole(host: Host) -> None:
    for size in (200_000, 2_000_000):  # over the 128 KiB a single argument may have
        word = "y" * size
        result = host.run(f"printf %s {word} | wc -c", timeout=120)
        assert (result.rc, result.stdout.strip()) == (0, str(size))
    assert host.run(f": {'z' * 300_000}; id -u", sudo=True).stdout == "0\n"


def test_nul_byte_is_refused_naming_the_argument(host: Host, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(CommandRefused, match=r"sshd1: .*argument 2 contains a NUL byte"):
        host.run("touch %s %s", str(marker), "a\0b")
    with pytest.raises(CommandRefused, match="NUL"):
        host.run("touch", str(marker), env={"X": "a\0b"})
    with pytest.raises(CommandRefused, match="not a variable name"):
        host.run("touch", str(marker), env={"X; touch /tmp/azl-pwned #": "1"})
    assert not marker.exists() and not Path("/tmp/azl-pwned").exists()
    assert host.run("echo", "still fine").stdout == "still fine\n"


# -- nothing left on the host (18.2) --------------------------------------------------------------
@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_close_ends_leftovers_and_the_shell(host: Host, sudo: bool) -> None:
    host.run("sleep 611.5 & (sleep 612.5; echo x) &", sudo=sudo)
    shell = shell_of(host, sudo)
    assert len(tagged_pids(shell.tag)) >= 3  # the shell and the two it left
    host.close()
    wait_until(nothing_left(shell.tag, shell.workdir), "the shell or its leftovers survived")
    assert not running("sleep 61[12].5")


@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_close_while_a_command_runs(host: Host, sudo: bool) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            host.run("sleep 613.5", timeout=300, sudo=sudo)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: running("sleep 613.5"), "the command did not start")
    shell = shell_of(host, sudo)
    host.close()
    worker.join(timeout=60)
    assert not worker.is_alive()
    wait_until(nothing_left(shell.tag, shell.workdir), "the command or the shell survived")


CHILD = """
import json, signal, sys
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.ssh import SshTransport

spec = HostSpec(**json.loads(sys.argv[1]))
sudo = sys.argv[2] == "sudo"
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as the plugin handles SIGTERM
host = Host(spec, SshTransport(spec))
try:
    host.run("sleep 614.5 &", sudo=sudo)
    shell = host.transport._shells[sudo]
    print("SHELL", shell.tag, shell.workdir, flush=True)
    host.run("sleep 615.5", timeout=300, sudo=sudo)
finally:
    host.close()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_interrupted_run_leaves_nothing(
    sshd_factory: SshdFactory, sshd: SshServer, sig: signal.Signals, sudo: bool
) -> None:
    spec = sshd_factory.spec(sshd)
    fields = {k: getattr(spec, k) for k in
              ("name", "target", "access", "address", "port", "user", "identity_file",
               "known_hosts", "connect_timeout")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(fields), "sudo" if sudo else "user"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=default_sigint,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[:1] == ["SHELL"], child.stderr.read() if child.stderr else ""
        tag, workdir = line[1], line[2]
        wait_until(lambda: running("sleep 615.5"), "the command did not start")
        child.send_signal(sig)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    wait_until(nothing_left(tag, workdir), "the run left processes or files on the host")
    assert not running("sleep 61[45].5")


@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_dropped_session_is_ended_on_reconnect(host: Host, sshd: SshServer, sudo: bool) -> None:
    host.run("sleep 616.5 &", sudo=sudo)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            host.run("sleep 617.5", timeout=300, sudo=sudo)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: running("sleep 617.5"), "the command did not start")
    lost = shell_of(host, sudo)
    assert sshd.drop_connections() >= 1
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ConnectionLost), errors
    # The reconnect after the loss ended what the lost shell left, and the host works.
    wait_until(nothing_left(lost.tag, lost.workdir), "the lost session's processes survived")
    assert not running("sleep 61[67].5")
    assert host.check_output("echo back", sudo=sudo) == "back"


# -- a host that vanishes (18.5) ----------------------------------------------------------------
def test_frozen_host_is_unreachable_long_before_the_command_timeout(
    host: Host, sshd: SshServer
) -> None:
    host.run("true")
    start = time.monotonic()
    sshd.freeze()
    try:
        with pytest.raises(HostUnreachable) as info:
            host.run("sleep 600", timeout=600)
        elapsed = time.monotonic() - start
        message = str(info.value)
        assert "no answer from the host" in message and "reconnecting failed" in message
        # the silence it reports is the real one: 5 s before the probe, then its wait
        silent = re.search(r"no answer from the host for (\d+) s", message)
        assert silent is not None and int(silent.group(1)) >= 15, message
        assert "no SSH banner" in message
        assert elapsed < 300, f"took {elapsed:.0f} s for a dead host"
        with pytest.raises(HostUnreachable):  # and the next command: no command timeout
            host.run("true", timeout=600)
    finally:
        sshd.thaw()


def test_timeout_on_a_frozen_host_is_unreachable(host: Host, sshd: SshServer) -> None:
    host.run("true")
    sshd.freeze()
    try:
        with pytest.raises(HostUnreachable, match=r"sleep 30.*reconnecting failed"):
            host.run("sleep 30", timeout=2)
    finally:
        sshd.thaw()


# -- secrets (18.6) -------------------------------------------------------------------------------
def test_errors_carry_no_secret(sshd_factory: SshdFactory, sshd: SshServer) -> None:
    password = sshd_factory.users.sudo_password
    spec = sshd_factory.spec(sshd, user=sshd_factory.users.pw_user,
                             sudo_password=SecretStr(password))
    h = connect(spec)
    try:
        with pytest.raises(CommandTimeout) as timed_out:
            h.run(f"sleep 5 # {password}", timeout=1, sudo=True)
        with pytest.raises(CommandFailed) as failed:
            h.run(f"echo {password} >&2; exit 3", check=True)
        with pytest.raises(CommandFailed) as with_env:
            h.run("exit 4", env={"TOKEN": "env-value-xyz"}, check=True)
        for exc in (timed_out.value, failed.value, with_env.value):
            shown = f"{exc} {vars(exc)}"
            assert password not in shown and "env-value-xyz" not in shown
        assert "***" in str(timed_out.value) and "***" in str(failed.value)
        assert h.run("true", env={"TOKEN": "env-value-xyz"}).command == "true"
    finally:
        h.close()


# -- the frame under bash as sh (Azure Linux's /bin/sh) --------------------------------------------
def test_framing_with_bash_as_sh() -> None:
    """The real-sh framing tests again, in a mount namespace where sh is bash."""
    if os.geteuid() != 0:
        pytest.fail("needs root (a mount namespace with bash bound over sh)", pytrace=False)
    bash, sh = shutil.which("bash"), os.path.realpath("/bin/sh")
    assert bash is not None
    inside = (f"mount --make-rprivate / && mount --bind {bash} {sh} && "
              "sh -c 'echo \"sh is bash $BASH_VERSION\"' && "
              f"exec {sys.executable} -m pytest -q -p no:cacheprovider -k real "
              "tests/unit/test_shell_framing.py")
    done = subprocess.run(["unshare", "-m", "sh", "-c", inside], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sh is bash 5" in done.stdout or "sh is bash 4" in done.stdout
    assert " passed" in done.stdout and "failed" not in done.stdout


# -- handshake stalls (18.8) ----------------------------------------------------------------------
class StallAfterKeyExchange:
    """A TCP relay to a real sshd that stops passing the server's packets once the key
    exchange is done (after the server's NEWKEYS, RFC 4253 s7.3): the client's
    authentication is never answered, as when heavy loss eats the replies. The relay reads
    the binary packet layer only up to there, where it is still unencrypted."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self._upstream))
                self._sockets += [client, server]
                threading.Thread(target=self._pump, args=(client, server, False), daemon=True
                                 ).start()
                threading.Thread(target=self._pump, args=(server, client, True), daemon=True
                                 ).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        buf, banner_done, stalled = b"", False, False
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if not from_server:
                    dst.sendall(data)
                    continue
                if stalled:
                    continue  # swallowed: the replies that never arrive
                buf += data
                if not banner_done:
                    end = buf.find(b"\n")
                    if end < 0:
                        continue
                    dst.sendall(buf[: end + 1])
                    buf, banner_done = buf[end + 1 :], True
                while len(buf) >= 6 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                    size = 4 + int.from_bytes(buf[:4], "big")
                    packet, buf = buf[:size], buf[size:]
                    dst.sendall(packet)
                    if packet[5] == 21:  # SSH_MSG_NEWKEYS: from here on, nothing more
                        stalled = True
                        break

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_stalled_authentication_is_a_timeout_not_a_bad_key(
    sshd_factory: SshdFactory, sshd: SshServer, tmp_path: Path
) -> None:
    relay = StallAfterKeyExchange(sshd.port)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{relay.port} {sshd.host_key_line}\n")
    try:
        spec = sshd_factory.spec(sshd, port=relay.port, known_hosts=str(known),
                                 connect_timeout=2.0)
        with pytest.raises(HostUnreachable) as info:
            connect(spec)
    finally:
        relay.close()
    message = str(info.value)
    assert "authentication failed" not in message
    assert "no answer to the authentication request within 2 s" in message


def test_a_daemon_closing_inside_the_handshake_is_unreachable_not_an_eoferror(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    """A restarting sshd may take a connection, send its banner and close it: paramiko then
    raises EOFError from the key exchange, which must be HostUnreachable (tried again within
    the budget), never a bare EOFError that a test would report as its own failure."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 restarting\r\n")
                accepted.append(1)

    threading.Thread(target=serve, daemon=True).start()
    try:
        spec = sshd_factory.spec(sshd, port=port, connect_timeout=2.0, reconnect_within=2.0)
        with pytest.raises(HostUnreachable) as info:
            connect(spec)
    finally:
        listener.close()
    assert "closed the connection during the SSH handshake" in str(info.value)
    assert len(accepted) >= 2  # tried again within the budget


# -- the lab: a link that goes down, heavy loss ---------------------------------------------------
@pytest.fixture(scope="module")
def fault_lab() -> Iterator[object]:
    with make_lab(unique_lab_name("tf"), 1, ("azl3",)) as lab:
        yield lab


def test_lab_host_whose_link_goes_down_is_unreachable_fast(fault_lab: object) -> None:
    from pytest_azlinux.lab import Lab

    assert isinstance(fault_lab, Lab)
    # no reconnect budget: the test is about noticing the dead link, not about waiting it out
    spec = lab_host_specs(fault_lab, reconnect_within=0.0)[0]
    h = connect(spec, timeout=600)
    try:
        h.run("sleep 618.5 &")
        lost = shell_of(h)
        start = time.monotonic()
        fault_lab.fault(spec.name, down=True)
        try:
            with pytest.raises(HostUnreachable) as info:
                h.run("sleep 600")
            assert time.monotonic() - start < 300
            assert spec.name in str(info.value) and spec.address in str(info.value)
        finally:
            fault_lab.fault(spec.name, clear=True)
        # Back up: the next command reconnects and ends what the lost session left.
        assert h.check_output("echo back") == "back"
        assert h.run(f"grep -lzx AZL_SHELL={lost.tag} /proc/[0-9]*/environ").stdout == ""
    finally:
        h.close()


def test_lab_host_under_heavy_loss_is_never_an_authentication_failure(fault_lab: object) -> None:
    from pytest_azlinux.lab import Lab

    assert isinstance(fault_lab, Lab)
    spec = lab_host_specs(fault_lab, connect_timeout=2.0)[0]
    fault_lab.fault(spec.name, loss=30)
    messages = []
    try:
        for _ in range(8):
            try:
                h = connect(spec)
            except HostUnreachable as exc:
                messages.append(str(exc))
                continue
            try:
                assert h.run("echo through-loss", timeout=120).stdout == "through-loss\n"
            except InfraError as exc:  # a probe may give up under this loss: say so, then
                messages.append(str(exc))
            finally:
                h.close()
    finally:
        fault_lab.fault(spec.name, clear=True)
    for message in messages:
        assert "authentication failed" not in message, message


# -- a full output filesystem (28.1) -----------------------------------------------------------
def small_filesystems(factory: SshdFactory) -> dict[str, str]:
    """Every place the shell may keep command output, each a 2 MiB tmpfs of its own."""
    home = Path("/home") / factory.users.user
    return {d: "size=2m,mode=1777" for d in ("/dev/shm", "/tmp", "/var/tmp", str(home), "/root")}


def fill(server: SshServer, directory: str) -> None:
    done = server.in_namespace("dd", "if=/dev/zero", f"of={directory}/azl-fill", "bs=64k")
    assert "No space left on device" in done.stderr, done.stderr


@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_output_directory_filled_mid_run_is_an_error_not_a_result(
    sshd_factory: SshdFactory, sudo: bool
) -> None:
    server = sshd_factory.start("full1", tmpfs=small_filesystems(sshd_factory))
    h = connect(sshd_factory.spec(server))
    try:
        assert h.run("echo before", sudo=sudo).stdout == "before\n"
        workdir = shell_of(h, sudo).workdir
        assert workdir is not None and workdir.startswith("/dev/shm/")
        fill(server, "/dev/shm")
        for command in ("sleep 0.1; echo slow-0", "cat -- /etc/hostname", "echo x | cat"):
            with pytest.raises(OutputLost) as info:
                h.run(command, sudo=sudo)
            message = str(info.value)
            assert message.startswith("full1: ") and workdir in message, message
            assert "No space left on device" in message and command in message, message
        server.in_namespace("rm", "-f", "/dev/shm/azl-fill")
        assert h.run("echo after", sudo=sudo).stdout == "after\n"  # the shell stays usable
    finally:
        h.close()


def test_every_output_directory_full_before_the_run_names_each(sshd_factory: SshdFactory) -> None:
    places = small_filesystems(sshd_factory)
    server = sshd_factory.start("full2", tmpfs=places)
    for directory in places:
        fill(server, directory)
    h = connect(sshd_factory.spec(server))
    try:
        with pytest.raises(InfraError) as info:
            h.facts  # noqa: B018
        message = str(info.value)
        assert message.startswith("full2: no directory can take command output"), message
        for directory in set(places) - {"/root"}:  # the user's candidates
            assert f"{directory}: write error: No space left on device;" in message + ";", message
    finally:
        h.close()
    listing = server.in_namespace("sh", "-c", "ls -a /dev/shm /tmp /var/tmp").stdout
    assert not re.search(r"azl[0-9a-f]{16}", listing), listing  # no directory left behind


# -- what leaves the tag still ends with the run (28.6) ---------------------------------------
@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_processes_without_the_tag_end_with_the_run(host: Host, sudo: bool) -> None:
    """``sudo`` and ``env -i`` start processes without ``AZL_SHELL`` in their environment;
    they are still the run's (its shell's session) and end when it closes."""
    host.run("sudo -n sleep 621.5 & env -i sleep 622.5 & sudo -n env -i sleep 623.5 &",
             sudo=sudo)
    host.run("env -i sh -c 'sleep 624.5 & exec sleep 625.5' &", sudo=sudo)
    shell = shell_of(host, sudo)
    wait_until(lambda: all(running(f"sleep 62{n}.5") for n in range(1, 6)), "not started")
    host.close()
    wait_until(lambda: not running("sleep 62[1-5].5"), "a process without the tag survived",
               timeout=30)
    wait_until(nothing_left(shell.tag, shell.workdir), "the shell or its directory survived")


@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_processes_without_the_tag_end_after_a_dropped_session(
    host: Host, sshd: SshServer, sudo: bool
) -> None:
    host.run("env -i sleep 626.5 & sudo -n sleep 627.5 &", sudo=sudo)
    lost = shell_of(host, sudo)
    wait_until(lambda: running("sleep 626.5") and running("sleep 627.5"), "not started")
    assert sshd.drop_connections() >= 1
    assert host.check_output("echo back", sudo=sudo) == "back"  # reconnects, sweeps
    wait_until(lambda: not running("sleep 62[67].5"), "the lost session's processes survived",
               timeout=30)
    wait_until(nothing_left(lost.tag, lost.workdir), "the lost shell or its directory survived")


# -- a restarted daemon comes back (28.7) ------------------------------------------------------
def test_sshd_restart_is_survived_within_the_reconnect_budget(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    h = connect(sshd_factory.spec(sshd, reconnect_within=30.0))
    try:
        h.run("sleep 628.5 >/dev/null 2>&1 &")
        lost = shell_of(h)
        sshd.drop_connections()  # the connection is gone and new ones are refused ...
        sshd.stop()
        restart = threading.Thread(target=sshd.restart, args=(5.0,))
        restart.start()  # ... for 5 s
        start = time.monotonic()
        assert h.check_output("echo back") == "back"  # sent again: it never started
        assert 3.0 < time.monotonic() - start < 30.0
        restart.join()
        wait_until(nothing_left(lost.tag, lost.workdir), "the lost session survived")
        # a command that was running when the daemon went is not sent again: it is lost
        errors: list[BaseException] = []

        def run() -> None:
            try:
                h.run("sleep 629.5", timeout=120)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        wait_until(lambda: running("sleep 629.5"), "the command did not start")
        sshd.restart(3.0)
        worker.join(timeout=60)
        assert len(errors) == 1 and isinstance(errors[0], ConnectionLost), errors
        assert h.check_output("echo again") == "again"
    finally:
        h.close()


def test_first_connect_is_tried_again_until_the_daemon_answers(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    spec = sshd_factory.spec(sshd, reconnect_within=30.0)
    sshd.stop()
    threading.Thread(target=sshd.restart, args=(4.0,), daemon=True).start()
    start = time.monotonic()
    h = connect(spec)  # refused for 4 s, then in
    try:
        assert 3.0 < time.monotonic() - start < 30.0
        assert h.check_output("echo in") == "in"
    finally:
        h.close()


def test_reconnect_budget_ends_with_the_cause_and_the_tries(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    spec = sshd_factory.spec(sshd, reconnect_within=3.0)
    sshd.stop()
    start = time.monotonic()
    with pytest.raises(HostUnreachable) as info:
        connect(spec)
    elapsed = time.monotonic() - start
    assert 3.0 <= elapsed < 10.0
    assert "Connection refused" in str(info.value) and "times in 3 s" in str(info.value)


def test_a_refused_login_is_not_tried_again(sshd_factory: SshdFactory, sshd: SshServer) -> None:
    spec = sshd_factory.spec(sshd, user="nobody", reconnect_within=30.0)
    start = time.monotonic()
    with pytest.raises(HostUnreachable, match="authentication failed"):
        connect(spec)
    assert time.monotonic() - start < 10.0

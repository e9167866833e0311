"""The SSH transport against real OpenSSH sshd servers (tests/fixtures/sshd.py).

Every test logs in as a non-root user over key auth on 127.0.0.1; nothing is mocked.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from pytest_azlinux.errors import (
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    HostUnreachable,
    InfraError,
)
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.ssh import SshTransport
from tests.fixtures.sshd import SshdFactory, SshServer, closed_port

pytestmark = pytest.mark.timeout(300)


def connect(spec: HostSpec, timeout: float = 30.0) -> Host:
    host = Host(spec, SshTransport(spec), default_timeout=timeout)
    host.transport.connect()
    return host


@pytest.fixture
def host(sshd_factory: SshdFactory, sshd: SshServer) -> Host:
    h = connect(sshd_factory.spec(sshd))
    yield h  # type: ignore[misc]
    h.close()


def user_processes(user: str, pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-u", user, "-a", "-f", pattern], capture_output=True, text=True)
    return out.stdout.splitlines()


# -- commands ------------------------------------------------------------------------------
def test_runs_as_the_login_user_not_root(host: Host) -> None:
    assert host.check_output("id -un") == host.spec.user
    assert host.check_output("id -u") != "0"


def test_args_are_shell_quoted(host: Host) -> None:
    tricky = ["a b", "$HOME", "it's", ";touch /tmp/azl-pwned", "`id`", "*", ""]
    result = host.run("printf '[%%s]'" + " %s" * len(tricky), *tricky)
    assert result.stdout == "".join(f"[{a}]" for a in tricky)
    assert host.run("echo", *tricky[:3]).stdout == "a b $HOME it's\n"  # appended
    assert not Path("/tmp/azl-pwned").exists()
    assert host.run("printf '%%s=' %s", "x y").stdout == "x y="


def test_stdin_bytes_round_trip(host: Host) -> None:
    data = bytes(range(256)) * 1000 + b"\nAZL0000 E 0\n"  # binary, and a fake end marker
    result = host.run("cat", stdin=data)
    assert result.rc == 0
    assert result.stdout_bytes == data
    assert host.run("wc -l", stdin="one\ntwo\n").stdout.strip() == "2"


def test_env_is_exported_and_quoted(host: Host) -> None:
    out = host.run('printf "%s|%s" "$AZL_A" "$AZL_B"', env={"AZL_A": "a b'c", "AZL_B": "$x"})
    assert out.stdout == "a b'c|$x"


def test_exit_code_stderr_and_check(host: Host) -> None:
    result = host.run("echo out; echo err >&2; exit 7")
    assert (result.rc, result.stdout, result.stderr) == (7, "out\n", "err\n")
    with pytest.raises(CommandFailed) as info:
        host.run("echo broken >&2; exit 3", check=True)
    assert info.value.rc == 3
    assert "broken" in str(info.value) and "exited 3" in str(info.value)
    assert host.run("exit 255").rc == 255  # a command's 255 is its own, not an ssh failure


def test_sudo_runs_as_root_without_password(host: Host) -> None:
    assert host.check_output("id -u", sudo=True) == "0"
    assert host.check_output("id -u") != "0"  # the plain shell is still the user's
    host.write("/root/azl-sudo-test", "secret\n", mode=0o600, sudo=True)
    try:
        assert host.read_text("/root/azl-sudo-test", sudo=True) == "secret\n"
        assert not host.exists("/root/azl-sudo-test")  # the user cannot see into /root
    finally:
        host.run("rm -f /root/azl-sudo-test", sudo=True)


def test_sudo_with_password_and_no_leak(sshd_factory: SshdFactory, sshd: SshServer) -> None:
    password = sshd_factory.users.sudo_password
    pw_user = sshd_factory.users.pw_user
    spec = sshd_factory.spec(sshd, user=pw_user, sudo_password=SecretStr(password))
    h = connect(spec)
    try:
        first = h.run("id -u", sudo=True)
        assert (first.rc, first.stdout) == (0, "0\n")
        assert password not in first.stderr
        assert h.check_output("id -un") == pw_user
    finally:
        h.close()
    assert password not in repr(spec)


def test_sudo_password_never_reaches_the_shell(sshd_factory: SshdFactory, sshd: SshServer) -> None:
    """A sudo_password for a NOPASSWD user must not be typed into the root shell."""
    spec = sshd_factory.spec(sshd, sudo_password=SecretStr("not-a-command-xyz"))
    h = connect(spec)
    try:
        result = h.run("id -u", sudo=True)
        assert result.stdout == "0\n"
        assert "not-a-command-xyz" not in result.stderr
    finally:
        h.close()


def test_wrong_sudo_password_is_a_clear_infra_error(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    pw_user = sshd_factory.users.pw_user
    spec = sshd_factory.spec(sshd, user=pw_user, sudo_password=SecretStr("wrong-pw-123"))
    h = connect(spec)
    try:
        start = time.monotonic()
        with pytest.raises(InfraError) as info:
            h.run("id -u", sudo=True)
        assert time.monotonic() - start < 60  # sudo's own prompt timeout is 5 minutes
        message = str(info.value)
        assert "sudo" in message and pw_user in message
        assert "wrong-pw-123" not in message
        assert h.check_output("id -un") == pw_user  # the plain shell is unaffected
    finally:
        h.close()


def test_sudo_without_rights_is_a_clear_infra_error(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    h = connect(sshd_factory.spec(sshd, user=sshd_factory.users.pw_user))  # needs a password
    try:
        with pytest.raises(InfraError, match="password is required"):
            h.run("true", sudo=True)
    finally:
        h.close()


# -- timeouts --------------------------------------------------------------------------------
@pytest.mark.parametrize("sudo", [False, True], ids=["user", "sudo"])
def test_timeout_kills_the_command_and_host_stays_usable(host: Host, sudo: bool) -> None:
    marker = f"sleep 1{'7' if sudo else '3'}7.5"
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        host.run(marker, timeout=1, sudo=sudo)
    elapsed = time.monotonic() - start
    assert elapsed < 60, f"timeout took {elapsed:.1f} s"  # not the command's 137 s
    assert "timed out after 1 s" in str(info.value)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and subprocess.run(
        ["pgrep", "-f", marker], capture_output=True
    ).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0, (
        "the timed-out command is still running"
    )
    assert host.check_output("echo still-here", sudo=sudo) == "still-here"
    assert host.check_output("echo plain") == "plain"


def test_timeout_of_a_sudo_password_user_kills_the_root_command(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    spec = sshd_factory.spec(
        sshd, user=sshd_factory.users.pw_user,
        sudo_password=SecretStr(sshd_factory.users.sudo_password)
    )
    h = connect(spec)
    try:
        with pytest.raises(CommandTimeout):
            h.run("sleep 171.5", timeout=1, sudo=True)
        time.sleep(1.5)
        assert subprocess.run(["pgrep", "-f", "sleep 171.5"], capture_output=True).returncode != 0
        assert h.check_output("id -u", sudo=True) == "0"
    finally:
        h.close()


def test_large_output_on_both_streams(host: Host) -> None:
    size = 50 * 1024 * 1024
    start = time.monotonic()
    result = host.run(
        f"head -c {size} /dev/zero | tr '\\0' e >&2 & head -c {size} /dev/zero | tr '\\0' o; wait",
        timeout=180,
    )
    assert result.rc == 0
    assert len(result.stdout_bytes) == size and len(result.stderr_bytes) == size
    assert result.stdout_bytes.count(b"o") == size
    assert result.stderr_bytes.count(b"e") == size
    assert time.monotonic() - start < 180
    assert host.check_output("echo after") == "after"


# -- connection drops ----------------------------------------------------------------------------
def test_reconnects_after_the_server_drops_the_connection(host: Host, sshd: SshServer) -> None:
    assert host.check_output("echo one") == "one"
    assert sshd.drop_connections() >= 1
    assert host.check_output("echo two") == "two"  # reconnected once, transparently
    assert sshd.drop_connections() >= 1
    time.sleep(0.5)
    assert host.check_output("echo three", sudo=True) == "three"


def test_drop_while_running_is_connection_lost_then_usable(host: Host, sshd: SshServer) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            host.run("sleep 6", timeout=60)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(1.0)
    sshd.drop_connections()
    worker.join(timeout=20)
    assert not worker.is_alive(), "a dropped connection hung the command"
    assert len(errors) == 1 and isinstance(errors[0], ConnectionLost), errors
    assert host.check_output("echo back") == "back"


# -- host keys ------------------------------------------------------------------------------------
def test_unknown_host_key_is_refused_under_strict(
    sshd_factory: SshdFactory, sshd: SshServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    spec = sshd_factory.spec(sshd, known_hosts=str(empty))
    with pytest.raises(HostKeyError) as info:
        connect(spec)
    message = str(info.value)
    assert "unknown host key" in message and sshd.known_hosts_name in message
    assert str(empty) in message and "accept-new" in message
    assert empty.read_text() == ""  # nothing learnt


def test_changed_host_key_is_refused(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    real = sshd_factory.start("real")
    other = sshd_factory.start("other")
    forged = tmp_path / "forged_known_hosts"
    forged.write_text(f"{real.known_hosts_name} {other.host_key_line}\n")
    for policy in ("strict", "accept-new"):  # accept-new never overrides a pinned key
        spec = sshd_factory.spec(real, known_hosts=str(forged), host_key_policy=policy)
        with pytest.raises(HostKeyError, match="does not match"):
            connect(spec)
    assert forged.read_text() == f"{real.known_hosts_name} {other.host_key_line}\n"


def test_accept_new_writes_known_hosts_then_pins(
    sshd_factory: SshdFactory, sshd: SshServer, tmp_path: Path
) -> None:
    learnt = tmp_path / "sub" / "known_hosts"
    h = connect(sshd_factory.spec(sshd, known_hosts=str(learnt), host_key_policy="accept-new"))
    h.close()
    assert learnt.read_text() == sshd.known_hosts_line()
    # Now pinned: strict accepts it, and a different key under that name is refused.
    connect(sshd_factory.spec(sshd, known_hosts=str(learnt))).close()
    impostor = sshd_factory.start("impostor")
    learnt.write_text(learnt.read_text().replace(sshd.host_key_line, impostor.host_key_line))
    with pytest.raises(HostKeyError, match="does not match"):
        connect(sshd_factory.spec(sshd, known_hosts=str(learnt), host_key_policy="accept-new"))


# -- unreachable -----------------------------------------------------------------------------
def test_unreachable_port_fails_fast_naming_host_address_cause(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    port = closed_port()
    spec = sshd_factory.spec(sshd, name="ghost", port=port)
    start = time.monotonic()
    with pytest.raises(HostUnreachable) as info:
        connect(spec)
    assert time.monotonic() - start < spec.connect_timeout  # refused, not timed out
    message = str(info.value)
    assert "ghost" in message and "127.0.0.1" in message and str(port) in message
    assert "refused" in message.lower()
    assert (info.value.host, info.value.address) == ("ghost", "127.0.0.1")


def test_bad_key_is_an_authentication_error(
    sshd_factory: SshdFactory, sshd: SshServer, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(HostUnreachable,
                       match=f"authentication failed for user {sshd_factory.users.user}"):
        connect(sshd_factory.spec(sshd, identity_file=str(stranger)))


# -- jump hosts ------------------------------------------------------------------------------------
def test_one_jump_host(sshd_factory: SshdFactory) -> None:
    bastion = sshd_factory.start("bastion", extra_config="LogLevel DEBUG1\n")
    inner = sshd_factory.start("inner")
    h = connect(sshd_factory.spec(inner, jump=(bastion,)))
    try:
        assert h.check_output("echo via-jump") == "via-jump"
        assert h.check_output("id -u", sudo=True) == "0"
        assert bastion.connection_pids() and inner.connection_pids()
    finally:
        h.close()
    log = bastion.log.read_text()
    assert f"target 127.0.0.1 port {inner.port}" in log  # the bastion forwarded to inner


def test_two_jump_hosts(sshd_factory: SshdFactory) -> None:
    first = sshd_factory.start("hop1", extra_config="LogLevel DEBUG1\n")
    second = sshd_factory.start("hop2", extra_config="LogLevel DEBUG1\n")
    inner = sshd_factory.start("inner")
    h = connect(sshd_factory.spec(inner, jump=(first, second)))
    try:
        assert h.check_output("hostname") != ""
        assert h.check_output("echo two-hops") == "two-hops"
    finally:
        h.close()
    assert f"target 127.0.0.1 port {second.port}" in first.log.read_text()
    assert f"target 127.0.0.1 port {inner.port}" in second.log.read_text()


def test_target_behind_jump_unreachable(sshd_factory: SshdFactory) -> None:
    bastion = sshd_factory.start("bastion")
    inner = sshd_factory.start("inner")
    spec = sshd_factory.spec(inner, name="hidden", port=closed_port(), jump=(bastion,))
    with pytest.raises(HostUnreachable, match="not reachable through the jump host") as info:
        connect(spec)
    assert info.value.host == "hidden"


def test_jump_host_key_is_verified(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    bastion = sshd_factory.start("bastion")
    inner = sshd_factory.start("inner")
    only_inner = tmp_path / "known_hosts"
    only_inner.write_text(inner.known_hosts_line())
    with pytest.raises(HostKeyError, match="jump host"):
        connect(sshd_factory.spec(inner, jump=(bastion,), known_hosts=str(only_inner)))

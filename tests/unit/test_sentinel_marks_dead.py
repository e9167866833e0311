"""A sentinel check that loses its host marks the host dead (issue 28 #10).

Before, the check swallowed the error: the tests after it passed on reads taken earlier and
each spent a reconnect in its teardown. Real sshd (tests/fixtures/sshd.py), real session and
transport; the sshd is stopped between the connect and the check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pytest_azlinux.errors import HostUnreachable
from pytest_azlinux.gate.sentinels import HostWatch
from pytest_azlinux.gate.settings import SentinelSettings
from pytest_azlinux.gate.windows import SentinelWindows
from pytest_azlinux.session import AzlSession, HostParam
from pytest_azlinux.targets import TargetsFile, parse_targets
from tests.fixtures.sshd import SshdFactory, SshServer


def _login_processes(server: SshServer) -> list[int]:
    """The processes sshd started for the login (its shells), not sshd's own."""
    found: list[int] = []
    todo = [server.proc.pid]
    while todo:
        out = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True)
        for pid in map(int, out.stdout.split()):
            todo.append(pid)
            if Path(f"/proc/{pid}/comm").read_text().strip() != "sshd":
                found.append(pid)
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _session(
    factory: SshdFactory, server: SshServer, suites: str = ""
) -> tuple[AzlSession, HostParam]:
    text = (
        f"targets:\n  t:\n    kind: ssh\n{suites}    defaults:\n"
        f"      user: {factory.users.user}\n      identity_file: {factory.users.identity_file}\n"
        f"      known_hosts: {factory.known_hosts}\n      connect_timeout: 2\n"
        "      reconnect_within: 0\n"
        f"    hosts:\n      - {{name: node, address: {server.address}, port: {server.port}}}\n"
    )
    session = AzlSession(TargetsFile(None, parse_targets(text, "t.yaml")), ["t"],
                         suite_models={"sentinels": SentinelSettings})  # fmt: skip
    session.resolve()
    return session, session.params[0]


def test_check_on_a_host_that_went_away_marks_it_dead(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    session, param = _session(sshd_factory, sshd)
    try:
        session.host(param)  # connected, facts read: what later tests would pass on
        windows = SentinelWindows(session)
        watch = HostWatch(param.id, False)
        sshd.drop_connections()  # the server hangs up on the session...
        sshd.stop()  # ...and refuses the reconnect
        assert windows._check(param, watch) is None
        dead = session.dead(param.id)
        assert isinstance(dead, HostUnreachable), dead
        t0 = time.monotonic()
        with pytest.raises(HostUnreachable):
            session.host(param)  # the next test's fixture: an ERROR at once
        assert time.monotonic() - t0 < 0.5
    finally:
        session.close()


def test_a_check_that_timed_out_leaves_the_host_alive(
    sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    """A slow check is not a lost host: the next test runs. The login's shells are stopped
    (SIGSTOP; sshd itself keeps answering, so the link is alive) for the check, so its 1 s
    timeout is what ends it (a 1 ms timeout alone raced a quick round trip on an idle
    machine), and continued before the next command."""
    session, param = _session(sshd_factory, sshd, "    suites: {sentinels: {timeout: 1}}\n")
    try:
        session.host(param)
        windows = SentinelWindows(session)
        shells = _login_processes(sshd)
        assert shells, "no process of the login under sshd"
        _signal(shells, signal.SIGSTOP)
        try:
            assert windows._check(param, HostWatch(param.id, False)) is None
        finally:
            _signal(shells, signal.SIGCONT)
        assert session.dead(param.id) is None
        assert session.host(param).run("echo up", timeout=10).stdout == "up\n"
    finally:
        session.close()

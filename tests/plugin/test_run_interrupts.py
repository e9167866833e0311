"""A run cut off while it prepares its hosts (issue 28.5): no root, loopback only.

Two hosts that never finish connecting: one accepts TCP and never sends an SSH banner (a
stalled sshd), one never completes the TCP handshake (its listener's queue is full, so the
kernel drops the SYN: a host that vanished). With ``connect_timeout: 30`` each would hold
the run for 30 s; SIGTERM must end it within seconds, every test reported with an outcome.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from xml.etree import ElementTree

import pytest

from pytest_azlinux.report.junit import read_cases

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")


@pytest.fixture
def never_connecting() -> Iterator[tuple[int, int, socket.socket]]:
    """(port without a banner, port whose SYNs are dropped, the first port's listener)."""
    mute = socket.create_server(("127.0.0.1", 0), backlog=8)
    full = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler: list[socket.socket] = []
    while len(filler) < 8:  # until the queue is full: the next SYN goes unanswered
        sock = socket.socket()
        sock.settimeout(0.5)
        try:
            sock.connect(full.getsockname())
        except TimeoutError:
            sock.close()
            break
        filler.append(sock)
    yield mute.getsockname()[1], full.getsockname()[1], mute
    for sock in (mute, full, *filler):
        sock.close()


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_sigterm_while_hosts_connect_ends_at_once(
    pytester: pytest.Pytester, never_connecting: tuple[int, int, socket.socket], xdist: bool
) -> None:
    mute_port, full_port, mute = never_connecting
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  slow:\n    kind: ssh\n    defaults: {connect_timeout: 30, user: x}\n"
        f"    hosts:\n      - {{name: mute, address: 127.0.0.1, port: {mute_port}}}\n"
        f"      - {{name: vanished, address: 127.0.0.1, port: {full_port}}}\n")})
    pytester.makepyfile(test_x="\n".join(f"def test_{i}(azl_host): pass" for i in range(3)))
    args = ["python3", "-m", "pytest", *RUN, "--azl-target=slow", "--azl-junit-dir=reports",
            "--junit-xml=junit.xml"]
    args += ["-n", "2"] if xdist else ["-p", "no:xdist"]
    mute.settimeout(60)
    with open(pytester.path / "out.txt", "w") as out:
        proc = pytester.popen(args, stdout=out, stderr=-2)
    try:
        with contextlib.closing(mute.accept()[0]):  # a host is being connected to
            time.sleep(1.0)  # both connects well under way
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (pytester.path / "out.txt").read_text()
    assert code != 0, output
    # 30 s before (the slowest connect); about 1 s serial and 3 s with workers on an idle
    # machine, the margin is for a loaded one
    limit = 10.0 if xdist else 5.0
    assert elapsed < limit, f"SIGTERM took {elapsed:.1f} s to end the run\n{output}"
    reports = list((pytester.path / "reports").glob("*.xml"))
    assert reports, output
    outcomes = {case.name: case.outcome for f in reports for case in read_cases(f)[1]}
    expected = {f"test_{i}[{h}]" for i in range(3) for h in ("mute", "vanished")}
    assert set(outcomes) == expected, output
    assert set(outcomes.values()) == {"error"}, outcomes


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP and never sends an SSH banner."""
    mute = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield mute.getsockname()[1]
    mute.close()


def test_dead_host_errors_stay_short_and_cheap(pytester: pytest.Pytester, silent_port: int) -> None:
    """Every ERROR of a dead host carries a fresh copy of its first error: the traceback of
    the 30th is as long as the first's (it grew by each raise, and formatting it made each
    ERROR slower than the last). paramiko's own traceback of the failed handshake stays out
    of "Captured log" under xdist."""
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  dead:\n    kind: ssh\n"
        "    defaults: {connect_timeout: 1, reconnect_within: 0, user: x}\n"
        f"    hosts:\n      - {{name: d1, address: 127.0.0.1, port: {silent_port}}}\n")})
    pytester.makepyfile(test_x="import pytest\n@pytest.mark.parametrize('n', range(30))\n"
                               "def test_a(azl_host, n): pass\n")
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=dead", "-p", "no:xdist",
                                           "--tb=long", "--junit-xml=long.xml")
    result.assert_outcomes(errors=30)
    tree = ElementTree.parse(pytester.path / "long.xml")
    lengths = [len((e.text or "").splitlines()) for e in tree.iter("error")]
    assert len(lengths) == 30 and max(lengths) - min(lengths) <= 2, lengths
    assert any("raise HostUnreachable" in (e.text or "") for e in tree.iter("error"))
    shown = pytester.runpytest_subprocess(*RUN, "--azl-target=dead", "-n", "2", "-rA")
    shown.assert_outcomes(errors=30)
    text = shown.stdout.str()
    assert "Captured log" not in text and "Traceback" not in text, text[-3000:]


CLEANED_UP_WORKER = '''
import os, pathlib, time
import pytest

@pytest.fixture
def slow_cleanup():
    yield
    pathlib.Path("cleanup-started").write_text("")
    time.sleep(3)  # ends what the test started on its hosts, in a real run
    pathlib.Path("cleanup-done").write_text("")

def test_long(slow_cleanup):
    pathlib.Path("worker.pid").write_text(str(os.getpid()))
    time.sleep(600)
'''


def test_sigterm_to_the_process_group_lets_a_worker_finish_its_cleanup(
    pytester: pytest.Pytester,
) -> None:
    """SIGTERM to the whole process group reaches a worker twice: the kill itself, and the
    controller passing the interrupt on. The second must not end the worker before its
    cleanup has ended what its test started (a test's ``sleep 600`` outlived the run)."""
    pytester.makepyfile(test_w=CLEANED_UP_WORKER)
    with open(pytester.path / "out.txt", "w") as out:
        proc = pytester.popen(["python3", "-m", "pytest", *RUN, "-n", "1"],
                              stdout=out, stderr=-2)
    try:
        pid_file = pytester.path / "worker.pid"
        _wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", proc)
        # what killpg does, in the order that lost the cleanup: the worker handles its SIGTERM
        # before the controller's interrupt arrives
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        _wait_until((pytester.path / "cleanup-started").exists, proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (pytester.path / "out.txt").read_text()
    assert (pytester.path / "cleanup-done").exists(), output[-3000:]


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended first"
        time.sleep(0.1)

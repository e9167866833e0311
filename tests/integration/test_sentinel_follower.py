"""The kernel sentinel's follower on this machine's real /dev/kmsg (needs root).

The host is this machine through the local transport (``local_access``: its kernel log is
its own). After the probe, the first check reads the log whole and starts the follower;
later checks read only what the follower appended. A record written to /dev/kmsg between
two checks is found by the second; closing the transport ends the follower (and its
unlinked file with it); a follower that is gone is replaced by a whole read.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from pytest_azlinux.gate.sentinels import HostWatch, kernel_findings
from pytest_azlinux.gate.settings import SentinelSettings
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="/dev/kmsg is written as root")


def _host() -> Host:
    return Host(HostSpec(name="here", target="t", access="local"), LocalTransport("here"))


def _follower_file(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/1")


def _warn(tag: str) -> None:
    Path("/dev/kmsg").write_text(f"<4>WARNING: CPU: 0 PID: 1 at azl-follower-test {tag}\n")


def test_follower_reads_only_what_is_new_and_ends_with_the_connection() -> None:
    host, settings = _host(), SentinelSettings()
    watch = HostWatch("here", local_access=True)
    try:
        watch.check(host, settings)  # the probe: no follower yet
        assert watch.probed and "kernel" not in watch.off and watch.follower is None
        watch.check(host, settings)  # the whole read, and the follower starts
        pid = watch.follower
        assert pid is not None
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "cat"
        assert "/azl-kmsg." in _follower_file(pid) and _follower_file(pid).endswith("(deleted)")

        tag = secrets.token_hex(4)
        _warn(tag)
        time.sleep(0.2)
        script = watch.script(settings)
        assert "kmsg-tail" in script and "dd if=/dev/kmsg" not in script.split("else")[0]
        seen = watch.check(host, settings)
        mine = [r for r in seen.kernel if tag in r.text]
        assert len(mine) == 1 and mine[0].facility == 1  # written by user space
        assert [f.what for f in kernel_findings(mine, since_usec=None)] == ["WARNING"]
        assert watch.follower == pid and watch.follower_offset > 0
        again = watch.check(host, settings)
        assert not [r for r in again.kernel if tag in r.text]  # each record once
    finally:
        host.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the follower outlived the connection"


def test_a_follower_that_is_gone_is_replaced_by_a_whole_read() -> None:
    host, settings = _host(), SentinelSettings()
    watch = HostWatch("here", local_access=True)
    try:
        watch.check(host, settings)
        watch.check(host, settings)
        first = watch.follower
        assert first is not None
        os.kill(first, 9)
        time.sleep(0.2)
        tag = secrets.token_hex(4)
        _warn(tag)
        seen = watch.check(host, settings)  # the whole read finds it; a new follower starts
        assert [r for r in seen.kernel if tag in r.text]
        assert watch.follower not in (None, first) and watch.follower_offset == 0
    finally:
        host.close()

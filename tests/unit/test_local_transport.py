"""The local transport (subprocess on this machine): real processes, no root needed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.errors import CommandRefused, CommandTimeout
from pytest_azlinux.transport.local import LocalTransport, tagged_pids


@pytest.fixture(params=[False, True], ids=["files", "pipes"])
def local(request: pytest.FixtureRequest) -> Iterator[LocalTransport]:
    """Either way of capturing output (pipes: what an SELinux machine gets)."""
    transport = LocalTransport("here")
    transport.pipes = request.param
    yield transport
    transport.close()


def running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def test_output_of_a_process_left_behind_is_not_the_commands(local: LocalTransport) -> None:
    start = time.monotonic()
    first = local.run("(sleep 1; echo late) & sleep 620.5 >/dev/null 2>&1 & echo now", timeout=30)
    if local.pipes:  # the command lasts while what it left holds its output open
        assert (first.rc, first.stdout) == (0, "now\nlate\n")
    else:
        assert (first.rc, first.stdout) == (0, "now\n")
    assert time.monotonic() - start < 30  # not held open by what it left
    outputs = set()
    end = time.monotonic() + 2
    while time.monotonic() < end:
        outputs.add(local.run("echo alive", timeout=30).stdout)
    assert outputs == {"alive\n"}


def test_close_ends_what_commands_left(local: LocalTransport) -> None:
    local.run("sleep 621.5 >/dev/null 2>&1 &", timeout=30)
    assert tagged_pids(local.tag)
    local.close()
    assert not tagged_pids(local.tag) and not running("sleep 621.5")


def test_long_script_and_stdin(local: LocalTransport) -> None:
    word = "w" * 500_000
    assert local.run(f"printf %s {word} | wc -c", timeout=60).stdout.strip() == str(len(word))
    data = bytes(range(256)) * 64
    assert local.run("cat", timeout=30, stdin=data).stdout_bytes == data


def test_timeout_kills_the_group_and_nul_is_refused(local: LocalTransport) -> None:
    with pytest.raises(CommandTimeout):
        local.run("sleep 622.5 & sleep 623.5", timeout=0.5)
    assert not running("sleep 62[23].5")
    with pytest.raises(CommandRefused, match="NUL"):
        local.run("echo a\0b", timeout=5)


def test_close_ends_what_dropped_the_tag(local: LocalTransport) -> None:
    """``env -i`` clears AZL_SHELL; the process is still in its command's session."""
    local.run("env -i sleep 633.5 >/dev/null 2>&1 &", timeout=30)
    deadline = time.monotonic() + 10
    while not (left := [p for p in _pids() if _cmdline(p) == b"sleep 633.5"]):
        assert time.monotonic() < deadline, "not started"
        time.sleep(0.05)
    assert not set(left) & set(tagged_pids(local.tag))
    local.close()
    deadline = time.monotonic() + 10
    while any(_cmdline(p) == b"sleep 633.5" for p in left):
        assert time.monotonic() < deadline, "the untagged process survived"
        time.sleep(0.05)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return b""

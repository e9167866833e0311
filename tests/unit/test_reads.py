"""Declared reads: one batch per host and privilege, exact outputs, kept for the run.

Runs the batch script in this machine's real ``sh`` through the local transport.
"""

from __future__ import annotations

import pytest

from pytest_azlinux import reads
from pytest_azlinux.errors import InfraError
from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.reads import Read, ReadSet, batch_script, parse_batch, reads_of
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport
from pytest_azlinux.transport.protocol import CommandResult


class CountingHost(Host):
    """A local host that counts the commands it was asked to run."""

    def __init__(self) -> None:
        super().__init__(HostSpec(name="here", target="t", access="local"), LocalTransport("here"))
        self.commands: list[str] = []

    def run(self, cmd: str, *args: object, **kwargs: object) -> CommandResult:  # type: ignore[override]
        self.commands.append(cmd)
        return super().run(cmd, *args, **kwargs)  # type: ignore[arg-type]


def test_batch_keeps_each_reads_streams_and_exit_code_apart() -> None:
    host = CountingHost()
    scripts = [
        "printf 'a\\nb'",  # no trailing newline
        "echo out; echo err >&2; exit 3",
        "printf '==>azl 0 0 0 0\\n'",  # looks like a header: lengths keep it data
        "printf '%3000s' '' | tr ' ' x",
        "cat",  # no standard input: reads nothing, does not hang
    ]
    result = host.run(batch_script(scripts))
    parsed = parse_batch(result.stdout_bytes, scripts, result.duration)
    assert [(r.rc, r.stdout, r.stderr) for r in parsed] == [
        (0, "a\nb", ""), (3, "out\n", "err\n"), (0, "==>azl 0 0 0 0\n", ""),
        (0, "x" * 3000, ""), (0, "", ""),
    ]


def test_batch_removes_its_temporary_directory() -> None:
    host = CountingHost()
    result = host.run(batch_script(['echo "$d"']))  # the batch's own directory variable
    (read,) = parse_batch(result.stdout_bytes, ['echo "$d"'], 0.0)
    directory = read.stdout.strip()
    assert directory.startswith("/")
    assert host.run("test -e", directory).rc == 1


def test_posture_reads_are_one_round_trip_per_host() -> None:
    host = CountingHost()
    gather.read_optional(host, "/proc/sys/crypto/fips_enabled")
    gather.sshd_presence(host)
    gather.which(host, "openssl")
    after_first = len(host.commands)
    # one batch as the user; the root reads need sudo, which the local host runs as is
    assert after_first <= 2, host.commands
    gather.read_optional(host, "/etc/selinux/config")
    gather.usr_verity_status(host)
    assert len(host.commands) == after_first  # everything else was already fetched


def test_undeclared_read_runs_once_and_is_kept() -> None:
    host = CountingHost()
    reads = reads_of(host)
    assert isinstance(reads, ReadSet) and reads_of(host) is reads
    once = Read.of("echo", "it's")
    assert reads.get(once).stdout == "it's\n"
    assert reads.get(once).stdout == "it's\n"
    assert host.commands.count("echo 'it'\"'\"'s'") == 1


def test_a_transport_that_is_always_root_gets_one_batch() -> None:
    host = CountingHost()
    host.transport.always_root = True  # type: ignore[attr-defined]  # as KubeTransport
    gather.fetch_all(host)
    assert len(host.commands) == 1
    assert gather.read(host, gather.SSHD_T) is not None and len(host.commands) == 1


def test_warm_ups_run_for_a_prepared_host_and_leave_failures_to_the_tests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads, "_WARMUPS", [])
    seen: list[str] = []

    def failing(host: Host) -> None:
        raise InfraError(f"{host.name}: gone")

    reads.warm_on_prepare(lambda host: seen.append(host.name))
    reads.warm_on_prepare(failing)
    reads.warm_on_prepare(failing)  # registered once
    host = CountingHost()
    reads.warm(host)
    assert seen == ["here"] and len(reads._WARMUPS) == 2

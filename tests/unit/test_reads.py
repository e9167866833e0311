"""Host reads: one batch per host and privilege, exact outputs, kept for the run; the one
section splitter; the session's read-ahead.

Runs the batch script in this machine's real ``sh`` through the local transport.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from pytest_azlinux.errors import InfraError
from pytest_azlinux.facts import FACTS
from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.reads import HostReads, Read, Section, batch_script, parse_batch, split_sections
from pytest_azlinux.session import AzlSession, HostParam
from pytest_azlinux.targets import HostSpec, TargetsFile, parse_targets
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
    reads = host.reads
    assert isinstance(reads, HostReads) and host.reads is reads
    once = Read.of("echo", "it's")
    assert reads.get(once).stdout == "it's\n"
    assert reads.get(once).stdout == "it's\n"
    assert host.commands.count("echo 'it'\"'\"'s'") == 1


def test_a_transport_that_is_always_root_gets_one_batch() -> None:
    host = CountingHost()
    host.transport.always_root = True  # type: ignore[attr-defined]  # as KubeTransport
    host.reads.fetch(gather.READS)
    assert len(host.commands) == 1
    assert gather.read(host, gather.SSHD_T) is not None and len(host.commands) == 1


def test_facts_are_a_read_kept_for_the_run() -> None:
    host = CountingHost()
    assert host.facts.kernel and host.reads.results[FACTS].rc == 0
    assert host.commands == [FACTS.script]


def test_get_all_fetches_what_is_missing_in_one_round_trip() -> None:
    host = CountingHost()
    one, two, three = Read("echo 1"), Read("echo 2"), Read("echo 3")
    host.reads.get(one)
    assert [r.stdout for r in host.reads.get_all([one, two, three])] == ["1\n", "2\n", "3\n"]
    assert len(host.commands) == 2  # echo 1 alone, then one batch of the other two


def test_fresh_reads_run_every_time_and_are_not_kept() -> None:
    host = CountingHost()
    clock = Read("cat /proc/uptime")
    host.reads.fresh(clock)
    host.reads.fresh(clock, timeout=5)
    assert host.commands.count(clock.script) == 2 and clock not in host.reads.results


def test_split_sections_with_and_without_names() -> None:
    # /sys/fs/selinux/enforce prints "1" without a newline; "==> x" inside content is data
    text = "==> enforce\n1==> getenforce\nEnforcing\n==> config\nA ==> b\n"
    found = split_sections(text, ("enforce", "getenforce", "config"))
    assert {k: s.text for k, s in found.items()} == {
        "enforce": "1", "getenforce": "Enforcing", "config": "A ==> b"}
    # without names: every "==> NAME ARGS" line, lines kept as printed (an empty last one too)
    assert split_sections("x\n==> up 12.5\n==> kmsg\na;b\n\n==> end\n") == {
        "up": Section("12.5", ()), "kmsg": Section("", ("a;b", "")), "end": Section("", ())}


def _session_with_local_host() -> tuple[AzlSession, HostParam]:
    targets = parse_targets("targets:\n  t:\n    kind: local\n", "t.yaml")
    session = AzlSession(TargetsFile(None, targets), ["t"])
    session.resolve()
    return session, session.params[0]


def test_read_ahead_runs_declared_reads_in_rounds_while_preparing() -> None:
    session, param = _session_with_local_host()
    first, second = Read("echo first"), Read("echo second")

    def source(host: Host) -> list[Read]:
        # the second read depends on the first one's answer: declared once it is in
        done = host.reads.results.get(first)
        return [first] + ([second] if done is not None and done.stdout == "first\n" else [])

    calls: list[str] = []

    def counted(host: Host) -> list[Read]:
        calls.append(host.name)
        return source(host)

    session.read_ahead(counted)
    session.read_ahead(counted)  # declared once
    try:
        host = session.host(param)
        assert host.reads.results[second].stdout == "second\n"
        assert len(calls) == 3  # first; first and second; nothing new: done
    finally:
        session.close()


def test_a_read_ahead_that_fails_leaves_the_host_alive() -> None:
    session, param = _session_with_local_host()
    ran: list[str] = []

    def gone(host: Host) -> list[Read]:
        ran.append(host.name)
        raise InfraError(f"{host.name}: gone")

    session.read_ahead(gone)
    try:
        host = session.host(param)
        assert ran == [host.name] and session.dead(param.id) is None
        assert list(host.reads.results) == [FACTS]
    finally:
        session.close()


class MeetingHost(CountingHost):
    """A local host whose commands wait at a barrier first: two of them complete only when
    both are running at once."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    def run(self, cmd: str, *args: object, **kwargs: object) -> CommandResult:  # type: ignore[override]
        self.barrier.wait()  # BrokenBarrierError after the timeout: the reads did not overlap
        return super().run(cmd, *args, **kwargs)


def test_hosts_read_their_facts_at_the_same_time() -> None:
    """The session's workers read their hosts' facts concurrently: one host's read does not
    hold the others' (functools.cached_property on Python 3.11 did: one lock per class)."""
    barrier = threading.Barrier(2, timeout=10)
    hosts = [MeetingHost(barrier), MeetingHost(barrier)]
    with ThreadPoolExecutor(2) as pool:
        kernels = list(pool.map(lambda h: h.facts.kernel, hosts))
    assert all(kernels) and not barrier.broken
    assert [h.facts for h in hosts] == [h.facts for h in hosts]  # read once, kept
    assert all(h.commands == [FACTS.script] for h in hosts)

"""Progress of host preparation in real runs (pytester subprocesses) against an ssh target of
several hosts: a real sshd on loopback reached under twelve host names, and one host whose
port refuses. pytester's output is not a terminal, so progress comes as whole lines (the
log form); ``-q`` silences it; ``-p no:terminal`` must not crash; under xdist the
controller reports."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.sshd import SshdFactory, SshServer, closed_port
from tests.plugin.test_plugin import RUN, ssh_target, write_targets

pytestmark = pytest.mark.timeout(600)
NAMES = [f"node-{n:02d}" for n in range(12)]
TESTS = "def test_echo(azl_host):\n    assert azl_host.check_output('echo', 'hi') == 'hi'\n"
LINE = re.compile(r"^azl: preparing hosts(?P<xdist> \(xdist workers\))?: (?P<done>\d+) of 13"
                  r" · (?P<counts>[^·]+)(?: · \d+ s| in [\d.]+ s)")


@pytest.fixture
def fleet(pytester: pytest.Pytester, sshd_factory: SshdFactory, sshd: SshServer) -> None:
    hosts = {name: (sshd.address, sshd.port) for name in NAMES}
    hosts["node-down"] = ("127.0.0.1", closed_port())
    write_targets(pytester, ssh_target(sshd_factory, "fleet", hosts))
    pytester.makepyfile(test_fleet=TESTS)


def progress_lines(result: pytest.RunResult) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, result.outlines) if m]


@pytest.mark.usefixtures("fleet")
def test_a_log_shows_preparation_as_it_goes(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--azl-target=fleet", *RUN)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # node-down
    lines = progress_lines(result)
    done = [int(m["done"]) for m in lines]
    assert len(lines) >= 4 and done == sorted(done), result.stdout.str()
    assert lines[-1].group(0).startswith("azl: preparing hosts: 13 of 13 · "
                                         "12 facts read, 1 unreachable in ")
    # before the first test's line
    first_test = next(i for i, line in enumerate(result.outlines) if "test_fleet.py" in line)
    assert result.outlines.index(lines[-1].string) < first_test


@pytest.mark.usefixtures("fleet")
def test_quiet_runs_and_runs_without_a_terminal_say_nothing(pytester: pytest.Pytester) -> None:
    quiet = pytester.runpytest_subprocess("--azl-target=fleet", "-q", *RUN)
    assert quiet.ret == pytest.ExitCode.TESTS_FAILED
    assert "12 passed, 1 error" in quiet.stdout.str()
    assert not any("azl: preparing hosts" in line for line in quiet.outlines)
    # (node-down left out: the plugin's one-line infrastructure errors ask for -v's value,
    # which -p no:terminal removes; that is not the progress output's doing)
    bare = pytester.runpytest_subprocess("--azl-target=fleet", "-p", "no:terminal",
                                         "-k", "not down", *RUN)
    assert bare.ret == pytest.ExitCode.OK, bare.stderr.str()
    assert "INTERNALERROR" not in bare.stdout.str() + bare.stderr.str()


@pytest.mark.usefixtures("fleet")
def test_under_xdist_the_controller_reports(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--azl-target=fleet", "-n", "2", *RUN)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    lines = progress_lines(result)
    assert lines and all(m["xdist"] for m in lines), result.stdout.str()
    assert lines[-1].group(0).startswith("azl: preparing hosts (xdist workers): 13 of 13 · "
                                         "12 facts read, 1 unreachable in ")
    assert len(lines) >= 4

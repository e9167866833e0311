"""The plugin's core behaviour on ``--azl-target local``: runs without root.

Each test runs a real pytest in a subprocess (pytester) against this machine.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.report.junit import read_cases

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")


def test_bad_suite_settings_stop_the_run_at_start(pytester: pytest.Pytester) -> None:
    """A registered suite's bad value: exit 4, one line naming target and field, before any
    test ran (it used to show up as a traceback in every test)."""
    pytester.makeconftest("""
        from pydantic import Field
        from pytest_azlinux.settings import SuiteSettings
        from pytest_azlinux.suite_table import Suite

        class Demo(SuiteSettings):
            suite = "demo"
            repetitions: int = Field(default=3, ge=1)

        def pytest_azl_suites():
            return [Suite("demo", settings="conftest:Demo")]
    """)
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  here:\n    kind: local\n    suites:\n      demo: {repetitions: 0}\n")})
    pytester.makepyfile(test_x="def test_a(azl_host):\n    open('ran', 'w').close()\n")
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=here")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "suites.demo" in line]
    assert errors == ["ERROR: target 'here': field 'suites.demo.repetitions': "
                      "Input should be greater than or equal to 1"]
    assert not (pytester.path / "ran").exists()


def test_targets_file_with_a_space_keeps_the_rootdir(pytester: pytest.Pytester) -> None:
    """``--azl-targets-file PATH`` and ``--azl-targets-file=PATH`` collect the same tests
    (the two-word form used to make PATH's directory the rootdir, losing testpaths)."""
    pytester.makeini("[pytest]\ntestpaths = suites\n")
    suites = pytester.mkdir("suites")
    (suites / "test_s.py").write_text("def test_s(azl_host):\n    pass\n")
    (pytester.path / "test_other.py").write_text("def test_other():\n    pass\n")
    elsewhere = pytester.mkdir("etc-azl")
    targets = elsewhere / "targets.yaml"
    targets.write_text("targets:\n  here:\n    kind: local\n")
    spaced = pytester.runpytest_subprocess(*RUN, "--azl-target", "here", "--azl-targets-file",
                                           str(targets), "--collect-only", "-q")
    joined = pytester.runpytest_subprocess(*RUN, "--azl-target=here",
                                           f"--azl-targets-file={targets}", "--collect-only", "-q")
    assert joined.ret == spaced.ret == 0
    assert "suites/test_s.py::test_s[localhost]" in joined.outlines
    ids = [line for line in spaced.outlines if "::" in line]
    assert ids == [line for line in joined.outlines if "::" in line]


def test_unwritable_report_dir_is_a_usage_error_at_start(pytester: pytest.Pytester) -> None:
    blocker = pytester.path / "not-a-dir"
    blocker.write_text("a file where the report directory should be")
    pytester.makepyfile(test_x="def test_a(azl_host):\n    open('ran', 'w').close()\n")
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local",
                                           f"--azl-junit-dir={blocker}/reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(f"report directory {blocker}/reports is not writable" in line
               for line in result.errlines)
    assert not (pytester.path / "ran").exists()


def test_sigterm_writes_reports_and_marks_the_running_test(pytester: pytest.Pytester) -> None:
    """SIGTERM (how CI cancels a job) is handled like Ctrl-C: finished results are kept, the
    test that was running is an ERROR saying so, never passed."""
    pytester.makepyfile(test_x="""
        import time
        def test_1(azl_host): pass
        def test_2(azl_host): pass
        def test_3_slow(azl_host):
            open('started', 'w').close()
            time.sleep(120)
        def test_4(azl_host): pass
    """)
    with open(pytester.path / "out.txt", "w") as out:
        proc = pytester.popen(["python3", "-m", "pytest", *RUN, "--azl-target=local",
                               "--azl-junit-dir=reports", "-p", "no:xdist"],
                              stdout=out, stderr=-2)
    deadline = time.monotonic() + 120
    while not (pytester.path / "started").exists():
        assert proc.poll() is None, (pytester.path / "out.txt").read_text()
        assert time.monotonic() < deadline, "the slow test never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    files = list((pytester.path / "reports").glob("*.xml"))
    assert len(files) == 1, (pytester.path / "out.txt").read_text()
    cases = {c.name: c for c in read_cases(files[0])[1]}
    assert {n: c.outcome for n, c in cases.items()} == {
        "test_1[localhost]": "passed", "test_2[localhost]": "passed",
        "test_3_slow[localhost]": "error", "test_4[localhost]": "error",
    }
    assert "interrupt" in cases["test_3_slow[localhost]"].message


def test_infra_error_is_one_line_and_its_cause_once(pytester: pytest.Pytester) -> None:
    """An unreachable host: one line per test, the cause once per host in the summary;
    the traceback only with --tb=long."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts, never speaks SSH: the banner wait times out
    port = silent.getsockname()[1]
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  mute:\n    kind: ssh\n"
        "    defaults: {connect_timeout: 1, reconnect_within: 0, user: x}\n"
        f"    hosts:\n      - {{name: m1, address: 127.0.0.1, port: {port}}}\n")})
    pytester.makepyfile(test_x="\n".join(f"def test_{i}(azl_host): pass" for i in range(5)))
    try:
        short = pytester.runpytest_subprocess(*RUN, "--azl-target=mute")
        long = pytester.runpytest_subprocess(*RUN, "--azl-target=mute", "--tb=long")
    finally:
        silent.close()
    assert short.ret == pytest.ExitCode.TESTS_FAILED
    short.assert_outcomes(errors=5)
    assert len(short.outlines) < 60, "\n".join(short.outlines)
    assert [line for line in short.outlines if "Traceback" in line or "raise " in line] == []
    assert sum(line.startswith("m1: host m1 (127.0.0.1) unreachable")
               for line in short.outlines) == 1
    assert any("raise HostUnreachable" in line for line in long.outlines)


def _dead_host_run(pytester: pytest.Pytester, tests: int, *args: str) -> tuple[
    pytest.RunResult, float
]:
    """``tests`` tests of a host nothing listens for; the run's result and its CPU seconds."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  dead:\n    kind: ssh\n"
        "    defaults: {connect_timeout: 2, reconnect_within: 0, user: x}\n"
        f"    hosts:\n      - {{name: d1, address: 127.0.0.1, port: {port}}}\n")})
    pytester.makepyfile(test_x=(
        "import pytest\n"
        f"@pytest.mark.parametrize('i', range({tests}))\n"
        "def test_a(azl_host, i): pass\n"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=dead", "-q", *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_errors_of_a_dead_host_format_no_traceback(pytester: pytest.Pytester) -> None:
    """An ERROR of a dead host is one line: pytest's traceback formatting is not done for
    it (it was done and thrown away, ~0.1 s of CPU per test, more with every test, as the
    re-raised error's traceback grew). The traceback still comes with --tb=long."""
    pytester.makeconftest("""
        import _pytest.nodes

        formatted = []
        real = _pytest.nodes.Node._repr_failure_py

        def counting(self, *args, **kwargs):  # a spy on pytest's own formatting
            formatted.append(self.nodeid)
            return real(self, *args, **kwargs)

        _pytest.nodes.Node._repr_failure_py = counting

        def pytest_sessionfinish():
            open("formatted.txt", "w").write(str(len(formatted)))
    """)
    _, few_cpu = _dead_host_run(pytester, 1)
    many, many_cpu = _dead_host_run(pytester, 150)
    many.assert_outcomes(errors=150)
    assert (pytester.path / "formatted.txt").read_text() == "0"
    per_test = (many_cpu - few_cpu) / 149
    assert per_test < 0.02, f"{per_test * 1000:.0f} ms of CPU per ERROR test"
    long, _ = _dead_host_run(pytester, 3, "--tb=long")
    long.assert_outcomes(errors=3)
    assert (pytester.path / "formatted.txt").read_text() == "3"
    assert any("raise HostUnreachable" in line or "raise self._dead" in line
               for line in long.outlines)


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_infra_errors_without_the_terminal_plugin(pytester: pytest.Pytester,
                                                  workers: tuple[str, ...]) -> None:
    """``-p no:terminal`` (output read from files only) removes ``--tb`` and ``-v``: an
    infrastructure error is still an ERROR and the tests after it run (it used to be an
    INTERNALERROR, exit 3, ending the run)."""
    pytester.makepyfile(test_x="""
        def test_timeout(azl_host):
            azl_host.run("sleep 5", timeout=0.3)

        def test_after(azl_host):
            assert azl_host.check_output("echo ok") == "ok"
    """)
    result = pytester.runpytest_subprocess(*RUN, "-p", "no:terminal", "--azl-target=local",
                                           "--azl-junit-dir=reports", *workers)
    out = "\n".join(result.outlines + result.errlines)
    assert "INTERNALERROR" not in out, out
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    (path,) = (pytester.path / "reports").glob("*.xml")
    cases = {c.name: c for c in read_cases(path)[1]}
    assert cases["test_after[localhost]"].outcome == "passed"
    assert cases["test_timeout[localhost]"].outcome == "error"
    assert cases["test_timeout[localhost]"].message.startswith("CommandTimeout: ")


@contextlib.contextmanager
def _mute_hosts(pytester: pytest.Pytester, count: int, connect_timeout: int) -> Iterator[
    list[float]
]:
    """Target ``mute``: ``count`` hosts on one port that accepts and never speaks SSH (each
    connect waits out the timeout). Yields the times of the connects, as they come."""
    accepted: list[float] = []
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(32)
    port = silent.getsockname()[1]
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = silent.accept()
            except OSError:
                return
            accepted.append(time.monotonic())
            conns.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    hosts = "".join(f"      - {{name: m{i}, address: 127.0.0.1, port: {port}}}\n"
                    for i in range(count))
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  mute:\n    kind: ssh\n"
        f"    defaults: {{connect_timeout: {connect_timeout}, reconnect_within: 0, user: x}}\n"
        f"    hosts:\n{hosts}")})
    try:
        yield accepted
    finally:
        silent.close()
        for conn in conns:
            conn.close()


def test_hosts_are_prepared_concurrently(pytester: pytest.Pytester) -> None:
    """Six hosts that never answer: all six connects start together (the run costs one
    connect timeout, not six in a row)."""
    pytester.makepyfile(test_x="def test_a(azl_host): pass\n")
    with _mute_hosts(pytester, 6, connect_timeout=3) as accepted:
        result = pytester.runpytest_subprocess(*RUN, "--azl-target=mute", "-p", "no:xdist")
    result.assert_outcomes(errors=6)
    assert len(accepted) == 6
    assert max(accepted) - min(accepted) < 3, "connects ran one after another"


def test_xdist_workers_prepare_their_hosts_a_batch_at_a_time(pytester: pytest.Pytester) -> None:
    """-n 2, twelve hosts that never answer: each worker is given batches of three hosts
    and connects to a batch's three at once (four timeouts in a row per worker, not six)."""
    pytester.makepyfile(test_x="def test_a(azl_host): pass\ndef test_b(azl_host): pass\n")
    with _mute_hosts(pytester, 12, connect_timeout=2) as accepted:
        result = pytester.runpytest_subprocess(*RUN, "--azl-target=mute", "-n", "2")
    result.assert_outcomes(errors=24)
    assert len(accepted) == 12  # one connect per host, its second test fails at once
    accepted.sort()
    # Connects come in groups of three (one batch each) a connect timeout apart.
    groups = [[accepted[0]]]
    for at in accepted[1:]:
        if at - groups[-1][0] < 1.0:
            groups[-1].append(at)
        else:
            groups.append([at])
    assert sorted(len(g) for g in groups) in ([3, 3, 3, 3], [6, 6], [3, 3, 6]), groups
    assert accepted[-1] - accepted[0] < 2 * 2 + 1.5, "batches ran one host after another"


def test_azl_target_comes_from_the_item_not_the_node_id(pytester: pytest.Pytester) -> None:
    """Two targets with a host of the same name: each test sees its own target."""
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  a:\n    kind: local\n    description: first\n"
        "  b:\n    kind: local\n    description: second\n")})
    pytester.makepyfile(test_x="""
        def test_t(azl_host, azl_target):
            assert azl_host.spec.target == azl_target.name
            with open("seen", "a") as out:
                print(azl_target.name, azl_target.config.description, file=out)
    """)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=a,b", "-p", "no:xdist")
    result.assert_outcomes(passed=2)
    seen = (pytester.path / "seen").read_text().splitlines()
    assert sorted(seen) == ["a first", "b second"]


def test_escape_and_other_fixtures_reach_users_own_suites(pytester: pytest.Pytester) -> None:
    """The plugin registers every fixture module: a user's suite needs no imports."""
    pytester.makepyfile(test_x="def test_f(): pass\n")
    result = pytester.runpytest_subprocess(*RUN, "--fixtures")
    listed = "\n".join(result.outlines)
    for name in ("azl_escape_settings", "azl_escape_runner", "azl_profile", "azl_node",
                 "azl_cluster", "azl_selinux", "azl_cleanup", "azl_host"):
        assert f"{name} " in listed or f"{name}\n" in listed, name


def test_local_target_runs_without_root(pytester: pytest.Pytester) -> None:
    """The non-root path: the local target, commands and facts, a per-image report."""
    pytester.makepyfile(test_x="""
        def test_run(azl_host, azl_image):
            assert azl_host.run("echo hi").stdout == "hi\\n"
            assert azl_image.image_key
    """)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local", "--azl-junit-dir=r")
    result.assert_outcomes(passed=1)
    assert len(list(Path(pytester.path / "r").glob("*.xml"))) == 1


def test_crashed_xdist_worker_is_named_with_its_host(pytester: pytest.Pytester) -> None:
    """A worker that dies mid-test: the report names the worker and the test's host
    (it used to say only ``error in ???``)."""
    pytester.makepyfile(test_x="""
        import os
        def test_dies(azl_host):
            os._exit(3)
        def test_fine(azl_host):
            pass
    """)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local", "-n", "2",
                                           "--azl-junit-dir=r")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (report,) = Path(pytester.path / "r").glob("*.xml")
    cases = {c.name: c for c in read_cases(report)[1]}
    dead = cases["test_dies[localhost]"]
    assert dead.outcome == "error"
    assert "crashed" in dead.message and "worker 'gw" in dead.message, dead.message
    assert "(host localhost)" in dead.message
    assert "???" not in dead.message

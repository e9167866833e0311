"""The plugin end to end through pytester subprocess runs against real sshd hosts.

Hosts are real OpenSSH servers on loopback (tests/fixtures/sshd.py); hosts meant to show
different images run sshd in a private mount namespace with another /etc/os-release.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.report.junit import read_cases
from tests.fixtures.sshd import SshdFactory, SshServer, closed_port

pytestmark = pytest.mark.timeout(600)
DATA = Path(__file__).parent.parent / "data" / "os-release"
AZL3 = (DATA / "azurelinux-3.0.os-release").read_text()
MARINER2 = (DATA / "mariner-2.0.os-release").read_text()
RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")


def ssh_target(
    factory: SshdFactory, name: str, hosts: dict[str, tuple[str, int]], extra: str = "",
    user: str | None = None,
) -> str:
    lines = [
        f"  {name}:", "    kind: ssh", "    defaults:",
        f"      user: {user or factory.users.user}",
        f"      identity_file: {factory.users.identity_file}",
        f"      known_hosts: {factory.known_hosts}",
        "      connect_timeout: 2",
        "      reconnect_within: 0",  # one connect per host: these tests count them
    ]
    lines += [f"      {line}" for line in extra.splitlines() if line]
    lines.append("    hosts:")
    for host, (address, port) in hosts.items():
        lines.append(f"      - {{name: {host}, address: {address}, port: {port}}}")
    return "\n".join(lines) + "\n"


def write_targets(pytester: pytest.Pytester, *targets: str) -> Path:
    path = pytester.path / "azl-targets.yaml"
    path.write_text("targets:\n" + "".join(targets))
    return path


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """test id -> PASSED/FAILED/ERROR/SKIPPED from a -rA style verbose run."""
    found: dict[str, str] = {}
    for line in result.outlines:
        m = re.match(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL)", line)
        if m:
            found.setdefault(m.group(1).split("::", 1)[1], m.group(2))
    return found


def report_cases(report_dir: Path) -> dict[str, list[tuple[str, str, str | None]]]:
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for path in sorted(report_dir.glob("*.xml")):
        _, cases = read_cases(path)
        out[path.stem] = sorted((c.name, c.outcome, c.host) for c in cases)
    return out


@pytest.fixture
def three_hosts(sshd_factory: SshdFactory) -> dict[str, SshServer]:
    return {n: sshd_factory.start(n) for n in ("alpha", "beta", "gamma")}


# -- parametrization --------------------------------------------------------------------------
def test_ids_are_host_names_pairs_ring_and_target(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, three_hosts: dict[str, SshServer]
) -> None:
    write_targets(pytester, ssh_target(
        sshd_factory, "fleet", {n: (s.address, s.port) for n, s in three_hosts.items()}
    ))
    pytester.makepyfile(test_ids="""
        def test_one(azl_host):
            assert azl_host.check_output("id -un").startswith("azlt")  # the sshd test user

        def test_pair(azl_host_pair):
            client, server = azl_host_pair
            assert client.name != server.name

        def test_all(azl_hosts):
            assert sorted(h.name for h in azl_hosts) == ["alpha", "beta", "gamma"]

        def test_plain():
            pass
    """)
    result = pytester.runpytest_subprocess("--azl-target", "fleet", "-v", *RUN)
    assert result.ret == 0, result.stdout.str()
    assert outcomes(result) == {
        "test_one[alpha]": "PASSED", "test_one[beta]": "PASSED", "test_one[gamma]": "PASSED",
        "test_pair[alpha->beta]": "PASSED", "test_pair[beta->gamma]": "PASSED",
        "test_pair[gamma->alpha]": "PASSED", "test_all[fleet]": "PASSED",
        "test_plain": "PASSED",
    }


def test_pairing_all_and_star(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, three_hosts: dict[str, SshServer]
) -> None:
    write_targets(pytester, ssh_target(
        sshd_factory, "fleet", {n: (s.address, s.port) for n, s in three_hosts.items()}
    ))
    pytester.makepyfile(test_p="def test_pair(azl_host_pair): pass\n")
    star = pytester.runpytest_subprocess("--azl-target=fleet", "--azl-pairing=star",
                                         "--collect-only", "-q", *RUN)
    assert sorted(re.findall(r"\[(.*?)\]", star.stdout.str())) == ["alpha->beta", "alpha->gamma"]
    every = pytester.runpytest_subprocess("--azl-target=fleet", "--azl-pairing=all",
                                          "--collect-only", "-q", *RUN)
    assert len(re.findall(r"test_pair\[", every.stdout.str())) == 6


# -- unreachable hosts ------------------------------------------------------------------------
class SilentServer:
    """Accepts TCP connections on loopback and never answers: an SSH banner timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_unreachable_host_errors_once_fast_and_others_go_on(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, sshd: SshServer,
    silent_server: SilentServer,
) -> None:
    refused = closed_port()
    write_targets(pytester, ssh_target(sshd_factory, "mixed", {
        "up": (sshd.address, sshd.port),
        "mute": ("127.0.0.1", silent_server.port),
        "down": ("127.0.0.1", refused),
    }))
    pytester.makepyfile(test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_echo(azl_host, n):
            assert azl_host.check_output("echo", n) == str(n)
    """)
    start = time.monotonic()
    result = pytester.runpytest_subprocess("--azl-target=mixed", "-v", *RUN)
    elapsed = time.monotonic() - start
    found = outcomes(result)
    assert [found[f"test_echo[up-{n}]"] for n in range(5)] == ["PASSED"] * 5
    assert [found[f"test_echo[mute-{n}]"] for n in range(5)] == ["ERROR"] * 5
    assert [found[f"test_echo[down-{n}]"] for n in range(5)] == ["ERROR"] * 5
    # One connection attempt per host: the silent host costs one 2 s banner timeout, not five.
    assert silent_server.accepted == 1
    assert elapsed < 15, f"took {elapsed:.1f} s"
    text = result.stdout.str()
    assert f"host down (127.0.0.1) unreachable: host down: connect to 127.0.0.1:{refused}" in text
    assert "Connection refused" in text
    assert "host mute (127.0.0.1) unreachable" in text
    assert result.ret == 1
    assert "5 passed, 10 errors" in text


# -- per-image reports ---------------------------------------------------------------------------
IMAGE_TESTS = """
    import pytest

    def test_image(azl_host, azl_image, azl_metric):
        azl_metric("latency_ms", 1.5, "ms", better="lower")
        azl_metric("score", 42)
        assert azl_image.os_id in ("azurelinux", "mariner")

    def test_fails_on_mariner(azl_image):
        assert azl_image.os_id != "mariner", "found mariner"

    def test_times_out(azl_host):
        azl_host.run("sleep 5", timeout=0.5)

    @pytest.mark.azl_destructive
    def test_destroys(azl_host):
        pass

    @pytest.mark.azl_requires(hosts=3)
    def test_needs_three(azl_host):
        pass

    @pytest.mark.azl_requires(kinds=["cluster"])
    def test_needs_cluster(azl_hosts):
        pass

    def test_unbound():
        pass
"""


@pytest.fixture
def two_images(sshd_factory: SshdFactory) -> dict[str, SshServer]:
    return {
        "azl": sshd_factory.start("azl", os_release=AZL3),
        "mar": sshd_factory.start("mar", os_release=MARINER2),
    }


def test_per_image_reports_properties_metrics_and_outcomes(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, two_images: dict[str, SshServer]
) -> None:
    write_targets(pytester, ssh_target(
        sshd_factory, "pool", {n: (s.address, s.port) for n, s in two_images.items()}
    ))
    pytester.makepyfile(test_img=IMAGE_TESTS)
    result = pytester.runpytest_subprocess("--azl-target=pool", "-v", "-rs", *RUN)
    found = outcomes(result)
    assert found["test_image[azl]"] == found["test_image[mar]"] == "PASSED"
    assert found["test_fails_on_mariner[azl]"] == "PASSED"
    assert found["test_fails_on_mariner[mar]"] == "FAILED"
    assert found["test_times_out[azl]"] == "ERROR"  # infra error in the call phase
    assert found["test_destroys[azl]"] == "SKIPPED"
    text = result.stdout.str()
    assert "destructive: changes the target; run with --azl-allow-destructive" in text
    assert "needs at least 3 hosts; target pool has 2" in text
    assert "needs a target of kind cluster; pool is ssh" in text

    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.glob("*.xml")) == [
        "azurelinux-3.0.20251021.xml", "mariner-2.0.20230811.xml", "target-pool.xml",
    ]
    props, cases = read_cases(reports / "azurelinux-3.0.20251021.xml")
    suite = props["azurelinux-3.0.20251021"]
    assert suite["azl.image"] == "azurelinux-3.0.20251021"
    assert (suite["azl.os_id"], suite["azl.version"], suite["azl.variant"]) == (
        "azurelinux", "3.0.20251021", "default")
    assert suite["azl.kernels"] == os.uname().release  # the shared kernel of this machine
    assert (suite["azl.target"], suite["azl.hosts"]) == ("pool", "azl")
    assert suite["azl.plugin_version"] and re.match(r"\d{4}-\d\d-\d\dT", suite["azl.started"])
    by_name = {c.name: c for c in cases}
    image = by_name["test_image[azl]"]
    assert image.host == "azl" and image.outcome == "passed"
    assert {(m.name, m.value, m.unit, m.better) for m in image.metrics} == {
        ("latency_ms", 1.5, "ms", "lower"), ("score", 42.0, "", "higher")}
    assert by_name["test_times_out[azl]"].outcome == "error"
    assert "timed out after 0.5 s" in by_name["test_times_out[azl]"].message
    assert by_name["test_destroys[azl]"].outcome == "skipped"
    props, cases = read_cases(reports / "mariner-2.0.20230811.xml")
    assert props["mariner-2.0.20230811"]["azl.os_id"] == "mariner"
    mariner = {c.name: c for c in cases}
    assert mariner["test_fails_on_mariner[mar]"].outcome == "failed"
    assert "found mariner" in mariner["test_fails_on_mariner[mar]"].message
    _, cases = read_cases(reports / "target-pool.xml")
    assert sorted(c.name for c in cases) == ["test_needs_cluster[pool]", "test_unbound"]
    # the verdict: one line per image with its counts, then where the reports are
    assert re.search(r"^mariner-2\.0\.20230811: FAIL 1 · ERROR 1 · PASS 1 · SKIP 2$", text, re.M)
    assert f"reports: {reports}" in text


def test_xdist_same_cases_and_one_worker_per_host(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, two_images: dict[str, SshServer]
) -> None:
    servers = dict(two_images)
    servers["azl2"] = sshd_factory.start("azl2", os_release=AZL3)
    write_targets(pytester, ssh_target(
        sshd_factory, "pool", {n: (s.address, s.port) for n, s in servers.items()}
    ))
    pytester.makepyfile(test_img=IMAGE_TESTS)
    pytester.makepyfile(test_workers="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_where(azl_host, n):
            with open(os.environ["AZL_WORKER_LOG"], "a") as fh:
                fh.write(f"{azl_host.name} {os.environ.get('PYTEST_XDIST_WORKER', '-')}\\n")
    """)
    serial = pytester.runpytest_subprocess("--azl-target=pool", "--azl-junit-dir=serial", *RUN)
    assert serial.ret == 1
    worker_log = pytester.path / "workers.log"
    os.environ["AZL_WORKER_LOG"] = str(worker_log)
    try:
        logins_before = {
            n: s.log.read_text().count("Accepted publickey") for n, s in servers.items()}
        parallel = pytester.runpytest_subprocess(
            "--azl-target=pool", "--azl-junit-dir=parallel", "-n", "2", *RUN)
    finally:
        del os.environ["AZL_WORKER_LOG"]
    assert parallel.ret == 1, parallel.stdout.str()
    serial_cases = report_cases(pytester.path / "serial")
    parallel_cases = report_cases(pytester.path / "parallel")
    assert set(serial_cases) == {"azurelinux-3.0.20251021", "mariner-2.0.20230811", "target-pool"}
    # test_where ran only in the parallel run (the env var), so compare the common cases.
    for group, cases in serial_cases.items():
        assert [c for c in parallel_cases[group] if not c[0].startswith("test_where")] == [
            c for c in cases if not c[0].startswith("test_where")], group
    workers: dict[str, set[str]] = {}
    for line in worker_log.read_text().splitlines():
        host, worker = line.split()
        workers.setdefault(host, set()).add(worker)
    assert set(workers) == {"azl", "mar", "azl2"}
    assert all(len(w) == 1 for w in workers.values()), workers  # a host stays on one worker
    assert set().union(*workers.values()) == {"gw0", "gw1"}  # and both workers were used
    logins = {n: s.log.read_text().count("Accepted publickey") - logins_before[n]
              for n, s in servers.items()}
    assert logins == {"azl": 1, "mar": 1, "azl2": 1}  # one connection per host in the run


# -- interrupted runs -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("pytest.exit('operator stop')", "not run: the run was interrupted"),
        ("raise KeyboardInterrupt", "not run: the run was interrupted"),
        ("assert False", "not run: the run stopped early"),
    ],
    ids=["exit", "ctrl-c", "maxfail"],
)
def test_interrupted_run_still_writes_reports(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, sshd: SshServer, how: str,
    expected: str,
) -> None:
    write_targets(pytester, ssh_target(sshd_factory, "one", {"solo": (sshd.address, sshd.port)}))
    pytester.makepyfile(test_stop=f"""
        import pytest

        def test_a(azl_host):
            pass

        def test_b(azl_host):
            {how}

        def test_c(azl_host):
            pass

        def test_d(azl_host):
            pass
    """)
    result = pytester.runpytest_subprocess("--azl-target=one", "-x", *RUN)
    assert result.ret in (1, 2)
    reports = list((pytester.path / "reports").glob("*.xml"))
    assert len(reports) == 1, result.stdout.str()
    cases = {c.name: c for c in read_cases(reports[0])[1]}
    assert cases["test_a[solo]"].outcome == "passed"
    for name in ("test_c[solo]", "test_d[solo]"):
        assert cases[name].outcome == "error"
        assert cases[name].message.startswith(expected), cases[name].message
        assert cases[name].host == "solo"


# -- secrets ---------------------------------------------------------------------------------
def test_sudo_password_from_env_is_used_and_redacted(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    password = sshd_factory.users.sudo_password
    write_targets(pytester, ssh_target(
        sshd_factory, "pw", {"guarded": (sshd.address, sshd.port)},
        extra="sudo_password: ${AZL_TEST_SUDO_PASSWORD}\n", user=sshd_factory.users.pw_user,
    ))
    pytester.makepyfile(test_secret="""
        def test_root(azl_host):
            assert azl_host.check_output("id -u", sudo=True) == "0"

        def test_leaks(azl_host, record_property):
            secret = azl_host.spec.sudo_password.get_secret_value()
            record_property("note", "pw=" + secret)
            azl_host.run("echo %s >&2; exit 3", secret, check=True)
    """)
    os.environ["AZL_TEST_SUDO_PASSWORD"] = password
    try:
        result = pytester.runpytest_subprocess("--azl-target=pw", "-v", *RUN)
    finally:
        del os.environ["AZL_TEST_SUDO_PASSWORD"]
    found = outcomes(result)
    assert found == {"test_root[guarded]": "PASSED", "test_leaks[guarded]": "FAILED"}
    reports = list((pytester.path / "reports").glob("*.xml"))
    assert reports
    for path in reports:
        xml = path.read_text()
        assert password not in xml
        assert "***" in xml  # redacted where it would have been
    assert "password" not in (pytester.path / "azl-targets.yaml").read_text().replace(
        "sudo_password", "")


def _leaks(text: str, secret: str) -> list[str]:
    """The spellings of ``secret`` (or 16-character pieces of it) that ``text`` shows."""
    import shlex

    shown = [secret, shlex.quote(secret), repr(secret)[1:-1], repr(repr(secret))[1:-1]]
    pieces = [secret[i:i + 16] for i in range(0, len(secret) - 15, 8)]
    return [s for s in shown + pieces if s in text]


def test_secrets_are_redacted_in_every_spelling_everywhere_output_goes(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    """A password with ``'``, ``\\`` and ``"`` appears shell-quoted in a CommandFailed and
    escaped in reprs; a 260-character one as head and tail of a cut repr (``-l``); both
    whole in captured output and properties of a passing test (``-rA``, junit_logging=all).
    None of it reaches the terminal, pytest's JUnit, the per-image reports or the HTML."""
    quoted = "it's-a\\pass\"word-" + "x7" * 4
    long = "L" + "0123456789abcdef" * 16 + "-end"
    write_targets(pytester, ssh_target(
        sshd_factory, "pw", {"guarded": (sshd.address, sshd.port)},
        # the key user's sudo needs no password: sudo_password is never typed, only shown
        extra="sudo_password: ${AZL_TEST_QUOTED}\npassword: ${AZL_TEST_LONG}\n",
    ))
    pytester.makepyfile(test_secret="""
        import logging

        def test_quoted_in_a_command(azl_host):
            secret = azl_host.spec.sudo_password.get_secret_value()
            azl_host.run("echo %s >&2; exit 3", secret, check=True)

        def test_escaped_in_an_assertion(azl_host):
            secret = azl_host.spec.sudo_password.get_secret_value()
            assert secret == "something else"

        def test_cut_in_a_long_repr(azl_host):
            secret = azl_host.spec.password.get_secret_value()
            assert not secret

        def test_passes_and_prints(azl_host, record_property):
            for value in (azl_host.spec.sudo_password, azl_host.spec.password):
                secret = value.get_secret_value()
                print("stdout", secret, repr(secret))
                logging.getLogger("azl-test").warning("logged %s %r", secret, secret)
                record_property("note", "pw=" + secret)
    """)
    os.environ.update(AZL_TEST_QUOTED=quoted, AZL_TEST_LONG=long)
    junit = pytester.path / "pytest-junit.xml"
    try:
        result = pytester.runpytest_subprocess(
            "--azl-target=pw", "-v", "-rA", "-l", f"--junit-xml={junit}",
            "-o", "junit_logging=all", "-o", "log_level=INFO", *RUN)
    finally:
        del os.environ["AZL_TEST_QUOTED"], os.environ["AZL_TEST_LONG"]
    assert outcomes(result) == {
        "test_quoted_in_a_command[guarded]": "FAILED",
        "test_escaped_in_an_assertion[guarded]": "FAILED",
        "test_cut_in_a_long_repr[guarded]": "FAILED",
        "test_passes_and_prints[guarded]": "PASSED",
    }
    reports = sorted((pytester.path / "reports").iterdir())
    assert any(p.suffix == ".html" for p in reports) and any(p.suffix == ".xml" for p in reports)
    assert any(p.name.endswith(".image.json") for p in reports)
    outputs = {"terminal": result.stdout.str() + result.stderr.str(),
               "pytest junit": junit.read_text()}
    outputs.update((p.name, p.read_text()) for p in reports if p.suffix in (".xml", ".html"))
    for where, text in outputs.items():
        for secret in (quoted, long):
            assert not _leaks(text, secret), (where, _leaks(text, secret))
        assert "***" in text, where
    for record in (p for p in reports if p.name.endswith(".image.json")):  # no test output
        for secret in (quoted, long):
            assert not _leaks(record.read_text(), secret), record.name
    terminal = outputs["terminal"]
    assert "Captured stdout call" in terminal and "stdout *** " in terminal
    assert "'***...***'" in terminal  # the long repr's head and tail, cut by pytest


# -- misuse ----------------------------------------------------------------------------------
def test_host_tests_without_a_target_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_one(azl_host): pass\n")
    result = pytester.runpytest_subprocess(*RUN)
    assert result.ret == 4
    assert "run with --azl-target NAME" in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_suite_name_without_marker_prefix_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
        import pytest
        @pytest.mark.azl_network
        def test_one(): pass
    """)
    result = pytester.runpytest_subprocess("-m", "network and not slow", *RUN)
    assert result.ret == 4
    assert "no marker 'network' is registered; pytest-azlinux's is 'azl_network'" in (
        result.stderr.str())
    assert pytester.runpytest_subprocess("-m", "azl_network", *RUN).ret == 0
    # a marker of the user's own with such a name is left alone
    pytester.makeini("[pytest]\nmarkers =\n    network: the user's own\n")
    assert pytester.runpytest_subprocess("-m", "network", *RUN).ret == 5  # nothing selected


def test_list_targets(
    pytester: pytest.Pytester, sshd_factory: SshdFactory, sshd: SshServer
) -> None:
    write_targets(pytester, ssh_target(sshd_factory, "fleet", {"a1": (sshd.address, sshd.port)}))
    result = pytester.runpytest_subprocess("--azl-list-targets", *RUN)
    assert result.ret == 0
    text = result.stdout.str()
    assert re.search(r"fleet\s+ssh\s+a1", text) and re.search(r"local\s+local", text)


def test_local_target_runs_on_this_machine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_local="""
        import os
        def test_here(azl_host, azl_image):
            assert azl_host.check_output("echo", "$x") == "$x"
            assert azl_image.kernel == os.uname().release
    """)
    result = pytester.runpytest_subprocess("--azl-target=local", "-v", *RUN)
    assert outcomes(result) == {"test_here[localhost]": "PASSED"}

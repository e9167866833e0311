"""The escape probe's network checks and the escape suite, on lab hosts over SSH.

Network checks: one lab host serves a stand-in IMDS / WireServer / kubelet (a small Python
HTTP server, the only simulated part) on its lab address; a restricted container on another
lab host, joined to that host's network namespace (as a hostNetwork pod), probes it over the
lab bridge. Only lab addresses are ever configured.

Suite: ``suites/security/test_escape.py`` runs through pytester against the lab target.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.analyse.escape import Severity
from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.containers import RuncProbe, detect_runtimes, usable_runc
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.report.junit import read_cases
from tests.fixtures.lab import lab_targets_with

from .test_escape_runc import leftovers

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runc containers and the lab need root"),
    pytest.mark.skipif(shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
                       reason="needs runc"),
]
SUITE = Path(__file__).resolve().parents[2] / "suites" / "security" / "test_escape.py"
STANDIN_PATH = "/tmp/azl-escape-standin.py"
STANDIN_LOG = "/tmp/azl-escape-standin.log"
STANDIN = textwrap.dedent('''
    import http.server, socketserver, sys, threading, time

    address, log_path = sys.argv[1], sys.argv[2]
    log = open(log_path, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            port = self.server.server_address[1]
            log.write(f"GET {port} {self.client_address[0]} {self.path} "
                      f"metadata={self.headers.get('Metadata')}\\n")
            if port == 80:  # IMDS answers only with the Metadata header
                self.send_response(200 if self.headers.get("Metadata") == "true" else 400)
            elif port == 10250:  # the authenticated kubelet port
                self.send_response(401)
            else:
                self.send_response(200)  # 10255: the read-only kubelet port, anonymous
            self.end_headers()
            self.wfile.write(b"{}")
        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    servers = [Server((address, p), Handler) for p in (80, 32526, 10250, 10255)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    log.write("ready\\n")
    time.sleep(120)  # never outlives a killed test run by long
''')


@pytest.fixture(scope="module")
def hosts(lab: Lab, lab_hosts: dict[str, Host]) -> Iterator[list[Host]]:
    """The lab's hosts in order."""
    yield [lab_hosts[h.name] for h in lab.hosts]


@pytest.fixture
def standin(lab: Lab, hosts: list[Host]) -> Iterator[tuple[Host, str]]:
    """The stand-in endpoints on the second lab host's lab address; always stopped."""
    server, address = hosts[1], lab.hosts[1].address
    assert address.startswith("198.18."), address  # lab addresses only
    server.write(STANDIN_PATH, STANDIN, sudo=True)
    pid = server.check_output(
        "python3 %s %s %s >/dev/null 2>&1 </dev/null & echo $!", STANDIN_PATH, address,
        STANDIN_LOG, sudo=True,
    )
    try:
        server.run("for i in $(seq 200); do grep -q ready %s 2>/dev/null && exit 0; "
                   "kill -0 %s || exit 1; sleep 0.05; done; exit 1",
                   STANDIN_LOG, pid, sudo=True, check=True)
        yield server, address
    finally:
        # SIGTERM is not instant: wait up to 5 s for the process to be gone (or a zombie).
        stopped = server.run(
            "kill %s 2>/dev/null; for i in $(seq 100); do s=$(ps -o stat= -p %s) || exit 0; "
            "case $s in Z*) exit 0;; esac; sleep 0.05; done; echo $s; exit 1",
            pid, pid, sudo=True,
        )
        server.run("rm -f %s %s", STANDIN_PATH, STANDIN_LOG, sudo=True)
        assert stopped.rc == 0, f"stand-in {pid} still running ({stopped.stdout.strip()})"


def test_network_checks_reach_a_standin_and_not_a_closed_port(
    hosts: list[Host], standin: tuple[Host, str], lab: Lab
) -> None:
    client = hosts[0]
    server, address = standin
    runc = usable_runc(detect_runtimes(client))
    assert runc is not None
    ledger = CleanupLedger()
    probe = RuncProbe(client, runc=runc.path, runtime_version=runc.version, ledger=ledger)
    host_net = "/proc/1/ns/net"  # the client host's network namespace (its PID 1's)

    reachable = probe.run("restricted", probe_args={
        "imds": address, "wireserver": address, "kubelet": address,
    }, netns_path=host_net).verdict
    imds = reachable.finding("imds")
    assert imds.found is True and "answered HTTP 200" in imds.detail  # the header was sent
    assert imds.severity is Severity.WARN
    wire = reachable.finding("wireserver")
    assert wire.found is True and "port(s) 80 32526" in wire.detail
    kubelet = reachable.finding("kubelet.api")
    assert kubelet.found is True and kubelet.detail.endswith("port(s) 10255")  # 10250: 401
    assert {"wireserver", "kubelet.api"} <= {f.check for f in reachable.failures}
    # the container shares the host's network namespace, and the probe says so
    assert "host-netns:" in reachable.finding("ns.host_net").detail
    # the requests really crossed the lab bridge from the client host's address
    log = server.read_text(STANDIN_LOG, sudo=True)
    client_address = lab.hosts[0].address
    assert f"GET 80 {client_address} /metadata/instance?api-version=2021-02-01 metadata=true" \
        in log, log
    assert f"GET 10255 {client_address} /pods" in log, log

    closed = probe.run("restricted", probe_args={
        "imds": f"{address}:81", "wireserver": address, "wireserver_ports": "81 32527",
        "kubelet": address, "kubelet_ports": "10251 10256",
    }, netns_path=host_net).verdict
    for check in ("imds", "wireserver", "kubelet.api"):
        finding = closed.finding(check)
        assert finding.found is False and finding.severity is Severity.OK, finding.detail
    assert "refused" in closed.finding("imds").detail
    assert "81=closed:refused 32527=closed:refused" in closed.finding("wireserver").detail
    assert ledger.run() == []
    assert leftovers(client) == []


def test_suite_on_the_lab(lab: Lab, hosts: list[Host], tmp_path: Path,
                          pytester: pytest.Pytester) -> None:
    # an IMDS address on the lab with nothing behind it: the setting reaches the probe
    imds = f"{lab.hosts[1].address}:81"
    targets = lab_targets_with(
        lab, tmp_path, suites={"escape": {"imds_address": imds, "timeout": 60}})
    reports = tmp_path / "reports"
    result = pytester.runpytest_subprocess(
        str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}", "-p", "no:cacheprovider",
        f"--azl-junit-dir={reports}", "-rP", timeout=180,
    )
    result.assert_outcomes(passed=9)  # 3 hosts x 3 profiles
    result.stdout.re_match_lines([r".*restricted container: (PASS|WARN) \(",
                                  r".*privileged container: PASS \(.*expected"])
    cases = [c for xml in reports.glob("*.xml") for c in read_cases(xml)[1]]
    by_id = {c.name.split("[", 1)[1].rstrip("]"): c for c in cases}
    assert sorted(by_id) == sorted(f"{h.name}-{p}" for h in hosts
                                   for p in ("restricted", "baseline", "privileged"))
    for case_id, case in by_id.items():
        props = case.properties
        assert case.outcome == "passed" and case.host == case_id.rsplit("-", 1)[0], case
        ms = {m.name: m for m in case.metrics}["escape_probe_ms"]
        assert 0 <= ms.value < 2000 and ms.unit == "ms" and ms.better == "lower"
        # timing_repetitions (5) probe runs, each a fresh container: their times, median first
        assert len(ms.samples) == 5 and ms.value == sorted(ms.samples)[2], ms
        if case_id.endswith("-privileged"):
            assert props["escape.outcome"] == "pass"
            # the lab host is nested: host namespaces are found through the ones runc runs in
            for check in ("ns.host_pid", "ns.host_uts", "ns.host_net", "caps.dangerous"):
                assert props[f"escape.{check}"] == "expected", (check, props)
        else:  # no FAIL; WARN (e.g. lsm.label on a machine without SELinux/AppArmor) is kept
            warned = [k for k, v in props.items() if v == "warn"]
            assert props["escape.outcome"] == ("warn" if warned else "pass"), props
            assert not [k for k, v in props.items() if v == "fail"], props
    for host in hosts:
        assert leftovers(host) == [], host.name


def test_suite_bad_setting_is_a_one_line_error(lab: Lab, tmp_path: Path,
                                               pytester: pytest.Pytester) -> None:
    targets = lab_targets_with(
        lab, tmp_path, suites={"escape": {"profiles": ["restricted", "rootless"]}})
    result = pytester.runpytest_subprocess(
        str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}", "-p", "no:cacheprovider",
        "-k", "restricted", timeout=120,
    )
    # validated at start-up: a usage error (exit 4) before any host is touched
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*target 'lab': field 'suites.escape.profiles[[]1[]]': *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()

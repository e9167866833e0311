"""The escape probe in real runc containers on this machine (root, runc, busybox).

Everything is real: runc starts each container from a bundle built on the host with the
profile's settings, the probe runs inside, and its findings come back through the same code
the suite uses. The host is this machine through the local transport (a lab host runs the
same commands over SSH). Network checks talk only to a stand-in server on loopback inside
a network namespace these tests create and join the container to.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.analyse.escape import Severity, probe_script
from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.containers import RuncProbe, Variation, detect_runtimes, usable_runc
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runc containers need root"),
    pytest.mark.skipif(shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
                       reason="needs runc"),
]


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    h = Host(HostSpec(name="local", target="local", access="local", sudo=True), LocalTransport())
    yield h
    h.close()


@pytest.fixture(scope="module")
def probe(host: Host) -> Iterator[RuncProbe]:
    runc = usable_runc(detect_runtimes(host))
    assert runc is not None, "runc present but not usable"
    ledger = CleanupLedger()
    yield RuncProbe(host, runc=runc.path, runtime_version=runc.version, ledger=ledger)
    assert ledger.run() == []


def _leftovers(host: Host) -> tuple[str, str]:
    bundles = host.run("ls -d /tmp/azl-escape-bundle.* 2>/dev/null").stdout
    containers = host.run("runc list -q | grep '^azl-escape-' || true", sudo=True).stdout
    return bundles, containers


def test_restricted_container_has_no_fail_finding(probe: RuncProbe, host: Host) -> None:
    run = probe.run("restricted")
    verdict = run.verdict
    assert verdict.failures == [], verdict.summary()
    assert verdict.elapsed_ms is not None and verdict.elapsed_ms < 2000
    assert run.probe_rc == 0
    assert _leftovers(host) == ("", "")  # container deleted, bundle removed


@pytest.mark.parametrize(("variation", "check"), [
    (Variation(add_caps=("sys_admin",)), "caps.dangerous"),
    (Variation(host_pid=True), "ns.host_pid"),
    (Variation(writable_proc_sys=True), "procfs.writable"),
    (Variation(no_seccomp=True), "seccomp"),
], ids=["cap-sys-admin", "host-pid", "writable-proc-sys", "no-seccomp"])
def test_each_dangerous_setting_is_detected(
    probe: RuncProbe, variation: Variation, check: str
) -> None:
    verdict = probe.run("restricted", variation).verdict
    finding = verdict.finding(check)
    assert finding.found is True and finding.severity is Severity.FAIL, verdict.summary()
    assert verdict.outcome == "fail"


def test_bind_mounted_runtime_socket_is_detected(probe: RuncProbe, tmp_path: Path) -> None:
    path = tmp_path / "containerd.sock"  # a real listening unix socket on the host
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(1)
        verdict = probe.run(
            "restricted", Variation(socket=(str(path), "/run/containerd/containerd.sock"))
        ).verdict
    finding = verdict.finding("sock.runtime")
    assert finding.severity is Severity.FAIL
    assert "/run/containerd/containerd.sock" in finding.detail


@pytest.mark.parametrize("profile", ["restricted", "baseline", "privileged"])
def test_probe_changes_nothing_outside_its_temp_dir(
    probe: RuncProbe, host: Host, profile: str
) -> None:
    core_pattern = host.read_text("/proc/sys/kernel/core_pattern")
    run = probe.run(profile)  # type: ignore[arg-type]
    assert run.changes() == []
    # the listings covered the writable areas: /tmp (host-backed) and the tmpfs ones
    assert any(line.startswith("dir /tmp") for line in run.inside_before)
    if profile != "privileged":
        assert any(line.startswith("dir /dev/shm") for line in run.inside_before)
    assert any(line.startswith("dir /tmp/azl-escape-bundle.") for line in run.host_before)
    assert host.read_text("/proc/sys/kernel/core_pattern") == core_pattern
    # the privileged profile really could have written: the probe chose not to
    if profile == "privileged":
        assert run.verdict.finding("procfs.writable").found is True


def test_the_listing_would_catch_a_write(host: Host) -> None:
    """Control: a 'probe' that leaves files behind is caught by the same listings."""
    leaky = "#!/bin/sh\necho x > /tmp/left-behind\necho y > /dev/shm/left-behind\n"
    leaky += probe_script().split("\n", 1)[1]
    run = RuncProbe(host, script=leaky).run("restricted")
    changes = run.changes()
    assert any("container: + node /tmp/left-behind" in c for c in changes), changes
    assert any("container: + node /dev/shm/left-behind" in c for c in changes), changes
    # seen from the host too: the bundle's scratch dir is the container's /tmp
    assert any(c.startswith("host: + node ") and c.split()[3].endswith("/tmp/left-behind")
               for c in changes), changes


STANDIN = textwrap.dedent('''
    import http.server, socketserver, sys, threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            port = self.server.server_address[1]
            if port == 80 and self.server.server_address[0] == "127.0.0.1":
                ok = self.headers.get("Metadata") == "true"   # like Azure IMDS
                self.send_response(200 if ok else 400)
            elif port == 10250:
                self.send_response(401)
            else:
                self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")
        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    servers = [Server((a, p), Handler) for a, p in (
        ("127.0.0.1", 80), ("127.0.0.2", 80), ("127.0.0.2", 32526),
        ("127.0.0.3", 10250), ("127.0.0.3", 10255))]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
''')


@pytest.fixture
def standin_netns() -> Iterator[str]:
    """A network namespace with only loopback and a stand-in IMDS/WireServer/kubelet."""
    name = f"azl-esc-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = None
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", STANDIN],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert server.stdout is not None
        deadline = time.monotonic() + 20
        while server.stdout.readline().strip() != "ready":
            assert server.poll() is None and time.monotonic() < deadline, "stand-in did not start"
        yield f"/run/netns/{name}"
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_network_checks_reach_a_standin_and_not_a_closed_port(
    probe: RuncProbe, standin_netns: str
) -> None:
    reachable = probe.run("restricted", probe_args={
        "imds": "127.0.0.1", "wireserver": "127.0.0.2", "kubelet": "127.0.0.3",
    }, netns_path=standin_netns).verdict
    imds = reachable.finding("imds")
    assert imds.found is True and "answered HTTP 200" in imds.detail  # the header was sent
    assert imds.severity is Severity.WARN
    wire = reachable.finding("wireserver")
    assert wire.found is True and "port(s) 80 32526" in wire.detail
    kubelet = reachable.finding("kubelet.api")
    assert kubelet.found is True and "10255" in kubelet.detail
    assert {"wireserver", "kubelet.api"} <= {f.check for f in reachable.failures}

    closed = probe.run("restricted", probe_args={
        "imds": "127.0.0.1:81", "wireserver": "127.0.0.9", "kubelet": "127.0.0.9",
    }, netns_path=standin_netns).verdict
    for check in ("imds", "wireserver", "kubelet.api"):
        finding = closed.finding(check)
        assert finding.found is False and finding.severity is Severity.OK, finding.detail
    assert "refused" in closed.finding("imds").detail
    assert closed.failures == []

"""The escape probe in real runc containers on a lab host, over SSH.

Everything is real: runc (run with sudo through ``Host.run`` over the host's SSH shell) starts
each container from a bundle built on the lab host with the profile's settings, the probe runs
inside, and its findings come back through the code the suite uses. A lab host is a nested
host (its PID/UTS/network namespaces are not the kernel's initial ones), so "host namespace"
checks are judged against the namespaces runc itself runs in, which ``RuncProbe`` passes on.

The restricted baseline and the dangerous settings also run on this machine through the local
transport: the machine sits in the initial namespaces, like a VM, so there the probe finds a
host namespace by the kernel's fixed initial inode numbers alone, a path the lab cannot reach.
The other tests run on the lab host only.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterator

import pytest

from pytest_azlinux.analyse.escape import Severity, probe_script
from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.containers import RuncProbe, Variation, detect_runtimes, usable_runc
from pytest_azlinux.errors import InfraError
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runc containers and the lab need root"),
    pytest.mark.skipif(shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
                       reason="needs runc"),
]
SOCKET_IN_CONTAINER = "/run/containerd/containerd.sock"


def cgroup_mount_commands(mountinfo: str) -> list[str]:
    """Commands recreating this machine's /sys/fs/cgroup mounts (same hierarchies)."""
    commands = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, (fstype, source, super_opts) = pre.split(), post.split()[:3]
        if not fields[4].startswith("/sys/fs/cgroup"):
            continue
        opts = ",".join(o for o in super_opts.split(",") if o not in ("rw", "ro"))
        commands.append(f"mkdir -p {fields[4]} && mount -t {fstype} "
                        + (f"-o {shlex.quote(opts)} " if opts else "") + f"{source} {fields[4]}")
    return commands


def leftovers(host: Host, *, only_ours: bool = False) -> list[str]:
    """Containers, bundles, probe temp dirs and cgroups left on ``host`` (empty: none)."""
    runc_filter = " | grep '^azl-escape-'" if only_ours else ""
    out = host.check_output(
        f"runc list -q{runc_filter} | sed 's/^/container /'; "
        "ls -d /tmp/azl-escape-bundle.* /tmp/azl-escape.* 2>/dev/null; "
        "find /sys/fs/cgroup -maxdepth 4 -type d -name 'azl-escape-*' 2>/dev/null; true",
        sudo=True,
    )
    return out.splitlines()


def make_probe(host: Host) -> Iterator[RuncProbe]:
    runc = usable_runc(detect_runtimes(host))
    assert runc is not None, f"{host.name}: runc present but not usable"
    ledger = CleanupLedger()
    yield RuncProbe(host, runc=runc.path, runtime_version=runc.version, ledger=ledger)
    assert ledger.run() == []


@pytest.fixture(scope="module")
def lab_host(lab: Lab, lab_hosts: dict[str, Host]) -> Iterator[Host]:
    host = lab_hosts[lab.hosts[0].name]
    assert host.spec.access == "ssh"
    yield host


@pytest.fixture(scope="module")
def lab_probe(lab_host: Host) -> Iterator[RuncProbe]:
    yield from make_probe(lab_host)
    assert leftovers(lab_host) == []


@pytest.fixture(scope="module")
def local_host() -> Iterator[Host]:
    h = Host(HostSpec(name="local", target="local", access="local", sudo=True), LocalTransport())
    yield h
    h.close()


@pytest.fixture(scope="module")
def local_probe(local_host: Host) -> Iterator[RuncProbe]:
    yield from make_probe(local_host)
    # other users of this machine may run containers: only ours must be gone
    assert leftovers(local_host, only_ours=True) == []


@pytest.fixture(params=["lab", "local"])
def where(request: pytest.FixtureRequest) -> tuple[RuncProbe, Host]:
    """A runc probe and its host: a lab host over SSH, and this machine (initial namespaces)."""
    name = request.param
    return request.getfixturevalue(f"{name}_probe"), request.getfixturevalue(f"{name}_host")


def test_restricted_container_has_no_fail_finding(where: tuple[RuncProbe, Host]) -> None:
    probe, host = where
    run = probe.run("restricted")
    verdict = run.verdict
    assert verdict.failures == [], verdict.summary()
    assert verdict.elapsed_ms is not None and verdict.elapsed_ms < 2000
    assert run.probe_rc == 0
    for check in ("ns.host_pid", "ns.host_uts", "ns.host_net", "caps.dangerous", "seccomp"):
        assert verdict.finding(check).severity is Severity.OK, verdict.finding(check)
    assert leftovers(host, only_ours=host.spec.access == "local") == []


@pytest.mark.parametrize(("variation", "check"), [
    (Variation(add_caps=("sys_admin",)), "caps.dangerous"),
    (Variation(host_pid=True), "ns.host_pid"),
    (Variation(writable_proc_sys=True), "procfs.writable"),
    (Variation(no_seccomp=True), "seccomp"),
], ids=["cap-sys-admin", "host-pid", "writable-proc-sys", "no-seccomp"])
def test_each_dangerous_setting_is_detected(
    where: tuple[RuncProbe, Host], variation: Variation, check: str
) -> None:
    probe, host = where
    verdict = probe.run("restricted", variation).verdict
    finding = verdict.finding(check)
    assert finding.found is True and finding.severity is Severity.FAIL, verdict.summary()
    assert verdict.outcome == "fail"
    if check == "ns.host_pid":
        host_pid_ns = host.check_output("readlink /proc/self/ns/pid", sudo=True)
        assert host_pid_ns in finding.detail
        # the machine is in the initial namespaces; a lab host is not (nested)
        initial = host_pid_ns == "pid:[4026531836]"
        assert initial == (host.spec.access == "local")
        assert ("host's" in finding.detail) != initial, finding.detail


def test_bind_mounted_runtime_socket_is_detected(
    lab_probe: RuncProbe, lab_host: Host, request: pytest.FixtureRequest
) -> None:
    probe, host = lab_probe, lab_host
    sock_dir = host.check_output("mktemp -d /tmp/azl-escape-sock.XXXXXX", sudo=True)
    request.addfinalizer(lambda: host.run("rm -rf %s", sock_dir, sudo=True, check=True))
    path = f"{sock_dir}/containerd.sock"
    # a real unix socket, listening on the host while the container runs
    listener = ("import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]);"
                " s.listen(1); print('ready', flush=True); time.sleep(float(sys.argv[2]))")
    pid = host.check_output(
        "python3 -c %s %s 60 >%s 2>&1 </dev/null & echo $!", listener, path, f"{path}.log",
        sudo=True,
    )
    try:
        host.run("for i in $(seq 100); do grep -q ready %s && exit 0; sleep 0.05; done; exit 1",
                 f"{path}.log", sudo=True, check=True)
        assert host.run("test -S %s", path, sudo=True).rc == 0
        verdict = probe.run("restricted", Variation(socket=(path, SOCKET_IN_CONTAINER))).verdict
    finally:
        host.run("kill %s; wait %s 2>/dev/null; true", pid, pid, sudo=True)
    finding = verdict.finding("sock.runtime")
    assert finding.severity is Severity.FAIL, verdict.summary()
    # found by its path and as a mounted .sock (uid 65534 may not connect: root's 0755 socket)
    assert f"{SOCKET_IN_CONTAINER}(writable=no)" in finding.detail
    assert f"mounted .sock: {SOCKET_IN_CONTAINER}" in finding.detail
    assert verdict.finding("mount.hostpath").severity is Severity.FAIL  # a .sock host path


@pytest.mark.parametrize("profile", ["restricted", "baseline", "privileged"])
def test_probe_changes_nothing_outside_its_temp_dir(
    lab_probe: RuncProbe, lab_host: Host, profile: str
) -> None:
    watched = ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname",
               "/proc/sys/vm/panic_on_oom")
    before = [lab_host.read_text(p) for p in watched]
    run = lab_probe.run(profile)  # type: ignore[arg-type]
    assert run.changes() == []
    # the listings covered the writable areas: /tmp (host-backed) and the tmpfs ones
    assert any(line.startswith("dir /tmp") for line in run.inside_before)
    if profile != "privileged":
        assert any(line.startswith("dir /dev/shm") for line in run.inside_before)
    assert any(line.startswith("dir /tmp/azl-escape-bundle.") for line in run.host_before)
    # the probe made and removed its temp dir (so it ran), and left nothing else
    assert run.verdict.finding("dev.mknod").found is not None
    assert [lab_host.read_text(p) for p in watched] == before
    # the privileged profile really could have written: the probe chose not to
    if profile == "privileged":
        assert run.verdict.finding("procfs.writable").found is True
    assert leftovers(lab_host) == []


def test_the_listing_would_catch_a_write(lab_host: Host) -> None:
    """Control: a 'probe' that leaves files behind is caught by the same listings."""
    leaky = "#!/bin/sh\necho x > /tmp/left-behind\necho y > /dev/shm/left-behind\n"
    leaky += probe_script().split("\n", 1)[1]
    run = RuncProbe(lab_host, script=leaky).run("restricted")
    changes = run.changes()
    assert any("container: + node /tmp/left-behind" in c for c in changes), changes
    assert any("container: + node /dev/shm/left-behind" in c for c in changes), changes
    # seen from the host too: the bundle's scratch dir is the container's /tmp
    assert any(c.startswith("host: + node ") and c.split()[3].endswith("/tmp/left-behind")
               for c in changes), changes
    assert leftovers(lab_host) == []  # the bundle went, with what the leaky probe left


def test_host_without_cgroup_mounts_is_an_infra_error(lab: Lab, lab_hosts: dict[str, Host]) -> None:
    """A host runc cannot start containers on: ERROR naming the cause, nothing left behind."""
    host = lab_hosts[lab.hosts[-1].name]
    with open("/proc/self/mountinfo") as f:
        restore = cgroup_mount_commands(f.read())
    host.run("umount -R /sys/fs/cgroup", sudo=True, check=True)  # in that host's namespace only
    try:
        with pytest.raises(InfraError, match=r"did not run the probe: runc exited 1: .*no cgroup "
                           r"mount found.*; the host has no cgroup filesystem mounted"):
            RuncProbe(host).run("restricted")
        assert leftovers(host) == []
    finally:
        host.run("mount -t tmpfs -o mode=755 azl-cgroup /sys/fs/cgroup && "
                 + " && ".join(restore), sudo=True, check=True)

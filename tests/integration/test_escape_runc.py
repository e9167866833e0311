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
        as_root = probe.run("baseline", Variation(socket=(path, SOCKET_IN_CONTAINER))).verdict
    finally:
        host.run("kill %s; wait %s 2>/dev/null; true", pid, pid, sudo=True)
    finding = verdict.finding("sock.runtime")
    assert finding.severity is Severity.FAIL, verdict.summary()
    # found by its path and as a mounted .sock; connect(2) tried: uid 65534 may not connect
    # to root's 0755 socket, root may
    assert f"{SOCKET_IN_CONTAINER}(connect=EACCES)" in finding.detail
    assert f"{SOCKET_IN_CONTAINER}(connect=ok)" in as_root.finding("sock.runtime").detail
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


# --- the weaknesses the probe missed before (issue 22), each in a real container ----------


@pytest.fixture
def host_process_as_nobody(where: tuple[RuncProbe, Host]) -> Iterator[tuple[int, Host]]:
    """A process on the host running as uid 65534 (the restricted container's uid): its
    /proc/PID/root is open to that uid, while PID 1 (root) is not."""
    _, host = where
    pid = int(host.check_output(
        "setpriv --reuid 65534 --regid 65534 --clear-groups sleep 300 </dev/null >/dev/null "
        "2>&1 & echo $!", sudo=True))
    try:
        yield pid, host
    finally:
        host.run("kill %s 2>/dev/null; true", pid, sudo=True)


def _readable_pid1(host: Host) -> bool:
    """Whether uid 65534 reads /proc/1/root on this host (the old check's only look)."""
    return host.run("setpriv --reuid 65534 --regid 65534 --clear-groups readlink /proc/1/root",
                    sudo=True).rc == 0


def test_caps_beyond_the_profile_and_those_that_give_root(where: tuple[RuncProbe, Host]) -> None:
    probe, _ = where
    # uid 65534 with CAP_SETUID/CAP_SETGID (no catalog-dangerous one): setresuid(0) -> root
    verdict = probe.run("restricted", Variation(add_caps=("setuid", "setgid"))).verdict
    caps = verdict.finding("caps.dangerous")
    assert caps.severity is Severity.FAIL, verdict.summary()
    assert "beyond what restricted allows (none): setgid setuid" in caps.why
    assert "gives root: CAP_SETUID lets uid 65534 call setresuid(0)" in caps.why
    # the binaries come from nosuid mounts and no_new_privs is on: setgid alone is flagged only
    verdict = probe.run("restricted", Variation(add_caps=("setgid",))).verdict
    caps = verdict.finding("caps.dangerous")
    assert caps.severity is Severity.WARN and "gives root" not in caps.why, caps
    assert "setuid/setgid-root files honoured: none (on nosuid mounts: " in caps.detail
    # baseline: the runtime's default set is allowed, anything beyond it is flagged
    assert probe.run("baseline").verdict.finding("caps.dangerous").severity is Severity.INFO
    nice = probe.run("baseline", Variation(add_caps=("sys_nice",))).verdict.finding(
        "caps.dangerous")
    assert nice.severity is Severity.WARN and "the runtime's default set): sys_nice" in nice.why


def test_ptrace_host_finds_any_reachable_host_process(
    where: tuple[RuncProbe, Host], host_process_as_nobody: tuple[int, Host]
) -> None:
    probe, _ = where
    pid, host = host_process_as_nobody
    assert not _readable_pid1(host)  # what the old check looked at: not reachable
    verdict = probe.run("restricted", Variation(host_pid=True)).verdict
    finding = verdict.finding("ptrace.host")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert f"{pid}:sleep" in finding.detail and "/proc/1/root: unreadable" in finding.detail
    assert f"their files listable: yes (/proc/{pid}/root/)" in finding.detail
    assert "memory (/proc/PID/mem) openable: 1" in finding.detail  # same uid: no capability
    assert "combination" not in finding.detail  # no CAP_SYS_PTRACE: no combination to name
    # and in its own PID namespace the process is out of sight
    assert probe.run("restricted").verdict.finding("ptrace.host").severity is Severity.OK


def test_combined_capabilities_say_so(where: tuple[RuncProbe, Host]) -> None:
    probe, _ = where
    verdict = probe.run("restricted", Variation(host_pid=True, add_caps=("sys_ptrace",))).verdict
    text = "combination: CAP_SYS_PTRACE with the host PID namespace"
    for check in ("ptrace.host", "ns.host_pid", "caps.dangerous"):
        assert text in verdict.finding(check).detail, verdict.summary()
    assert verdict.finding("ptrace.host").severity is Severity.FAIL
    verdict = probe.run("restricted", Variation(host_net=True, add_caps=("net_admin",))).verdict
    text = "combination: CAP_NET_ADMIN with the host network namespace"
    for check in ("ns.host_net", "caps.dangerous"):
        assert text in verdict.finding(check).detail, verdict.summary()
    # the capability alone, in the container's own network namespace: no combination
    alone = probe.run("restricted", Variation(add_caps=("net_admin",))).verdict
    assert "combination" not in alone.finding("caps.dangerous").detail


def test_block_device_allowed_by_the_device_cgroup(lab_probe: RuncProbe, lab_host: Host) -> None:
    """A host block device in the container, mode 0660 root:disk (uid 65534 cannot open it),
    with a device cgroup rule allowing rwm: the rule is the weakness."""
    (device,) = lab_host.spec.scratch_devices
    major, minor = (int(x, 16) for x in lab_host.check_output(
        "stat -c '%t %T'", device, sudo=True).split())
    run = lab_probe.run("restricted", Variation(block_device=("/dev/azl-disk", major, minor)))
    finding = run.verdict.finding("dev.block")
    assert finding.severity is Severity.FAIL, run.verdict.summary()
    assert "openable read-only by uid 65534: none" in finding.detail
    assert f"device cgroup allows: /dev/azl-disk({major}:{minor})=rwm" in finding.detail
    assert run.changes() == []
    # without the device: nothing visible, and the cgroup allows no block device
    clean = lab_probe.run("restricted").verdict.finding("dev.block")
    assert clean.severity is Severity.OK and "device cgroup allows: none" in clean.detail


@pytest.fixture
def own_netns(where: tuple[RuncProbe, Host]) -> Iterator[tuple[str, Host]]:
    """A network namespace of its own with a veth pair inside it, one end at 198.19.254.45/24
    (nothing leaves the namespace), held by a sleeping process: its /proc/PID/ns/net path."""
    _, host = where
    pid = host.check_output("unshare -n sleep 300 </dev/null >/dev/null 2>&1 & echo $!",
                            sudo=True)
    try:
        host.run("for i in $(seq 100); do [ \"$(readlink /proc/%s/ns/net)\" != "
                 "\"$(readlink /proc/self/ns/net)\" ] && exit 0; sleep 0.05; done; exit 1",
                 pid, sudo=True, check=True)
        host.run("nsenter -t %s -n sh -c 'ip link add azl0 type veth peer name azl1 && "
                 "ip addr add 198.19.254.45/24 dev azl0 && ip link set azl1 up && "
                 "ip link set azl0 up'", pid,
                 sudo=True, check=True)
        yield f"/proc/{pid}/ns/net", host
    finally:
        host.run("kill %s 2>/dev/null; true", pid, sudo=True)


def test_node_ip_is_compared_exactly(
    where: tuple[RuncProbe, Host], own_netns: tuple[str, Host]
) -> None:
    """A container at .45 in its own network namespace, the node at .4: not the host network
    (a substring match said it was); the node at .45 is."""
    probe, _ = where
    netns, _ = own_netns
    near = probe.run("restricted", probe_args={"node_ip": "198.19.254.4"},
                     netns_path=netns).verdict.finding("ns.host_net")
    assert near.severity is Severity.OK, near
    assert "node-ip-local" not in near.detail
    same = probe.run("restricted", probe_args={"node_ip": "198.19.254.45"},
                     netns_path=netns).verdict.finding("ns.host_net")
    assert same.severity is Severity.FAIL and "node-ip-local" in same.detail, same


# --- checks that stood for another operation (issue 28): a container with exactly the
# weakness, which the proxy check missed -------------------------------------------------------


def test_userns_by_clone_when_unshare_is_filtered(where: tuple[RuncProbe, Host]) -> None:
    """The profile refuses unshare(CLONE_NEWUSER) and lets clone(CLONE_NEWUSER) through."""
    probe, _ = where
    verdict = probe.run("restricted", Variation(seccomp_allow=("clone:CLONE_NEWUSER",))).verdict
    finding = verdict.finding("userns.create")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert "unshare(CLONE_NEWUSER)=blocked:EPERM" in finding.detail  # the old check's only try
    assert "clone(CLONE_NEWUSER)=reached:ok" in finding.detail


@pytest.mark.parametrize(("syscall", "errno"), [
    ("keyctl", "ENOTSUP"), ("add_key", "EINVAL"), ("request_key", "ENOKEY"),
])
def test_each_keyring_syscall_allowed_alone(
    where: tuple[RuncProbe, Host], syscall: str, errno: str
) -> None:
    probe, _ = where
    verdict = probe.run("restricted", Variation(seccomp_allow=(syscall,))).verdict
    finding = verdict.finding("keyring.host")
    assert finding.severity is Severity.FAIL and verdict.outcome == "fail", verdict.summary()
    assert f"kernel keyring syscalls reachable: {syscall};" in finding.detail
    assert f"{syscall}=reached:{errno}" in finding.detail


def test_reachable_keyring_fails_at_baseline(lab_probe: RuncProbe) -> None:
    """The runtime's default profile blocks the keyrings: reaching one is no mere warning."""
    verdict = lab_probe.run("baseline", Variation(seccomp_allow=("keyctl",))).verdict
    assert verdict.finding("keyring.host").severity is Severity.FAIL, verdict.summary()
    assert verdict.outcome == "fail"
    assert lab_probe.run("baseline").verdict.finding("keyring.host").severity is Severity.OK


def test_cgroup_mount_allowed_while_umount2_is_filtered(where: tuple[RuncProbe, Host]) -> None:
    """CAP_SYS_ADMIN and a profile that lets mount(2) through but not umount2: the container
    can mount a cgroup v1 hierarchy and write its release_agent."""
    probe, _ = where
    run = probe.run("baseline", Variation(add_caps=("sys_admin",), seccomp_allow=("mount",)))
    verdict = run.verdict
    finding = verdict.finding("cgroup.escape")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert "can mount a v1 hierarchy: yes (mount(2) of the cgroup v1 filesystem: reached:EINVAL)" \
        in finding.detail
    assert "umount2(non-mountpoint)=blocked:EPERM" in verdict.finding("syscalls.sensitive").detail
    assert run.changes() == []  # nothing was mounted, nothing left
    # the same capability with mount(2) filtered too: tried and refused
    admin = probe.run("baseline", Variation(add_caps=("sys_admin",))).verdict
    assert admin.finding("cgroup.escape").severity is Severity.OK, admin.summary()


def test_kernel_memory_devices_allowed_by_the_device_cgroup(
    where: tuple[RuncProbe, Host]
) -> None:
    """Device cgroup rules allowing /dev/mem, /dev/kmem and /dev/port (no node: a root process
    with CAP_MKNOD makes one); the block-device check saw nothing."""
    probe, _ = where
    rules = ("c 1:1 rwm", "c 1:2 rwm", "c 1:4 rwm")
    verdict = probe.run("restricted", Variation(device_allow=rules)).verdict
    finding = verdict.finding("dev.mem")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert ("device cgroup allows: /dev/mem(1:1)=rwm /dev/kmem(1:2)=rwm /dev/port(1:4)=rwm"
            in finding.detail)
    assert verdict.finding("dev.block").severity is Severity.OK
    # one rule alone is found too (m: runc's own rule lets any node be made)
    port = probe.run("restricted", Variation(device_allow=("c 1:4 r",))).verdict
    assert "device cgroup allows: /dev/port(1:4)=rm;" in port.finding("dev.mem").detail
    assert port.finding("dev.mem").severity is Severity.FAIL
    # a node under another name is found by its number (opening it fails on this machine's
    # kernel, which has no /dev/port driver: ENXIO; the cgroup rule is the finding)
    node = probe.run("restricted", Variation(char_device=("/dev/azl-port", 1, 4))).verdict
    seen = node.finding("dev.mem")
    assert seen.severity is Severity.FAIL, seen
    assert "visible: /dev/azl-port(1:4); openable read-only by uid 65534: none;" in seen.detail


def test_without_python3_the_raw_calls_are_made_or_said_not_tried(
    lab_probe: RuncProbe, lab_host: Host
) -> None:
    """A container without python3 (its name hidden from the probe): the x86_64 helper makes
    the raw clone; with its temp dir on a noexec mount too (/dev/shm here), the clone cannot be
    tried, and the check says so instead of reporting the weakness absent."""
    machine = lab_host.check_output("uname -m")
    no_python = probe_script().replace("command -v python3", "command -v azl-absent-python3")
    clone = Variation(seccomp_allow=("clone:CLONE_NEWUSER",))
    finding = RuncProbe(lab_host, script=no_python).run("restricted", clone).verdict.finding(
        "userns.create")
    if machine == "x86_64":
        assert finding.severity is Severity.FAIL, finding
        assert "clone(CLONE_NEWUSER)=reached:ok" in finding.detail
    else:
        assert finding.severity is Severity.SKIPPED, finding
    noexec = no_python.replace("#!/bin/sh\n", "#!/bin/sh\nTMPDIR=/dev/shm; export TMPDIR\n", 1)
    run = RuncProbe(lab_host, script=noexec).run("restricted", clone)
    finding = run.verdict.finding("userns.create")
    assert finding.severity is Severity.SKIPPED and finding.found is None, finding
    assert "clone(CLONE_NEWUSER)=not-tried:no-python3" in finding.detail
    assert run.changes() == []
    assert leftovers(lab_host) == []


def test_a_syscall_that_kills_loses_no_other_result(where: tuple[RuncProbe, Host]) -> None:
    """A profile that kills on bpf and perf_event_open (SCMP_ACT_KILL_PROCESS) and lets keyctl
    through: each raw syscall runs in a child of its own, so the kill is one result
    (blocked:SIGSYS), and keyctl's is not lost with it."""
    probe, _ = where
    verdict = probe.run("restricted", Variation(seccomp_allow=("keyctl",),
                                                seccomp_kill=("bpf", "perf_event_open"))).verdict
    assert verdict.outcome == "fail", verdict.summary()
    assert "keyctl=reached:ENOTSUP" in verdict.finding("keyring.host").detail
    detail = verdict.finding("syscalls.sensitive").detail
    assert "bpf=blocked:SIGSYS perf_event_open=blocked:SIGSYS" in detail, detail


def test_readable_is_tried_by_opening(
    where: tuple[RuncProbe, Host], request: pytest.FixtureRequest
) -> None:
    """A service account token of mode 0600 root and uid 65534 with CAP_DAC_READ_SEARCH: the
    mode bits (busybox `test -r`) say unreadable, open(2) says readable."""
    probe, host = where
    token = host.check_output("f=$(mktemp /tmp/azl-escape-token.XXXXXX) && chmod 600 $f && "
                              "echo not-a-secret >$f && echo $f", sudo=True)
    request.addfinalizer(lambda: host.run("rm -f %s", token, sudo=True, check=True))
    path = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    verdict = probe.run("restricted", Variation(socket=(token, path),
                                                add_caps=("dac_read_search",))).verdict
    finding = verdict.finding("sa.token")
    assert finding.severity is Severity.WARN and path in finding.detail, verdict.summary()
    # without the capability, the same file is out of reach
    plain = probe.run("restricted", Variation(socket=(token, path))).verdict
    assert plain.finding("sa.token").severity is Severity.OK

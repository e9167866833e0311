"""The lab end to end: real namespaces, real sshd, real iperf3, real tc (run as root).

Bring-up is shared (the session ``lab`` fixture: 3 hosts azl3, azl3-hwe, mariner2); tests
that change a lab's shape (down, add hosts, start on demand) use their own small lab.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_azlinux.cli import main as cli_main
from pytest_azlinux.errors import HostUnreachable, TargetsError
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab, LabError
from pytest_azlinux.lab import system as lab_system
from pytest_azlinux.lab.hostproc import init_pid
from pytest_azlinux.lab.names import LAB_NAME_ENV
from pytest_azlinux.lab.target import resolve_lab_target
from pytest_azlinux.localproc import pid_alive
from pytest_azlinux.targets import LabTarget
from tests.fixtures.lab import connect, lab_host_specs, make_lab, unique_lab_name

EXPECTED_IDENTITY = {  # variant -> (ID, VERSION, VARIANT_ID, release file)
    "azl3": ("azurelinux", "3.0.20251021", None, "/etc/azurelinux-release"),
    "azl3-hwe": ("azurelinux", "3.0.20251021", "hwe", "/etc/azurelinux-release"),
    "mariner2": ("mariner", "2.0.20250925", None, "/etc/mariner-release"),
}


def azl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_azlinux.cli", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def iperf_mbps(server: Host, client: Host, seconds: int = 2) -> float:
    """TCP throughput client -> server (Mbit/s), measured by real iperf3 in the hosts."""
    pid_file = "/tmp/azl-test-iperf3.pid"
    server.run("iperf3 -s -D -B %s -I %s", server.address, pid_file, check=True)
    last = ""
    try:
        for _ in range(50):  # the daemon needs a moment to listen
            result = client.run("iperf3 -J -t %s -c %s", seconds, server.address,
                                timeout=seconds + 60)
            data = json.loads(result.stdout or "{}")
            received = data.get("end", {}).get("sum_received")
            if result.rc == 0 and received:
                return float(received["bits_per_second"]) / 1e6
            last = f"rc={result.rc} {data.get('error', '')} {result.stderr.strip()}"
            time.sleep(0.1)
    finally:
        server.run("kill $(cat %s) && rm -f %s", pid_file, pid_file)
    raise AssertionError(f"iperf3 {client.name} -> {server.name} failed: {last}")


# -- identity, over the plugin -------------------------------------------------------------
INNER_TEST = """
EXPECTED = {expected!r}
VARIANT = {variants!r}

def test_identity(azl_host, azl_image):
    os_id, version, variant_id, release = EXPECTED[VARIANT[azl_host.name]]
    assert azl_host.check_output("hostname") == azl_host.name
    assert azl_image.hostname == azl_host.name
    assert (azl_image.os_id, azl_image.version, azl_image.variant_id) == (
        os_id, version, variant_id)
    assert azl_host.exists(release)
    assert azl_host.check_output("id -un") == "azureuser"
    assert azl_host.check_output("sudo -n id -u") == "0"
"""


def test_plugin_reaches_each_host_with_its_own_identity(
    lab: Lab, pytester: pytest.Pytester
) -> None:
    variants = {h.name: h.variant for h in lab.hosts}
    assert sorted(variants.values()) == sorted(EXPECTED_IDENTITY)
    pytester.makepyfile(test_inner=INNER_TEST.format(expected=EXPECTED_IDENTITY,
                                                     variants=variants))
    junit = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        "--azl-target=lab", "--azl-targets-file", str(lab.targets_file),
        "--azl-junit-dir", str(junit), "-p", "no:cacheprovider", "-v",
    )
    result.assert_outcomes(passed=3)
    for name in variants:
        result.stdout.fnmatch_lines([f"*test_identity?{name}? PASSED*"])
    # one report per image: the three variants are three images
    assert sorted(p.stem for p in junit.glob("*.xml")) == [
        "azurelinux-3.0.20251021", "azurelinux-3.0.20251021-hwe", "mariner-2.0.20250925",
    ]


def test_known_hosts_pins_real_host_keys(lab: Lab) -> None:
    """strict host-key checking works with the lab's known_hosts, and rejects a wrong key."""
    specs = lab_host_specs(lab)
    assert all(s.host_key_policy == "strict" for s in specs)
    first, second = lab.hosts[0], lab.hosts[1]
    lines = lab.known_hosts.read_text().splitlines()
    swapped = [ln.replace(first.address + " ", "X ").replace(second.address + " ", first.address
               + " ").replace("X ", second.address + " ") for ln in lines]
    bad = lab.state_dir / "known_hosts.swapped"
    bad.write_text("\n".join(swapped) + "\n")
    try:
        spec = dataclasses.replace(specs[0], known_hosts=str(bad), connect_timeout=5)
        with pytest.raises(HostUnreachable, match="does not match"):
            connect(spec)
    finally:
        bad.unlink()


# -- private state per host ----------------------------------------------------------------
def test_hosts_have_private_files_and_scratch_disks(lab: Lab, lab_hosts: dict[str, Host]) -> None:
    a, b, _ = (lab_hosts[h.name] for h in lab.hosts)
    a.run("echo %s > /tmp/azl-private-marker", a.name, check=True)
    assert not b.exists("/tmp/azl-private-marker")
    assert a.read_text("/etc/hostname").strip() == a.name
    assert b.check_output("ps -e -o comm=").count("sleep") == 1  # its own PID namespace
    for host in lab.hosts:
        h = lab_hosts[host.name]
        assert h.spec.scratch_devices == (host.loop,)
        size = h.check_output("sudo -n blockdev --getsize64 %s", host.loop)
        assert int(size) == 1 << 30
        assert h.which("iperf3") and h.which("fio")


ORPHANS = """
for i in $(seq %s); do (sleep 0.3 & echo $!); done
"""  # each subshell starts a sleep and exits at once: the sleeps become the host's orphans


def test_host_init_reaps_orphans(lab: Lab, lab_hosts: dict[str, Host]) -> None:
    """Processes orphaned on a lab host are reaped by its PID 1 (tini): no zombies pile up
    (41 were once found on one host whose PID 1 was ``sleep infinity``)."""
    host = lab_hosts[lab.hosts[0].name]
    assert host.check_output("cat /proc/1/comm") == "tini"
    pids = host.check_output(ORPHANS, 20).split()
    assert len(pids) == 20

    def states() -> dict[str, str]:  # pid -> "state ppid" of those still in the process table
        out = host.run("for p in %s; do [ -r /proc/$p/stat ] && echo $p $(cut -d' ' -f3,4 "
                       "/proc/$p/stat); done; true", " ".join(pids)).stdout
        return {p: rest for p, _, rest in (ln.partition(" ") for ln in out.splitlines())}

    early = states()
    assert all(v.endswith(" 1") for v in early.values()), early  # orphans: children of PID 1
    deadline = time.monotonic() + 120  # they end after 0.3 s; room for a busy machine
    left = early
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = states()
    assert not left, f"not reaped: {left}"  # a zombie stays listed with state Z, ppid 1


def test_seed_audit_log_lands_only_on_that_host(
    lab: Lab, lab_hosts: dict[str, Host], tmp_path: Path
) -> None:
    recorded = tmp_path / "audit.log"
    recorded.write_text('type=AVC msg=audit(1700000000.123:42): avc:  denied  { read } '
                        'for  pid=1 comm="x" scontext=a tcontext=b tclass=file permissive=1\n')
    a, b, _ = lab.hosts
    lab.seed_audit_log(a.name, recorded)
    assert lab_hosts[a.name].check_output("sudo -n cat /var/log/audit/audit.log") == (
        recorded.read_text().rstrip("\n"))
    assert lab_hosts[b.name].run("sudo -n test -s /var/log/audit/audit.log").rc != 0


# -- network and faults --------------------------------------------------------------------
def test_iperf3_between_hosts_and_link_faults(lab: Lab, lab_hosts: dict[str, Host]) -> None:
    server, client = (lab_hosts[h.name] for h in lab.hosts[:2])
    baseline = iperf_mbps(server, client)
    assert baseline > 500, f"veth between lab hosts should carry > 500 Mbit/s, got {baseline}"
    try:
        lab.fault(server.name, rate=50)
        limited = iperf_mbps(server, client)
        assert limited < 75, f"rate 50 Mbit/s fault: measured {limited:.1f} Mbit/s"
        lab.fault(server.name, clear=True)
        lab.fault(server.name, loss=10)
        lossy = iperf_mbps(server, client)
        assert lossy < baseline / 5, f"10% loss: {lossy:.0f} vs baseline {baseline:.0f} Mbit/s"
        assert "loss=10" in dict((h.name, s) for h, s in lab.status())[server.name]
    finally:
        lab.fault(server.name, clear=True)
    recovered = iperf_mbps(server, client)
    assert recovered > baseline / 3, f"after clear: {recovered:.0f} vs {baseline:.0f} Mbit/s"


def test_sshd_stop_and_link_down_make_a_host_unreachable(lab: Lab) -> None:
    host = lab.hosts[2]
    # no reconnect budget: the test is about how each fault shows, not about waiting it out
    spec = next(s for s in lab_host_specs(lab, connect_timeout=3, reconnect_within=0.0)
                if s.name == host.name)
    try:
        lab.fault(host.name, sshd_stop=True)
        assert dict((h.name, s) for h, s in lab.status())[host.name] == (
            "unreachable (sshd stopped)")
        with pytest.raises(HostUnreachable, match=host.address):
            connect(spec)
        lab.fault(host.name, clear=True)
        lab.fault(host.name, down=True)
        assert dict((h.name, s) for h, s in lab.status())[host.name] == "down (link down)"
        with pytest.raises(HostUnreachable, match=r"timed out|unreachable|No route"):
            connect(spec)
    finally:
        lab.fault(host.name, clear=True)
    deadline = time.monotonic() + 15  # sshd restarted by the clear answers within seconds
    while not all(s == "ok" for _, s in lab.status()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert all(s == "ok" for _, s in lab.status()), lab.status()
    connect(spec).close()


# -- lifecycle ----------------------------------------------------------------------------
def test_up_again_changes_nothing(lab: Lab) -> None:
    before = [(h.name, h.address, h.holder_pid, h.loop) for h in lab.hosts]
    lab.up(3, ["azl3", "azl3-hwe", "mariner2"])
    assert [(h.name, h.address, h.holder_pid, h.loop) for h in lab.hosts] == before
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert sum(f"azl-{lab.name}-" in line for line in netns.splitlines()) == 3


def test_up_adds_hosts_and_down_leaves_nothing() -> None:
    with make_lab(unique_lab_name("d"), hosts=1, variants=["azl3-fips", "azl3-osguard"]) as lab:
        first = lab.hosts[0]
        hosts = lab.up(2, ["azl3-fips", "azl3-osguard"], "64M")
        assert [(h.name, h.variant) for h in hosts] == [
            (lab.names.host(1), "azl3-fips"), (lab.names.host(2), "azl3-osguard")]
        assert hosts[0].holder_pid == first.holder_pid  # the running host was kept
        made = {
            "pids": [p for h in hosts for p in (h.holder_pid, init_pid(h.holder_pid or 0))],
            "netns": [h.netns for h in hosts],
            "links": [lab.names.bridge, *(h.veth for h in hosts)],
            "loops": [h.loop for h in hosts],
        }
        state_dir = lab.state_dir
        lab.down()
        lab.down()  # idempotent
    assert not state_dir.exists()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in made["netns"] if n in netns.split()]
    for link in made["links"]:
        assert not lab_system.link_exists(link), link
    losetup = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert str(state_dir) not in losetup
    for dev in made["loops"]:
        assert dev and not Path(f"/sys/block/{Path(dev).name}/loop/backing_file").exists()
    alive = [p for p in made["pids"] if p and pid_alive(p)]
    assert not alive
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(state_dir) not in mounts
    stray = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True)
    assert str(state_dir) not in stray.stdout


def test_kind_lab_target_starts_and_stops_the_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_lab_name("r")
    monkeypatch.setenv(LAB_NAME_ENV, "not-this-one")  # the target's own ``lab:`` wins
    lab = Lab(name)
    lab.down()
    config = LabTarget(kind="lab", hosts=2, variants=["azl3-fips"], disk_size="64M", lab=name)
    try:
        resolved = resolve_lab_target("mylab", config, start=True)
        assert resolved.undo is not None and lab.is_up()
        assert isinstance(resolved.context, Lab) and resolved.context.name == name
        assert [(s.name, s.target, s.access) for s in resolved.hosts] == [
            (f"{name}-1", "mylab", "ssh"), (f"{name}-2", "mylab", "ssh")]
        again = resolve_lab_target("mylab", config, start=False)
        assert again.undo is None and list(again.hosts) == list(resolved.hosts)
        # without ``lab:`` the target means $AZL_LAB_NAME's lab
        monkeypatch.setenv(LAB_NAME_ENV, name)
        by_env = resolve_lab_target("mylab", config.model_copy(update={"lab": None}),
                                    start=False)
        assert list(by_env.hosts) == list(resolved.hosts)
        host = connect(resolved.hosts[0])
        assert host.facts.variant_id == "fips"
        host.close()
        resolved.undo()
        assert not lab.is_up()
        with pytest.raises(TargetsError, match="is not up"):
            resolve_lab_target("mylab", config, start=False)
    finally:
        lab.down()


def test_cli_honours_azl_lab_name_and_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AZL_LAB_NAME=x azl lab down`` takes down lab x (it once took down lab ``azl``);
    ``--name`` wins over the variable."""
    with make_lab(unique_lab_name("n"), hosts=1, variants=["azl3"]) as lab:
        env = {**os.environ, LAB_NAME_ENV: lab.name}
        status = azl("lab", "status", env=env)
        assert status.returncode == 0 and f"lab {lab.name}: 1 hosts" in status.stdout, status
        other = unique_lab_name("n2")
        named = azl("lab", "status", "--name", other, env=env)
        assert f"lab {other}: not up" in named.stdout and lab.is_up()
        listed = azl("lab", "list")  # every lab on the machine, this one up with its host
        line = next(x for x in listed.stdout.splitlines() if x.split()[0] == lab.name)
        assert line.split()[1] == "up" and f"{lab.name}-1" in line, listed.stdout
        assert other not in listed.stdout  # never up: no state, not listed
        down = azl("lab", "down", env=env)
        assert down.returncode == 0 and f"lab {lab.name}: taken down" in down.stdout, down
        assert not lab.is_up() and not lab.state_dir.exists()
        assert lab.name not in azl("lab", "list").stdout.split()


# -- errors -------------------------------------------------------------------------------
def test_clear_errors(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = lab.load_state()
    assert state is not None
    busy = azl("lab", "up", "--name", unique_lab_name("e"), "--subnet", state.subnet)
    assert busy.returncode == 2
    assert f"lab subnet {state.subnet} is already in use" in busy.stderr
    assert "Traceback" not in busy.stderr
    assert not Lab(unique_lab_name("e")).state_dir.exists()

    unknown = azl("lab", "up", "--name", unique_lab_name("e"), "--variant", "debian")
    assert "unknown lab variant 'debian'" in unknown.stderr and unknown.returncode == 2

    # The tests run as root: fake only the uid the check sees, then run the real command.
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli_main(["lab", "up", "--name", unique_lab_name("e")]) == 2
    err = capsys.readouterr().err
    assert "azl lab up needs root" in err and "Traceback" not in err
    monkeypatch.undo()

    # Fake only the detection (iperf3 is installed here): the message names the package.
    real_which = lab_system.which
    monkeypatch.setattr(lab_system, "which", lambda t: None if t == "iperf3" else real_which(t))
    with pytest.raises(LabError, match=r"iperf3.*apt-get install -y iperf3"):
        lab_system.require_tools()
    with pytest.raises(LabError, match="no host 'nope'"):
        lab.fault("nope", down=True)


# -- pure parts (no root needed) -----------------------------------------------------------
def test_subnet_choice_skips_used_and_reports_exhaustion() -> None:
    from ipaddress import IPv4Network as Net

    from pytest_azlinux.lab.subnets import pick_subnet
    from pytest_azlinux.vm.net import ADDRESS_RANGE

    used = [Net("198.18.0.0/24"), Net("198.18.1.7/32"), Net("10.0.0.0/8")]
    assert pick_subnet(used) == Net("198.18.2.0/24")
    with pytest.raises(LabError, match=r"198\.18\.0\.0/24 is already in use"):
        pick_subnet(used, explicit="198.18.0.0/24")
    with pytest.raises(LabError, match=r"outside 198\.18\.0\.0/15"):
        pick_subnet(used, explicit="10.1.2.0/24")
    with pytest.raises(LabError, match="exhausted"):
        pick_subnet([ADDRESS_RANGE])


def test_one_function_decides_the_lab_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_azlinux.lab.names import lab_name

    monkeypatch.delenv(LAB_NAME_ENV, raising=False)
    assert lab_name(None) == "azl" and Lab().name == "azl"
    monkeypatch.setenv(LAB_NAME_ENV, "from-env")
    assert lab_name(None) == "from-env" and Lab().name == "from-env"
    assert lab_name("chosen") == "chosen" and Lab("chosen").name == "chosen"
    monkeypatch.setenv(LAB_NAME_ENV, "Bad Name")
    with pytest.raises(LabError, match="invalid lab name 'Bad Name'"):
        lab_name(None)


def test_interface_names_fit_and_differ_per_lab() -> None:
    from pytest_azlinux.lab.names import LabNames

    long_a, long_b = LabNames("t4194303"), LabNames("t4194304")
    for names in (LabNames("azl"), long_a, long_b):
        assert len(names.bridge) <= 15 and len(names.veth(253)) <= 15
    assert long_a.bridge != long_b.bridge and long_a.veth(1) != long_b.veth(1)
    with pytest.raises(LabError, match="invalid lab name"):
        Lab("Bad Name")


def test_loss_program_threshold() -> None:
    from pytest_azlinux.lab.faults import LinkFault, loss_bytecode

    assert loss_bytecode(25).split(",")[2] == f"53 0 1 {1 << 30}"
    assert loss_bytecode(100).split(",")[2] == f"53 0 1 {(1 << 32) - 1}"
    with pytest.raises(LabError, match="--loss 150"):
        LinkFault(loss=150)
    assert lab_system.parse_size("1G") == 1 << 30 and lab_system.parse_size("512MiB") == 1 << 29
    with pytest.raises(LabError, match="invalid disk size"):
        lab_system.parse_size("lots")

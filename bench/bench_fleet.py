"""The fleet benchmark: 10 lab hosts x 30 read-only checks, ours against pytest-testinfra.

Brings up a lab of namespaced hosts (real sshd each), writes the same 30 checks twice (one
module using ``azl_host``, one using testinfra's ``host`` over its paramiko backend, a new
channel per command) and runs each as its own pytest process against the same hosts in
the same run, alternating (ours, testinfra, ours, testinfra...) so drift hits both. Prints
wall times, their ratio (issue 15's goal: ours / testinfra <= 0.20), what each run spent
in its tests (JUnit times) and outside them (start, connect, reports), and the per-command
cost of both on the same hosts in this process. Needs root (the lab) and pytest-testinfra.

    python bench/bench_fleet.py [--hosts 10] [--rounds 2] [--name benchfleet]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_azlinux.host import Host  # noqa: E402
from pytest_azlinux.lab import Lab  # noqa: E402
from pytest_azlinux.transport.ssh import SshTransport  # noqa: E402
from tests.fixtures.lab import lab_host_specs  # noqa: E402

CHECKS = [
    "cat /etc/os-release", "uname -r", "uname -m", "hostname", "id -u",
    "stat /etc/passwd", "stat -c %a /etc/shadow", "stat -c %U /etc/ssh", "stat -c %a /tmp",
    "stat -c %s /etc/group", "/sbin/sysctl -n kernel.randomize_va_space",
    "/sbin/sysctl -n net.ipv4.ip_forward", "/sbin/sysctl -n fs.protected_symlinks",
    "/sbin/sysctl -n fs.protected_hardlinks", "/sbin/sysctl -n kernel.kptr_restrict",
    "/sbin/sysctl -n kernel.dmesg_restrict", "/sbin/sysctl -n net.ipv4.tcp_syncookies",
    "/sbin/sysctl -n vm.swappiness", "cat /proc/cmdline", "cat /proc/sys/kernel/osrelease",
    "cat /proc/sys/fs/file-max", "cat /proc/loadavg", "test -d /etc", "test -x /bin/sh",
    "test -r /etc/os-release", "ls /etc/ssh", "getent passwd root", "grep -c . /etc/passwd",
    "cat /etc/hostname", "ls -ld /var/log",
]

OURS = f"""
import pytest

CHECKS = {CHECKS!r}


@pytest.mark.parametrize("command", CHECKS)
def test_check(azl_host, command):
    assert azl_host.run(command).rc == 0
"""

THEIRS = f"""
import pytest

CHECKS = {CHECKS!r}


@pytest.mark.parametrize("command", CHECKS)
def test_check(host, command):
    assert host.run(command).rc == 0
"""


@dataclass
class Run:
    wall: float
    in_tests: float  # sum of the JUnit testcase times (setup + call + teardown)
    first_per_host: float  # the first test of each host: includes its connect
    tests: int


def run_pytest(argv: list[str], junit: Path, cwd: Path) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         *argv], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"pytest {' '.join(argv)} exited {done.returncode}:\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cases = ET.parse(junit).getroot().iter("testcase")
    times: dict[str, list[float]] = {}
    for case in cases:
        host = case.get("name", "").split("-")[-1].rstrip("]")
        times.setdefault(host, []).append(float(case.get("time", 0)))
    return Run(wall, sum(sum(t) for t in times.values()),
               sum(t[0] for t in times.values()), sum(len(t) for t in times.values()))


def per_command(lab: Lab, count: int, command: str) -> tuple[float, float]:
    """Median time of ``command`` on the lab's hosts: ours, and testinfra's paramiko backend."""
    import testinfra  # type: ignore[import-untyped]

    specs = lab_host_specs(lab)
    ours_hosts = [Host(s, SshTransport(s)) for s in specs]
    theirs = [testinfra.get_host(f"paramiko://{s.user}@{s.address}",
                                 ssh_identity_file=s.identity_file) for s in specs]
    for h in ours_hosts:
        h.run("true")
    for t in theirs:
        t.run("true")
    ours_s, theirs_s = [], []
    try:
        for _ in range(count):
            for ours, their in zip(ours_hosts, theirs, strict=True):
                start = time.perf_counter()
                ours.run(command)
                ours_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                their.run(command)
                theirs_s.append(time.perf_counter() - start)
    finally:
        for h in ours_hosts:
            h.close()
    return statistics.median(ours_s), statistics.median(theirs_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="benchfleet")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_fleet: the lab needs root", file=sys.stderr)
        return 2
    lab = Lab(args.name)
    lab.down()
    ours: list[Run] = []
    theirs: list[Run] = []
    try:
        hosts = lab.up(args.hosts, ["azl3", "azl3-hwe", "mariner2"])
        specs = lab_host_specs(lab)
        identity = specs[0].identity_file
        addresses = ",".join(f"paramiko://{s.user}@{s.address}" for s in specs)
        with tempfile.TemporaryDirectory(prefix="azl-fleet-") as tmp:
            work = Path(tmp)
            (work / "test_ours.py").write_text(OURS)
            (work / "test_theirs.py").write_text(THEIRS)
            ours_argv = ["test_ours.py", "-p", "no:testinfra", "--azl-targets-file",
                         str(lab.targets_file), "--azl-target", "lab",
                         f"--azl-junit-dir={work / 'reports'}"]
            theirs_argv = ["test_theirs.py", "-p", "no:azlinux", f"--hosts={addresses}",
                           f"--ssh-identity-file={identity}"]
            for index in range(args.rounds):
                ours.append(run_pytest(ours_argv, work / f"ours{index}.xml", work))
                theirs.append(run_pytest(theirs_argv, work / f"theirs{index}.xml", work))
        commands = {c: per_command(lab, 30, c) for c in ("true", "cat /etc/os-release")}
    finally:
        lab.down()
    load = os.getloadavg()
    print(f"{len(hosts)} lab hosts x {len(CHECKS)} checks = {ours[0].tests} tests per run; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, runs in (("ours (azl_host)", ours), ("testinfra (paramiko)", theirs)):
        for r in runs:
            print(f"  {name:22s} wall {r.wall:6.2f} s  in tests {r.in_tests:6.2f} s "
                  f"(first test per host, with connect: {r.first_per_host:5.2f} s)  "
                  f"outside tests {r.wall - r.in_tests:5.2f} s")
    ours_wall = statistics.mean(r.wall for r in ours)
    theirs_wall = statistics.mean(r.wall for r in theirs)
    ratio = ours_wall / theirs_wall
    in_tests = statistics.mean(r.in_tests - r.first_per_host for r in ours) / statistics.mean(
        r.in_tests - r.first_per_host for r in theirs)
    print(f"whole run: ours / testinfra = {ratio:.3f} (goal <= 0.20: "
          f"{'met' if ratio <= 0.20 else 'NOT met'})")
    print(f"tests after each host's first (no connect): ours / testinfra = {in_tests:.3f}")
    for command, (ours_cmd, theirs_cmd) in commands.items():
        print(f"per command ({command!r}, same hosts): ours {ours_cmd * 1000:.3f} ms, "
              f"testinfra {theirs_cmd * 1000:.3f} ms, ratio {ours_cmd / theirs_cmd:.3f}")
    return 0 if ratio <= 0.20 else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""What the sentinels cost per test on a warm SSH host.

Run as root: ``python bench/bench_sentinels.py [--checks 200] [--limit-ms 5]``. Starts a lab
of one namespaced host (or uses ``--lab NAME``), connects over SSH as the lab's user with
sudo (so the kernel log can be read), and times, each the median of ``--checks`` runs:

- ``round trip``: ``true`` through the host's persistent shell (what any command costs);
- ``check, lab host``: the end-of-test check as the plugin runs it on a lab host (no
  round trip: the kernel is this machine's, no systemd, no audit log of its own);
- ``check, kernel + denials``: the same host taken as one with a kernel of its own: the
  kernel log read from /dev/kmsg (``dd`` | ``awk`` keeping only new records, here the
  machine's log of ``kmsg_records`` records) and the audit log's size;
- ``check, VM`` (with ``--vm-targets PATH``): a lab VM's targets file; kernel, units and
  audit log (a qemu VM under software emulation is far slower than real hardware).

Sentinels cost one check per test and host (the window of a test starts where the host's
previous check ended). Prints one line per figure and the load average; exit status 1 when
the kernel + denials check exceeds ``--limit-ms``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pytest_azlinux.gate.sentinels import HostWatch
from pytest_azlinux.gate.settings import SentinelSettings
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.session import make_transport
from pytest_azlinux.targets import HostSpec, SshTarget, load_targets, ssh_host_specs

DENIALS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sentinels" / \
    "vm_audit_denials.log"


def median_ms(fn: Callable[[], object], n: int) -> float:
    fn()  # warm: the shell, sudo, the page cache
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def connect(spec: HostSpec) -> Host:
    host = Host(spec, make_transport(spec), 60.0)
    host.transport.connect()
    return host


def bench_watch(host: Host, watch: HostWatch, settings: SentinelSettings, n: int) -> float:
    watch.check(host, settings)  # the probe, once per host and run
    if not watch.active:
        return 0.0
    return median_ms(lambda: watch.check(host, settings), n)


def host_cpu_ms(host: Host, script: str, n: int) -> float:
    """CPU (user + system) the check script costs on the host, from the shell's ``times``
    over ``n`` runs: unlike wall time, it does not grow with the machine's load."""
    loop = (f"i=0; while [ $i -lt {n} ]; do sh -c {shlex.quote(script)} >/dev/null; "
            "i=$((i+1)); done; times")
    children = host.run(loop, timeout=600).stdout.strip().splitlines()[-1].split()
    seconds = sum(float(t.rstrip("s").split("m")[0]) * 60 + float(t.rstrip("s").split("m")[1])
                  for t in children)
    return seconds * 1000 / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--limit-ms", type=float, default=5.0)
    parser.add_argument("--lab", help="use this running lab instead of starting one")
    parser.add_argument("--vm-targets", type=Path, help="a lab's vm-targets.yaml")
    args = parser.parse_args()
    lab = Lab(args.lab or f"bs{os.getpid()}")
    started = not lab.is_up()
    if started:
        lab.up(1, ["azl3"], "64M")
    settings = SentinelSettings()
    try:
        target = load_targets(lab.targets_file).get("lab")
        assert isinstance(target, SshTarget)
        spec = dataclasses.replace(ssh_host_specs(target, "lab")[0], sudo=True)
        lab.seed_audit_log(spec.name, DENIALS)  # an audit log to watch (a private file)
        host = connect(spec)
        try:
            records = host.run("dd if=/dev/kmsg iflag=nonblock bs=16384 2>/dev/null | "
                               "grep -c '^[0-9]'").stdout.strip()
            rows = [
                ("round trip (true)", median_ms(lambda: host.run("true"), args.checks)),
                ("check, lab host (audit log only: the kernel is the machine's, no systemd)",
                 bench_watch(host, HostWatch(spec.name, False), settings, args.checks)),
            ]
            # as a host with a kernel of its own: the boot id rule does not apply
            own = HostWatch(spec.name, local_access=True)
            full = bench_watch(host, own, settings, args.checks)
            rows.append((f"check, kernel + denials (kmsg_records={records}, "
                         f"off: {', '.join(own.off) or 'none'})", full))
            rows.append(("  CPU on the host per check (user + system)",
                         host_cpu_ms(host, own.script(settings), args.checks)))
        finally:
            host.close()
        if args.vm_targets is not None:
            vm_target = load_targets(args.vm_targets).get("lab-vm")
            assert isinstance(vm_target, SshTarget)
            vm = connect(ssh_host_specs(vm_target, "lab-vm")[0])
            try:
                rows.append(("round trip (true), VM", median_ms(lambda: vm.run("true"), 10)))
                rows.append(("check, VM (kernel, units, audit log)",
                             bench_watch(vm, HostWatch(vm.name, False), settings, 10)))
            finally:
                vm.close()
    finally:
        if started:
            lab.down()
    for name, ms in rows:
        print(f"{name:70} {ms:8.2f} ms")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if full > args.limit_ms else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``azl lab``: up, down, status, list, fault, seed-audit."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .cluster_cli import register_cluster
from .lab import Lab, known_labs
from .names import DEFAULT_LAB_NAME, LAB_NAME_ENV
from .variants import DEFAULT_VARIANTS, variant_names
from .vm import vm_status
from .vm_cli import add_vm_option, register_vm, up_vms


def register(subparsers: Any) -> None:
    lab = subparsers.add_parser("lab", help="the local lab: namespaced hosts with sshd")
    sub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", help=f"lab name (default: ${LAB_NAME_ENV}, else "
                       f"{DEFAULT_LAB_NAME})")
        p.add_argument("--state-dir", help="state directory (default: $AZL_LAB_DIR or "
                       "/var/lib/azl-lab, then /<name>)")

    up = sub.add_parser("up", help="create (or complete) the lab's hosts")
    common(up)
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (default 3)")
    up.add_argument("--variant", action="append", dest="variants", metavar="V",
                    help=f"image variant, repeat to cycle ({', '.join(variant_names())}; "
                    f"default {' '.join(DEFAULT_VARIANTS)})")
    up.add_argument("--disk-size", default="1G", help="scratch disk per host (default 1G)")
    up.add_argument("--subnet", help="a /24 inside 198.18.0.0/15 (default: first free one)")
    add_vm_option(up)
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="remove everything the lab made")
    common(down)
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="hosts and their health")
    common(status)
    status.set_defaults(func=_status)

    listing = sub.add_parser("list", help="the labs on this machine, up or not")
    listing.add_argument("--state-dir", help="parent of the labs' state directories "
                         "(default: $AZL_LAB_DIR or /var/lib/azl-lab)")
    listing.set_defaults(func=_list)

    register_vm(sub)
    register_cluster(sub)

    fault = sub.add_parser("fault", help="apply or clear a fault on one host")
    common(fault)
    fault.add_argument("host", help="host name (or index, or address)")
    fault.add_argument("--down", action="store_true", help="link down")
    fault.add_argument("--sshd-stop", action="store_true", help="stop sshd")
    fault.add_argument("--loss", type=float, metavar="PCT", help="packet loss in percent")
    fault.add_argument("--delay", type=float, metavar="MS", help="added delay (needs netem)")
    fault.add_argument("--rate", type=float, metavar="MBIT", help="rate limit in Mbit/s")
    fault.add_argument("--clear", action="store_true", help="remove all faults")
    fault.set_defaults(func=_fault)

    seed = sub.add_parser("seed-audit", help="install a recorded audit log on a host")
    common(seed)
    seed.add_argument("host")
    seed.add_argument("file")
    seed.set_defaults(func=_seed)


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.name, state_dir=args.state_dir, subnet=getattr(args, "subnet", None))


def _up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    start = time.monotonic()
    hosts = lab.up(args.hosts, args.variants or DEFAULT_VARIANTS, args.disk_size)
    took = time.monotonic() - start
    print(f"lab {lab.name}: {len(hosts)} hosts up in {took:.1f} s")
    _print_hosts(lab)
    up_vms(lab, args.vms)
    print(f"targets file: {lab.targets_file}  (pytest --azl-targets-file {lab.targets_file} "
          "--azl-target lab)")
    print(f"ssh: ssh -i {lab.identity_file} -o UserKnownHostsFile={lab.known_hosts} "
          f"azureuser@{hosts[0].address}")
    return 0


def _print_hosts(lab: Lab) -> bool:
    rows = lab.status()
    healthy = True
    for host, health in rows:
        healthy &= health.startswith("ok")
        loop = host.loop or "-"
        print(f"  {host.name:16} {host.address:15} {host.variant:13} {loop:12} {health}")
    return healthy


def _down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    was_up = lab.state_dir.exists()
    lab.down()
    print(f"lab {lab.name}: " + ("taken down" if was_up else "was not up"))
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if not lab.is_up():
        print(f"lab {lab.name}: not up")
        return 3
    state = lab.load_state()
    assert state is not None
    print(f"lab {lab.name}: {len(state.hosts)} hosts on {state.subnet} "
          f"(bridge {state.bridge}, machine {state.bridge_address})")
    healthy = _print_hosts(lab)
    for vm in vm_status(lab):
        healthy &= vm["state"] == "running"
        print(f"  {vm['name']:16} {vm['address']:15} vm:{vm['variant']:10} "
              f"{vm['accel']:12} {vm['state']}")
    return 0 if healthy else 1


def _list(args: argparse.Namespace) -> int:
    """One line per lab: its name, whether it is up, its subnet and hosts. Read-only: it
    touches no lab."""
    parent = Path(args.state_dir) if args.state_dir else None
    names = known_labs(parent)
    if not names:
        print("no labs")
        return 0
    for name in names:
        lab = Lab(name, state_dir=(parent / name) if parent else None)
        state = lab.load_state()
        hosts = ", ".join(h.name for h in sorted(state.hosts, key=lambda h: h.index)) \
            if state else ""
        where = f"{state.subnet}  {hosts}" if state else ""
        print(f"{name:16} {'up' if lab.is_up() else 'down':5} {where}".rstrip())
    return 0


def _fault(args: argparse.Namespace) -> int:
    lab = _lab(args)
    host = lab.fault(args.host, down=args.down, sshd_stop=args.sshd_stop, loss=args.loss,
                     delay=args.delay, rate=args.rate, clear=args.clear)
    print(f"{host.name}: faults {host.faults or 'cleared'}")
    return 0


def _seed(args: argparse.Namespace) -> int:
    dest = _lab(args).seed_audit_log(args.host, args.file)
    print(f"{args.host}: /var/log/audit/audit.log seeded ({dest})")
    return 0

"""Time ``azl lab up --hosts N`` and ``down`` (the issue's bar: 50 hosts within 60 s).

Run as root: ``python bench/bench_lab_up.py [--hosts 50] [--name benchlab]``.
Prints the figures, checks every host answers on SSH, and always takes the lab down.
"""

from __future__ import annotations

import argparse
import sys
import time

from pytest_azlinux.lab import Lab
from pytest_azlinux.vm.net import ssh_banner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--name", default="benchlab")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds allowed for up")
    args = parser.parse_args()
    lab = Lab(args.name)
    lab.down()
    try:
        start = time.monotonic()
        hosts = lab.up(args.hosts, ["azl3", "azl3-hwe", "azl3-fips", "azl3-osguard", "mariner2"])
        up_s = time.monotonic() - start
        answering = sum(1 for h in hosts if ssh_banner(h.address))
        start = time.monotonic()
        lab.up(args.hosts)
        again_s = time.monotonic() - start
    finally:
        start = time.monotonic()
        lab.down()
        down_s = time.monotonic() - start
    print(f"lab up --hosts {args.hosts}: {up_s:.2f} s ({answering}/{len(hosts)} sshd answering)")
    print(f"lab up again (idempotent, nothing to do): {again_s:.2f} s")
    print(f"lab down: {down_s:.2f} s")
    ok = up_s <= args.limit and answering == len(hosts) == args.hosts
    print("PASS" if ok else f"FAIL (limit {args.limit:g} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

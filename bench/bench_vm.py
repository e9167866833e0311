"""Time lab VM hosts: cold image build, cold boot (to sshd) and warm boot.

Run as root: ``python bench/bench_vm.py [--variant selinux-enforcing] [--cold] [--all]``.

- ``--cold`` removes the cached images of the current recipe first (the downloaded .deb
  files are kept: the figure is the build itself, not the mirror's speed);
- cold boot: the first boot after the image was (re)built, with a fresh instance;
- warm boot: stop, then boot the same variant again (images in the page cache);
- ``--all``: then boot every variant at once (as many in parallel as the budget allows).

A lab of one namespaced host supplies the bridge; it is always taken down.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from pytest_azlinux.lab import Lab
from pytest_azlinux.lab.vm import start_vms, stop_vms
from pytest_azlinux.lab.vm_image import ensure_image, recipe_hash
from pytest_azlinux.lab.vm_variants import VARIANTS, get_variant
from pytest_azlinux.vm.accel import cache_root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="selinux-enforcing", choices=list(VARIANTS))
    parser.add_argument("--cold", action="store_true", help="rebuild the images first")
    parser.add_argument("--all", action="store_true", help="also boot all variants at once")
    parser.add_argument("--name", default="benchvm")
    args = parser.parse_args()
    figures: list[str] = []
    layout = get_variant(args.variant).layout
    if args.cold:
        for kind in ("rootfs", "base", "verity"):
            shutil.rmtree(cache_root() / f"{kind}-{recipe_hash()}", ignore_errors=True)
    t0 = time.monotonic()
    ensure_image(layout)
    build_s = time.monotonic() - t0
    figures.append(f"image build ({layout}, {'cold' if args.cold else 'cached'}): {build_s:.1f} s")
    if layout == "base":
        t0 = time.monotonic()
        ensure_image("verity")
        figures.append(f"verity layout from the cached tree: {time.monotonic() - t0:.1f} s")
    lab = Lab(args.name)
    lab.down()
    try:
        lab.up(1)
        (vm,) = start_vms(lab, [args.variant])
        figures.append(f"cold boot {args.variant} ({vm.accel}) to sshd: {vm.boot_seconds:.1f} s")
        stop_vms(lab)
        (vm,) = start_vms(lab, [args.variant])
        figures.append(f"warm boot {args.variant} ({vm.accel}) to sshd: {vm.boot_seconds:.1f} s")
        stop_vms(lab)
        if args.all:
            t0 = time.monotonic()
            vms = start_vms(lab, list(VARIANTS))
            wall = time.monotonic() - t0
            each = ", ".join(f"{v.variant} {v.boot_seconds:.0f} s" for v in vms)
            figures.append(f"all {len(vms)} variants to sshd: {wall:.1f} s wall ({each})")
    finally:
        stop_vms(lab)
        lab.down()
    print("\n".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

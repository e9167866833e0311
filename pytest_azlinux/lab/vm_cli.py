"""``azl lab vm``: build images, start, stop and list the lab's VM hosts.

``register_vm(lab_subparsers)`` adds the ``vm`` action to ``azl lab``; ``add_vm_option``
gives ``azl lab up`` a ``--vm VARIANT`` option and ``up_vms``/``down_vms`` are what its
handlers call.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from ..vm.accel import cache_root
from .lab import Lab
from .names import DEFAULT_LAB_NAME, LAB_NAME_ENV
from .vm import start_vms, stop_vms, vm_status, write_vm_targets
from .vm_image import ensure_image, recipe_hash
from .vm_variants import VARIANTS, get_variant


def add_vm_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vm", action="append", dest="vms", metavar="VARIANT", default=[],
        help=f"also boot a VM host of this variant ({', '.join(VARIANTS)}); repeatable",
    )  # fmt: skip


def up_vms(lab: Lab, variants: Sequence[str]) -> int:
    """Start the VMs and print them; for ``azl lab up --vm``."""
    if not variants:
        return 0
    t0 = time.monotonic()
    vms = start_vms(lab, list(variants))
    print(f"lab {lab.name}: {len(vms)} VM(s) up in {time.monotonic() - t0:.1f} s")
    _print(lab)
    path = write_vm_targets(lab)
    print(f"VM targets file: {path}  (pytest --azl-targets-file {path} --azl-target lab-vm)")
    return 0


def down_vms(lab: Lab) -> int:
    """Stop the lab's VMs (before ``Lab.down`` removes the bridge)."""
    if lab.load_state() is None:
        return 0
    return stop_vms(lab)


def _print(lab: Lab) -> None:
    for row in vm_status(lab):
        boot = f"{row['boot_seconds']:.1f} s" if row["boot_seconds"] else "-"
        print(
            f"  {row['name']:<28} {row['address']:<15} {row['state']:<8} {row['accel']:<4} "
            f"boot {boot:<8} ~ {row['stands_for']}"
        )


def register_vm(lab_subparsers: Any) -> None:
    """Add ``azl lab vm {build,up,down,status,variants}`` to the ``azl lab`` sub-commands."""
    vm = lab_subparsers.add_parser("vm", help="VM hosts with kernels of their own (qemu)")
    sub = vm.add_subparsers(dest="vm_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", help=f"lab name (default: ${LAB_NAME_ENV}, else "
                       f"{DEFAULT_LAB_NAME})")
        p.add_argument("--state-dir", help="the lab's state directory")

    build = sub.add_parser("build", help="build (or find in the cache) the VM images")
    build.add_argument("variants", nargs="*", metavar="VARIANT", help="default: all")
    build.set_defaults(func=_build)

    up = sub.add_parser("up", help="boot VM hosts on a running lab's bridge")
    common(up)
    up.add_argument("variants", nargs="+", metavar="VARIANT", choices=list(VARIANTS))
    up.set_defaults(func=lambda a: up_vms(_lab(a), a.variants))

    down = sub.add_parser("down", help="stop the lab's VM hosts and remove their files")
    common(down)
    down.set_defaults(func=lambda a: down_vms(_lab(a)) * 0)

    status = sub.add_parser("status", help="the lab's VM hosts")
    common(status)
    status.set_defaults(func=_status)

    variants = sub.add_parser("variants", help="the VM variants and what they stand for")
    variants.set_defaults(func=_variants)


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.name, state_dir=args.state_dir)


def _status(args: argparse.Namespace) -> int:
    _print(_lab(args))
    return 0


def _build(args: argparse.Namespace) -> int:
    names = args.variants or list(VARIANTS)
    for layout in dict.fromkeys(get_variant(v).layout for v in names):
        image = ensure_image(layout)
        print(f"{layout}: {image.directory}")
    print(f"cache: {cache_root()} (recipe {recipe_hash()})")
    return 0


def _variants(args: argparse.Namespace) -> int:
    for v in VARIANTS.values():
        print(f"{v.name:<19} {' '.join(v.cmdline):<46} ~ {v.stands_for}")
    return 0

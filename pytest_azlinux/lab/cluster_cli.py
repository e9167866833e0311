"""``azl lab cluster up|down|status``: the cluster test bed (kube-apiserver, etcd, kwok)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..errors import BedError
from .bed import DEFAULT_ROOT, ClusterBed, add_lab_pool, write_targets


def register_cluster(subparsers: Any) -> None:
    """Add ``cluster`` to the ``azl lab`` actions."""
    cluster = subparsers.add_parser(
        "cluster", help="the cluster test bed: real kube-apiserver + etcd, kwok-simulated nodes")
    sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:  # one flag set for up, down and status
        p.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                       help=f"state directory (default $AZL_TESTBED_ROOT or {DEFAULT_ROOT})")
        p.add_argument("--lab", metavar="NAME",
                       help="up: bind a pool to the hosts of this running lab (exec runs "
                       "inside them); down, status: the bed must be the one bound to this lab")

    up = sub.add_parser("up", help="start the bed (builds binaries on first use)")
    common(up)
    up.add_argument("--lab-pool", default="canary", help="pool name of the lab-backed nodes")
    up.add_argument("--real-nodes", type=int, default=0, metavar="N",
                    help="also boot N real nodes (lab VMs with containerd and a kubelet; "
                    "needs --lab)")
    up.add_argument("--real-pool", default="real", help="pool name of the real nodes")
    up.add_argument("--sim-pool", action="append", default=[], metavar="POOL:COUNT",
                    help="add COUNT simulated nodes without a lab host (API-level only)")
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop the bed and delete its data")
    common(down)
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="components and nodes")
    common(status)
    status.set_defaults(func=_status)


def _up(args: argparse.Namespace) -> int:
    from .lab import Lab

    bed = ClusterBed(args.root)
    start = time.monotonic()
    lab = Lab(args.lab) if args.lab else None
    listen = "127.0.0.1"
    if args.real_nodes:
        from .vm_variants import MAX_REAL_NODES

        if not 1 <= args.real_nodes <= MAX_REAL_NODES:
            raise BedError(f"--real-nodes: between 1 and {MAX_REAL_NODES}, not {args.real_nodes}")
        if lab is None:
            raise BedError("--real-nodes needs --lab NAME: the nodes are VMs on that lab's bridge")
        lab_state = lab.load_state()
        if lab_state is None:
            raise BedError(f"lab {lab.name} is not up (azl lab up --name {lab.name})")
        listen = lab_state.bridge_address
    state = bed.up(listen=listen)
    print(f"cluster test bed up in {time.monotonic() - start:.1f} s: {state.server}")
    pools: dict[str, str] = {}
    real: set[str] = set()
    if lab is not None:
        bed.record_lab(lab.name)
        nodes = add_lab_pool(bed, args.lab_pool, lab)
        pools[f"nodepool-{args.lab_pool}"] = args.lab_pool
        print(f"pool {args.lab_pool}: {len(nodes)} nodes backed by lab {args.lab}")
    if args.real_nodes and lab is not None:
        from .bed.real_nodes import add_real_nodes

        try:
            reals = add_real_nodes(bed, lab, args.real_nodes, args.real_pool)
        except BaseException:
            bed.down()
            raise
        pools[f"nodepool-{args.real_pool}"] = args.real_pool
        real.add(args.real_pool)
        print(f"pool {args.real_pool}: {len(reals)} real nodes "
              f"({', '.join(n.address for n in reals)}) after "
              f"{time.monotonic() - start:.1f} s")
    for item in args.sim_pool:
        pool, _, count = item.partition(":")
        n = bed.add_pool(pool, int(count or 1))
        pools[f"nodepool-{pool}"] = pool
        print(f"pool {pool}: {len(n)} simulated nodes (no lab host: exec is refused)")
    targets = write_targets(bed, bed.root / "targets.yaml", pools, real)
    print(f"kubeconfig: {bed.kubeconfig}\ntargets file: {targets}")
    return 0


def _bed_of(args: argparse.Namespace) -> ClusterBed:
    """The bed at ``--root``; with ``--lab``, refused unless it is bound to that lab (a bed
    that is not started is bound to none: nothing to refuse)."""
    bed = ClusterBed(args.root)
    if args.lab and bed.running():
        bound = bed.state().lab
        if bound != args.lab:
            raise BedError(f"the test bed at {args.root} is bound to "
                           f"{f'lab {bound}' if bound else 'no lab'}, not lab {args.lab}")
    return bed


def _down(args: argparse.Namespace) -> int:
    bed = _bed_of(args)
    existed = args.root.exists()
    left = bed.down(keep_logs=False)
    if not existed:
        print(f"cluster test bed down; nothing was at {args.root}")
    elif left:
        print(f"cluster test bed down; kept {args.root}: it holds what the bed did not write "
              f"({', '.join(left)})")
    else:
        print(f"cluster test bed down; {args.root} removed")
    return 0


def _status(args: argparse.Namespace) -> int:
    bed = _bed_of(args)
    running = bed.running()
    if not running:
        print("cluster test bed: not started")
        return 1
    if bed.state().lab:
        print(f"lab {bed.state().lab}")
    for name, alive in running.items():
        print(f"{name:26} {'running' if alive else 'DEAD'}")
    if bed.is_up():
        from ..cluster.k8s import client

        nodes = client.CoreV1Api(bed.api()).list_node().items
        pools: dict[str, int] = {}
        for n in nodes:
            pool = (n.metadata.labels or {}).get("agentpool", "?")
            pools[pool] = pools.get(pool, 0) + 1
        state = bed.state()
        print(f"server {state.server}; nodes: "
              + (", ".join(f"{p}={c}" for p, c in sorted(pools.items())) or "none"))
        ready = {n.metadata.name: any(c.type == "Ready" and c.status == "True"
                                      for c in (n.status.conditions or [])) for n in nodes}
        for name, variant in state.real_nodes.items():
            print(f"real node {name} (VM {state.lab}-{variant}): "
                  + ("Ready" if ready.get(name) else "not Ready"))
        return 0
    return 1

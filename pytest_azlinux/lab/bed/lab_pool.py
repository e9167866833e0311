"""Lab hosts behind simulated nodes, and the targets file that names the bed's pools."""

from __future__ import annotations

import shutil
from collections.abc import Collection, Mapping
from pathlib import Path

import yaml

from ...errors import BedError
from ..hostproc import enter_cmd
from ..lab import Lab
from .bed import ClusterBed
from .manifests import NodeImage, lab_node_image
from .node_images import POD_IMAGE

NAMESPACE = "azl-system"
DEBUG_IMAGE = "mcr.microsoft.com/cbl-mariner/busybox:2.0"


def add_lab_pool(
    bed: ClusterBed, pool: str, lab: Lab, image: NodeImage | None = None,
    nodes: int | None = None,
) -> list[str]:
    """Simulated nodes backed by the hosts of a running lab: exec into a node's pods runs
    inside its lab host. By default one node per host (the node's InternalIP is the host's
    address); ``nodes`` registers that many, bound to the hosts in turn (a pool larger than
    the lab: several nodes share a host, each with an address of its own)."""
    hosts = lab.hosts
    if not hosts:
        raise BedError(f"lab {lab.name} has no hosts: run `azl lab up` first")
    count = len(hosts) if nodes is None else nodes
    if count < 1:
        raise BedError(f"pool {pool}: nodes must be at least 1, not {count}")
    backing = [hosts[i % len(hosts)] for i in range(count)]
    names: list[str] = []
    for i, host in enumerate(backing):
        address = [host.address] if nodes is None else None  # None: an address of its own
        names += bed.add_pool(pool, 1, image=image or lab_node_image(host.variant),
                              addresses=address, prefix=f"aks-{pool}-31415926-vmss", start=i)
    for name, host in zip(names, backing, strict=True):
        enter = list(enter_cmd(host))
        if enter and enter[0] == "nsenter":  # not the pod-side shim of the same name
            enter[0] = shutil.which("nsenter") or "/usr/bin/nsenter"
        bed.bind_node(name, enter)
    return names


def write_targets(
    bed: ClusterBed, path: Path, pools: Mapping[str, str], real: Collection[str] = (),
) -> Path:
    """A targets file with one ``cluster`` target per pool (target name -> pool); the pools
    in ``real`` are real nodes, whose pods run the bed's own image (no registry here)."""
    targets = {
        name: {
            "kind": "cluster",
            "description": f"test-bed pool {pool} "
            + ("(real nodes: kubelet, containerd)" if pool in real else "(kwok-simulated nodes)"),
            "kubeconfig": str(bed.kubeconfig),
            "pool": pool,
            "namespace": NAMESPACE,
            "access": "debug-pod",
            "debug_image": POD_IMAGE if pool in real else DEBUG_IMAGE,
        }
        for name, pool in pools.items()
    }
    path.write_text(yaml.safe_dump({"targets": targets}, sort_keys=False))
    return path

"""The objects the test bed registers: simulated AKS nodes and the simulated CSI driver's classes.

Every simulated object declares what it cannot do (``cluster/limits.py``): suites read those
declarations, so they never need to know that a node is played by kwok.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...cluster.limits import POD_NETWORK, RUN_CONTAINERS, VOLUME_DATA, limit_annotation

SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"  # kwok manages nodes annotated <this>=fake
CSI_DRIVER = "csi.testbed.azl.local"  # the simulated CSI driver (kwok stages play it)
STORAGE_CLASS = "azl-testbed-csi"
SNAPSHOT_CLASS = "azl-testbed-vsc"

NODE_LIMITS = {
    RUN_CONTAINERS: "test-bed node simulated by kwok: pods are admitted but run no container "
                    "(exec runs in the lab host bound to the node)",
    POD_NETWORK: "test-bed node: pod IPs are the node's IP (no CNI), so pod and host network "
                 "are one path",
}
STORAGE_LIMITS = {
    VOLUME_DATA: "test-bed CSI driver simulated by kwok stages: volumes and snapshots change "
                 "status only and hold no data",
}


def _limit_annotations(limits: Mapping[str, str]) -> dict[str, str]:
    return {limit_annotation(capability): reason for capability, reason in limits.items()}


@dataclass(frozen=True)
class NodeImage:
    """What a simulated node reports: AKS labels and status.nodeInfo of an Azure Linux node."""

    node_image_version: str = "AKSAzureLinux-V3gen2-202511.07.0"
    os_image: str = "Microsoft Azure Linux 3.0"
    kernel_version: str = "6.6.104.2-4.azl3"
    container_runtime: str = "containerd://2.2.4"
    kubelet_version: str = "v1.37.2"
    os_sku: str = "AzureLinux"
    fips: bool = False
    mode: str = "User"


def lab_node_image(variant: str) -> NodeImage:
    """What AKS would report for a node running the lab variant's image."""
    if variant.startswith("mariner"):
        return NodeImage(node_image_version="AKSCBLMariner-V2gen2-202511.07.0",
                         os_image="CBL-Mariner/Linux", kernel_version="5.15.180.1-1.cm2",
                         container_runtime="containerd://1.7.29", os_sku="AzureLinux")
    if "hwe" in variant:
        return NodeImage(kernel_version="6.12.50.2-1.azl3")
    if "fips" in variant:
        return NodeImage(node_image_version="AKSAzureLinux-V3gen2fips-202511.07.0", fips=True)
    return NodeImage()


def pool_labels(pool: str, image: NodeImage) -> dict[str, str]:
    """The labels AKS gives a node of ``pool`` running ``image`` (kwok and real nodes)."""
    return {
        "agentpool": pool,
        "kubernetes.azure.com/agentpool": pool,
        "kubernetes.azure.com/os-sku": image.os_sku,
        "kubernetes.azure.com/os-sku-effective": "AzureLinux3",
        "kubernetes.azure.com/node-image-version": image.node_image_version,
        "kubernetes.azure.com/mode": image.mode.lower(),
        "kubernetes.azure.com/fips_enabled": "true" if image.fips else "false",
    }


def node_manifest(
    name: str, pool: str, address: str, image: NodeImage, extra_labels: Mapping[str, str] = {}
) -> dict[str, Any]:
    """A Node object as AKS registers it (labels, addresses, nodeInfo), managed by kwok."""
    labels = {
        **pool_labels(pool, image),
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "Standard_D4ds_v5",
        "type": "kwok",
        **extra_labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {SIMULATED_ANNOTATION: "fake", "azl.testbed/simulated": "true",
                            **_limit_annotations(NODE_LIMITS)},
        },
        "spec": {},
        "status": {
            # InternalDNS=localhost is a test-bed artefact: kube-apiserver prefers it and so
            # reaches kwok's kubelet endpoint on this machine; InternalIP is the lab host.
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": "localhost"},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": image.container_runtime,
                "kernelVersion": image.kernel_version,
                "kubeProxyVersion": "",
                "kubeletVersion": image.kubelet_version,
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": image.os_image,
                "systemUUID": "",
            },
        },
    }


def storage_class_manifest() -> dict[str, Any]:
    """The StorageClass of the simulated CSI driver, declaring that its volumes hold no data."""
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": _limit_annotations(STORAGE_LIMITS)},
        "provisioner": CSI_DRIVER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
    }


def snapshot_class_manifest() -> dict[str, Any]:
    """The VolumeSnapshotClass of the simulated CSI driver."""
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
        "metadata": {"name": SNAPSHOT_CLASS, "annotations": _limit_annotations(STORAGE_LIMITS)},
        "driver": CSI_DRIVER, "deletionPolicy": "Delete",
    }

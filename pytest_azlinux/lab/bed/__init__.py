"""The cluster test bed: a real etcd + kube-apiserver (+ kube-controller-manager), kwok, and
optionally real nodes (lab VMs with a kubelet).

kwok (Kubernetes WithOut Kubelet) plays the kubelets of simulated node pools: nodes carry
Azure Linux labels and ``status.nodeInfo``; pods on them become Running without running any
container. What the bed cannot do is declared on its objects (``cluster/limits.py``).

One job per module:

- ``binaries``   where etcd, kube-apiserver, kube-controller-manager, kwok and CRDs come from
- ``pki``        the CA, the admin certificate, the service-account keys, the kubeconfig
- ``manifests``  the simulated nodes and the simulated CSI driver's classes, with their limits
- ``shims``      TEST-BED SIMULATION: exec into a pod on a simulated node runs in a lab host
- ``stages``     TEST-BED SIMULATION: kwok's stages (kubelet, CSI driver, snapshotter)
- ``processes``  start, wait for and stop each component
- ``bed``        ``ClusterBed``: up, down, health, node pools
- ``lab_pool``   lab hosts behind simulated nodes; the targets file of the bed's pools
- ``node_images`` the real nodes' pod and sandbox images, built here as OCI archives
- ``real_nodes`` real nodes: lab VMs running containerd and a kubelet, joined over TLS
- ``tokens``     TEST-BED STAND-IN for Entra ID: short-lived bearer tokens, their webhook
- ``idp``        the commands of that stand-in: the webhook server, the exec plugin
- ``identities`` kubeconfigs of a service account or an exec-plugin user; applying RBAC
"""

from __future__ import annotations

from ...errors import BedError
from .bed import DEFAULT_ROOT, BedState, ClusterBed
from .binaries import Binaries, find_binaries
from .lab_pool import add_lab_pool, write_targets
from .manifests import CSI_DRIVER, SNAPSHOT_CLASS, STORAGE_CLASS, NodeImage, lab_node_image

__all__ = [
    "CSI_DRIVER",
    "DEFAULT_ROOT",
    "SNAPSHOT_CLASS",
    "STORAGE_CLASS",
    "BedError",
    "BedState",
    "Binaries",
    "ClusterBed",
    "NodeImage",
    "add_lab_pool",
    "find_binaries",
    "lab_node_image",
    "write_targets",
]

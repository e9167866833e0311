"""The cluster test bed: a real etcd + kube-apiserver (+ kube-controller-manager) and kwok.

kwok (Kubernetes WithOut Kubelet) plays the kubelets of simulated node pools: nodes carry
Azure Linux labels and ``status.nodeInfo``, pods on them become Running without running any
container. The API path is real: clients talk to kube-apiserver, which proxies exec to the
kwok server exactly as it would to a kubelet.

TEST-BED SIMULATION (named as such in docs/cluster.md): kwok runs exec commands on this
machine. A pod stage creates a kwok ``Exec`` for every pod on a simulated node whose
environment names the node; the ``sh``/``nsenter`` shims under ``<root>/podbin`` (first in
kwok's PATH) then enter the namespaces of the lab host bound to that node, so a command sent
to a debug pod on node N runs inside lab host N. Pod IPs of simulated pods are the node's
InternalIP (pods share the node's network, there is no CNI here). A PVC / VolumeSnapshot
stage plays the CSI driver and the snapshot controller (status changes only, no data).

Binaries come from ``.ci/build-testbed.sh`` (cached under /var/cache/azl-testbed/bin), or
from ``KUBEBUILDER_ASSETS`` when set, or from ``AZL_TESTBED_<NAME>`` variables.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import (
    BedError,
    )
from .system import pid_alive

DEFAULT_ROOT = Path(os.environ.get("AZL_TESTBED_ROOT", "/var/lib/azl-testbed/default"))
CACHE = Path(os.environ.get("AZL_TESTBED_CACHE", "/var/cache/azl-testbed"))
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "build-testbed.sh"
SIMULATED_ANNOTATION = "kwok.x-k8s.io/node"  # kwok manages nodes annotated <this>=fake
CSI_DRIVER = "csi.testbed.azl.local"  # the simulated CSI driver (kwok stages play it)
STORAGE_CLASS = "azl-testbed-csi"
SNAPSHOT_CLASS = "azl-testbed-vsc"
_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kwok")



# -- binaries ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kwok: Path
    crds: Path


def find_binaries(build: bool = False) -> Binaries:
    """Locate the test-bed binaries; with ``build``, run the build script when one is missing."""
    found = _lookup()
    missing = [k for k, v in found.items() if v is None]
    if missing and build and BUILD_SCRIPT.exists():
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BedError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{tail}")
        found = _lookup()
        missing = [k for k, v in found.items() if v is None]
    if missing:
        raise BedError(
            f"cluster test bed: missing {', '.join(missing)}; run {BUILD_SCRIPT} "
            f"(caches under {CACHE}/bin) or set KUBEBUILDER_ASSETS"
        )
    return Binaries(**{k: v for k, v in found.items() if v is not None})


def _lookup() -> dict[str, Path | None]:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    out: dict[str, Path | None] = {}
    for name in (*_COMPONENTS, "crds"):
        key = name.replace("-", "_")
        candidates = [os.environ.get(f"AZL_TESTBED_{key.upper()}")]
        if assets and name != "kwok":
            candidates.append(str(Path(assets) / name))
        candidates.append(str(CACHE / ("crds" if name == "crds" else f"bin/{name}")))
        if name == "etcd":
            candidates.append(shutil.which("etcd"))
        out[key] = next((Path(c) for c in candidates if c and Path(c).exists()), None)
    return out


# -- certificates ------------------------------------------------------------------------------
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_pki(pki: Path) -> None:
    """A CA, one admin certificate (client: system:masters; server: 127.0.0.1, localhost)
    used by the API server, kwok and clients, and the service-account signing key."""
    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azl-testbed-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        x509.NameAttribute(NameOID.COMMON_NAME, "azl-testbed-admin"),
    ])
    sans: list[x509.GeneralName] = [
        x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default")
    ]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    sans.append(x509.IPAddress(ipaddress.ip_address("10.96.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa = _key()
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "admin.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki / "admin.key").write_bytes(_pem_key(key))
    (pki / "sa.key").write_bytes(_pem_key(sa))
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for f in pki.iterdir():
        f.chmod(0o600)


def kubeconfig_text(server: str, pki: Path, context: str = "azl-testbed") -> str:
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "admin"}}],
        "current-context": context,
    }
    return yaml.safe_dump(data, sort_keys=False)


# -- simulated nodes ---------------------------------------------------------------------------
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


def node_manifest(
    name: str, pool: str, address: str, image: NodeImage, extra_labels: Mapping[str, str] = {}
) -> dict[str, Any]:
    """A Node object as AKS registers it (labels, addresses, nodeInfo), managed by kwok."""
    labels = {
        "agentpool": pool,
        "kubernetes.azure.com/agentpool": pool,
        "kubernetes.azure.com/os-sku": image.os_sku,
        "kubernetes.azure.com/os-sku-effective": "AzureLinux3",
        "kubernetes.azure.com/node-image-version": image.node_image_version,
        "kubernetes.azure.com/mode": image.mode.lower(),
        "kubernetes.azure.com/fips_enabled": "true" if image.fips else "false",
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
            "annotations": {SIMULATED_ANNOTATION: "fake", "azl.testbed/simulated": "true"},
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


# -- kwok configuration ------------------------------------------------------------------------
_SH_SHIM = """#!/bin/sh
# TEST-BED SIMULATION (pytest-azlinux cluster test bed): kwok runs pod exec commands on this
# machine; this stand-in for sh moves them into the lab host bound to the pod's simulated
# node (kwok's Exec for the pod sets AZL_TESTBED_NODE).
if [ -n "$AZL_TESTBED_NODE" ] && [ -z "$AZL_TESTBED_INSIDE" ]; then
    f="$AZL_TESTBED_ROOT/nodes/$AZL_TESTBED_NODE.enter"
    if [ ! -r "$f" ]; then
        echo "azl test bed: simulated node $AZL_TESTBED_NODE is bound to no lab host" >&2
        exit 126
    fi
    export AZL_TESTBED_INSIDE=1
    # shellcheck disable=SC2046
    exec $(cat "$f") /bin/sh "$@"
fi
exec /bin/sh "$@"
"""

_NSENTER_SHIM = """#!/bin/sh
# TEST-BED SIMULATION: in a pod on a simulated node, "nsenter -t 1 ..." means "the node's
# namespaces"; the sh shim already entered the bound lab host, so run the command as is.
if [ -n "$AZL_TESTBED_INSIDE" ]; then
    target=
    while [ $# -gt 0 ]; do
        case "$1" in
            -t|--target) target=$2; shift 2 ;;
            --target=*) target=${1#--target=}; shift ;;
            --) shift; break ;;
            -*) shift ;;
            *) break ;;
        esac
    done
    if [ "$target" = 1 ] || [ -z "$target" ]; then
        [ $# -gt 0 ] || set -- /bin/sh
        exec "$@"
    fi
    echo "azl test bed: nsenter -t $target is not simulated" >&2
    exit 126
fi
exec /usr/bin/nsenter "$@"
"""


def kwok_config(root: Path) -> list[dict[str, Any]]:
    """kwok configuration: node and pod lifecycles, the per-pod Exec, the CSI simulation."""
    podbin = root / "podbin"
    path = f"{podbin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    stage = _stage
    exec_template = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {
            "name": "{{ .metadata.name }}",
            "namespace": "{{ .metadata.namespace }}",
            "labels": {"azl.testbed/exec": "true"},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Pod", "name": "{{ .metadata.name }}",
                "uid": "{{ .metadata.uid }}",
            }],
        },
        "spec": {"execs": [{"local": {"envs": [
            {"name": "AZL_TESTBED_NODE", "value": "{{ .spec.nodeName }}"},
            {"name": "AZL_TESTBED_ROOT", "value": str(root)},
            {"name": "PATH", "value": path},
        ]}}]},
    }
    pod_status = """
{{ $now := Now }}
conditions:
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Ready}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: ContainersReady}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: PodScheduled}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: ""
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ $ips := NodeIPsWith .spec.nodeName }}
{{ with $ips }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""
    node_status = """
{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
allocatable: {cpu: "4", memory: 16Gi, pods: "110", ephemeral-storage: 100Gi}
capacity: {cpu: "4", memory: 16Gi, pods: "110", ephemeral-storage: 100Gi}
phase: Running
"""
    pvc_match = [
        {"cel": {"expression": f"self.spec.storageClassName == '{STORAGE_CLASS}'"}},
        {"cel": {"expression": "!has(self.metadata.deletionTimestamp)"}},
        {"cel": {"expression": "!has(self.spec.volumeName)"}},
    ]
    pv_template = f"""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pvc-{{{{ .metadata.uid }}}}
  labels: {{azl.testbed/simulated: "true"}}
  annotations: {{pv.kubernetes.io/provisioned-by: {CSI_DRIVER}}}
spec:
  accessModes:
  {{{{ YAML .spec.accessModes 2 }}}}
  capacity:
  {{{{ YAML .spec.resources.requests 2 }}}}
  persistentVolumeReclaimPolicy: Delete
  storageClassName: {{{{ .spec.storageClassName | Quote }}}}
  volumeMode: {{{{ default "Filesystem" .spec.volumeMode | Quote }}}}
  claimRef:
    apiVersion: v1
    kind: PersistentVolumeClaim
    name: {{{{ .metadata.name | Quote }}}}
    namespace: {{{{ .metadata.namespace | Quote }}}}
    uid: {{{{ .metadata.uid | Quote }}}}
  csi:
    driver: {CSI_DRIVER}
    volumeHandle: vol-{{{{ .metadata.uid }}}}
"""
    content_template = f"""
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotContent
metadata:
  name: snapcontent-{{{{ .metadata.uid }}}}
  labels: {{azl.testbed/simulated: "true"}}
spec:
  deletionPolicy: Delete
  driver: {CSI_DRIVER}
  source:
    snapshotHandle: snap-{{{{ .metadata.uid }}}}
  volumeSnapshotRef:
    apiVersion: snapshot.storage.k8s.io/v1
    kind: VolumeSnapshot
    name: {{{{ .metadata.name | Quote }}}}
    namespace: {{{{ .metadata.namespace | Quote }}}}
    uid: {{{{ .metadata.uid | Quote }}}}
  volumeSnapshotClassName: {{{{ .spec.volumeSnapshotClassName | Quote }}}}
"""
    return [
        stage("azl-node-initialize", "v1", "Node", [
            {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
             "operator": "NotIn", "values": ["True"]},
        ], [{"patch": {"subresource": "status", "root": "status", "template": node_status}}]),
        stage("azl-node-heartbeat", "v1", "Node", [
            {"key": ".status.phase", "operator": "In", "values": ["Running"]},
        ], [{"patch": {"subresource": "status", "root": "status", "template": node_status}}],
            delay={"durationMilliseconds": 120000, "jitterDurationMilliseconds": 150000}),
        # A pod on a simulated node: its kwok Exec first (so exec works as soon as it runs),
        # then Running with the node's address as pod IP (no CNI here).
        stage("azl-pod-ready", "v1", "Pod", [
            {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
            {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
        ], [
            {"apply": {"template": yaml.safe_dump(exec_template)}},
            {"patch": {"subresource": "status", "root": "status", "template": pod_status}},
        ]),
        stage("azl-pod-delete", "v1", "Pod", [
            {"key": ".metadata.deletionTimestamp", "operator": "Exists"},
        ], [{"delete": True}]),
        # CSI driver simulation: provision (or restore) a PVC of the test-bed StorageClass.
        stage("azl-csi-provision", "v1", "PersistentVolumeClaim", pvc_match, [
            {"apply": {"template": pv_template}},
            {"patch": {"root": "spec", "template": "volumeName: pvc-{{ .metadata.uid }}"}},
            {"patch": {"subresource": "status", "root": "status", "template": (
                "phase: Bound\naccessModes:\n{{ YAML .spec.accessModes 1 }}\n"
                "capacity:\n{{ YAML .spec.resources.requests 1 }}\n")}},
        ]),
        stage("azl-csi-pv-bound", "v1", "PersistentVolume", [
            {"cel": {"expression": f"self.spec.storageClassName == '{STORAGE_CLASS}'"}},
            {"cel": {"expression": "!has(self.metadata.deletionTimestamp)"}},
            {"cel": {"expression": "!has(self.status.phase) "
                                   "|| self.status.phase in ['Pending', 'Available']"}},
        ], [{"patch": {"subresource": "status", "root": "status", "template": "phase: Bound"}}]),
        # Deleting a PVC (or a VolumeSnapshot) releases what the "driver" made for it: the PV
        # turns Released (as the PV controller would), the VolumeSnapshotContent gets a
        # status mark; the next stage deletes either (as the driver / snapshotter would).
        # Status patches: kwok's apply creates first, which a partial object cannot pass.
        stage("azl-csi-pvc-delete", "v1", "PersistentVolumeClaim", [
            {"cel": {"expression": f"self.spec.storageClassName == '{STORAGE_CLASS}'"}},
            {"cel": {"expression": "has(self.metadata.deletionTimestamp)"}},
        ], [
            {"apply": {"type": "merge", "subresource": "status", "template": yaml.safe_dump({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "pvc-{{ .metadata.uid }}"},
                "status": {"phase": "Released", "reason": _RELEASED}})}},
            {"finalizers": {"empty": True}},  # the deletion then completes
        ]),
        stage("azl-csi-pv-delete", "v1", "PersistentVolume", [
            {"cel": {"expression": f"self.spec.storageClassName == '{STORAGE_CLASS}'"}},
            {"cel": {"expression": "has(self.status.phase) && self.status.phase == 'Released'"}},
        ], [
            {"finalizers": {"empty": True}}, {"delete": True},
        ]),
        # Snapshot controller + CSI snapshotter simulation: content, then readyToUse.
        stage("azl-csi-snapshot", "snapshot.storage.k8s.io/v1", "VolumeSnapshot", [
            {"cel": {"expression": "!has(self.metadata.deletionTimestamp)"}},
            {"cel": {"expression": "!has(self.status) || !has(self.status.readyToUse) "
                                   "|| !self.status.readyToUse"}},
        ], [
            {"apply": {"template": content_template}},
            {"finalizers": {"add": [{"value": "azl.testbed/snapshot"}]}},
            {"patch": {"subresource": "status", "root": "status", "template": (
                "boundVolumeSnapshotContentName: snapcontent-{{ .metadata.uid }}\n"
                "creationTime: {{ Now | Quote }}\nreadyToUse: true\nrestoreSize: 1Gi\n")}},
        ], delay={"durationMilliseconds": 500}),
        stage("azl-csi-snapshot-delete", "snapshot.storage.k8s.io/v1", "VolumeSnapshot", [
            {"cel": {"expression": "has(self.metadata.deletionTimestamp)"}},
        ], [
            {"apply": {"type": "merge", "subresource": "status", "template": yaml.safe_dump({
                "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                "metadata": {"name": "snapcontent-{{ .metadata.uid }}"},
                "status": {"error": {"message": _RELEASED}}})}},
            {"finalizers": {"empty": True}},
        ]),
        stage("azl-csi-content-delete", "snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", [
            {"cel": {"expression": "has(self.status) && has(self.status.error) && "
                                   f"self.status.error.message == '{_RELEASED}'"}},
        ], [{"finalizers": {"empty": True}}, {"delete": True}]),
    ]


_RELEASED = "azl.testbed/released"


def _stage(
    name: str, api: str, kind: str, match: list[dict[str, Any]], steps: list[dict[str, Any]],
    delay: dict[str, int] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": api, "kind": kind},
        "selector": {"matchExpressions": match},
        "steps": steps,
    }
    if delay:
        spec["delay"] = delay
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage",
            "metadata": {"name": name}, "spec": spec}


# -- the bed -----------------------------------------------------------------------------------
@dataclass
class BedState:
    """What ``up`` started (written to <root>/state.json so ``down`` works from any process)."""

    server: str = ""
    kubeconfig: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started: float = 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClusterBed:
    """Start, inspect and stop one test bed living under ``root``."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self.pki = root / "pki"
        self.logs = root / "logs"
        self.kubeconfig = root / "kubeconfig"
        self.state_file = root / "state.json"

    # -- state ------------------------------------------------------------------------
    def state(self) -> BedState:
        try:
            return BedState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return BedState()

    def _save(self, state: BedState) -> None:
        self.state_file.write_text(json.dumps(asdict(state), indent=1))

    def running(self) -> dict[str, bool]:
        return {name: pid_alive(pid) for name, pid in self.state().pids.items()}

    def is_up(self) -> bool:
        alive = self.running()
        return bool(alive) and all(alive.values()) and self._healthy(self.state().server)

    # -- up / down --------------------------------------------------------------------
    def up(self, timeout: float = 120.0, binaries: Binaries | None = None) -> BedState:
        """Start etcd, kube-apiserver, kube-controller-manager and kwok (idempotent)."""
        if self.is_up():
            return self.state()
        self.down()
        bins = binaries or find_binaries(build=True)
        for d in (self.root, self.logs, self.root / "nodes", self.root / "podbin"):
            d.mkdir(parents=True, exist_ok=True)
        write_pki(self.pki)
        for name, text in (("sh", _SH_SHIM), ("nsenter", _NSENTER_SHIM)):
            shim = self.root / "podbin" / name
            shim.write_text(text)
            shim.chmod(0o755)
        ports = {k: _free_port() for k in ("etcd", "etcd-peer", "apiserver", "kwok")}
        server = f"https://127.0.0.1:{ports['apiserver']}"
        self.kubeconfig.write_text(kubeconfig_text(server, self.pki))
        self.kubeconfig.chmod(0o600)
        (self.root / "kwok.yaml").write_text(yaml.safe_dump_all(kwok_config(self.root)))
        state = BedState(server=server, kubeconfig=str(self.kubeconfig), ports=ports,
                         started=time.time())
        deadline = time.monotonic() + timeout
        try:
            state.pids["etcd"] = self._spawn("etcd", self._etcd_argv(bins, ports))
            self._save(state)
            _wait_port(ports["etcd"], deadline, "etcd", self.logs / "etcd.log", state.pids["etcd"])
            state.pids["kube-apiserver"] = self._spawn(
                "kube-apiserver", self._apiserver_argv(bins, ports))
            self._save(state)
            self._wait_healthy(server, deadline)
            state.pids["kube-controller-manager"] = self._spawn(
                "kube-controller-manager", self._kcm_argv(bins))
            self._save(state)
            self._install_crds(bins.crds, deadline)
            env = {"PATH": f"{self.root / 'podbin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
            state.pids["kwok"] = self._spawn("kwok", self._kwok_argv(bins, ports), env)
            self._save(state)
            _wait_port(ports["kwok"], deadline, "kwok", self.logs / "kwok.log", state.pids["kwok"])
            self._install_storage()
        except BaseException:
            self.down()
            raise
        return state

    def down(self, keep_logs: bool = True) -> None:
        """Stop the processes ``up`` recorded (by pid) and delete the bed's data."""
        state = self.state()
        for name in reversed(_COMPONENTS):
            pid = state.pids.get(name)
            if pid:
                _stop(pid)
        for sub in ("etcd-data", "nodes", "pki"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        for f in (self.state_file, self.kubeconfig):
            f.unlink(missing_ok=True)
        if not keep_logs:
            shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> int:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})},
        )
        log.close()
        return proc.pid

    def _etcd_argv(self, bins: Binaries, ports: Mapping[str, int]) -> list[str]:
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            str(bins.etcd), "--name=azl-testbed", f"--data-dir={self.root / 'etcd-data'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=azl-testbed={peer}", "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296", "--log-level=warn",
        ] if _etcd_supports_unsafe(bins.etcd) else [
            str(bins.etcd), "--name=azl-testbed", f"--data-dir={self.root / 'etcd-data'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=azl-testbed={peer}", "--quota-backend-bytes=4294967296",
        ]

    def _apiserver_argv(self, bins: Binaries, ports: Mapping[str, int]) -> list[str]:
        p = self.pki
        return [
            str(bins.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}", f"--cert-dir={p}",
            f"--tls-cert-file={p / 'admin.crt'}", f"--tls-private-key-file={p / 'admin.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            f"--kubelet-client-certificate={p / 'admin.crt'}",
            f"--kubelet-client-key={p / 'admin.key'}",
            "--kubelet-preferred-address-types=InternalDNS,InternalIP",
            "--endpoint-reconciler-type=none", "--profiling=false",
        ]

    def _kcm_argv(self, bins: Binaries) -> list[str]:
        return [
            str(bins.kube_controller_manager), f"--kubeconfig={self.kubeconfig}",
            "--controllers=namespace-controller,garbage-collector-controller,"
            "serviceaccount-controller,serviceaccount-token-controller",
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}", "--leader-elect=false",
            "--secure-port=0", "--use-service-account-credentials=false",
        ]

    def _kwok_argv(self, bins: Binaries, ports: Mapping[str, int]) -> list[str]:
        return [
            str(bins.kwok), f"--kubeconfig={self.kubeconfig}",
            f"--config={self.root / 'kwok.yaml'}",
            f"--tls-cert-file={self.pki / 'admin.crt'}",
            f"--tls-private-key-file={self.pki / 'admin.key'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={SIMULATED_ANNOTATION}=fake",
            "--node-ip=127.0.0.1", "--node-name=localhost",
            f"--node-port={ports['kwok']}", f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-lease-duration-seconds=200", "--enable-crds=Exec",
        ]

    # -- readiness ----------------------------------------------------------------------
    def _healthy(self, server: str) -> bool:
        if not server:
            return False
        try:
            return self._get(server, "/readyz").strip() == b"ok"
        except (OSError, ValueError):
            return False

    def _wait_healthy(self, server: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._healthy(server):
                return
            if not pid_alive(self.state().pids.get("kube-apiserver", 0)):
                break
            time.sleep(0.5)
        raise BedError(
            f"kube-apiserver not ready at {server}: {_log_tail(self.logs / 'kube-apiserver.log')}"
        )

    # -- objects ------------------------------------------------------------------------
    def api(self) -> Any:
        """A kubernetes ApiClient for this bed (admin)."""
        from ..cluster.k8s import client, config

        cfg = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=cfg)
        return client.ApiClient(cfg)

    def _install_crds(self, crds: Path, deadline: float) -> None:
        from ..cluster.k8s import ApiException, client

        ext = client.ApiextensionsV1Api(self.api())
        names = []
        for path in sorted(crds.glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            names.append(body["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise BedError(
                        f"installing CRD {path.name}: {exc.status} {exc.reason}") from None
        while time.monotonic() < deadline:
            established = 0
            for name in names:
                crd = ext.read_custom_resource_definition(name)
                conds = crd.status.conditions or []
                established += any(c.type == "Established" and c.status == "True" for c in conds)
            if established == len(names) and self._openapi_has(
                    ["apis/snapshot.storage.k8s.io/v1", "apis/kwok.x-k8s.io/v1alpha1"]):
                return  # kwok reads the OpenAPI v3 document of the CRDs it stages
            time.sleep(0.3)
        raise BedError(f"CRDs not established in time: {', '.join(names)}")

    def _openapi_has(self, paths: list[str]) -> bool:
        try:
            data = json.loads(self._get(self.state().server or "", "/openapi/v3"))
        except (OSError, ValueError):
            return False
        return all(p in data.get("paths", {}) for p in paths)

    def _get(self, server: str, path: str) -> bytes:
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        with urllib.request.urlopen(f"{server}{path}", context=ctx, timeout=5) as resp:
            return bytes(resp.read())

    def _install_storage(self) -> None:
        """The StorageClass and VolumeSnapshotClass of the simulated CSI driver."""
        from ..cluster.k8s import ApiException, client

        api = self.api()
        try:
            client.StorageV1Api(api).create_storage_class({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": STORAGE_CLASS}, "provisioner": CSI_DRIVER,
                "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
            })
            client.CustomObjectsApi(api).create_cluster_custom_object(
                "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", {
                    "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                    "metadata": {"name": SNAPSHOT_CLASS}, "driver": CSI_DRIVER,
                    "deletionPolicy": "Delete",
                })
        except ApiException as exc:
            if exc.status != 409:
                raise BedError(f"installing the test-bed storage classes: {exc.reason}") from None

    def add_pool(
        self, pool: str, count: int, *, image: NodeImage | None = None,
        addresses: Sequence[str] | None = None, prefix: str | None = None,
        extra_labels: Mapping[str, str] | None = None, start: int = 0,
    ) -> list[str]:
        """Register ``count`` simulated nodes of ``pool`` (names aks-<pool>-NNNNN-vmss0000XX)."""
        from ..cluster.k8s import ApiException, client

        core = client.CoreV1Api(self.api())
        image = image or NodeImage()
        base = prefix or f"aks-{pool}-{abs(hash(pool)) % 90000000 + 10000000}-vmss"
        names = []
        for i in range(start, start + count):
            name = f"{base}{i:06x}"
            address = addresses[i - start] if addresses else str(
                ipaddress.ip_address("10.224.0.4") + i)
            body = node_manifest(name, pool, address, image, extra_labels or {})
            try:
                core.create_node(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise BedError(f"creating node {name}: {exc.status} {exc.reason}") from None
            names.append(name)
        return names

    def bind_node(self, node: str, enter: Sequence[str]) -> None:
        """Route exec into pods on ``node`` through ``enter`` (argv that enters a lab host)."""
        (self.root / "nodes").mkdir(parents=True, exist_ok=True)
        (self.root / "nodes" / f"{node}.enter").write_text(shlex.join(enter) + "\n")

    def remove_pool(self, pool: str) -> None:
        from ..cluster.k8s import client

        core = client.CoreV1Api(self.api())
        core.delete_collection_node(label_selector=f"agentpool={pool},type=kwok")
        for f in (self.root / "nodes").glob("*.enter"):
            if f.name.startswith(f"aks-{pool}-"):
                f.unlink()


def _etcd_supports_unsafe(etcd: Path) -> bool:
    try:
        out = subprocess.run([str(etcd), "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--unsafe-no-fsync" in out.stdout + out.stderr


def _stop(pid: int, grace: float = 10.0) -> None:
    """Stop one recorded process (its own session, so the group too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        end = time.monotonic() + grace
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                if not pid_alive(pid):
                    return
            time.sleep(0.1)


def _wait_port(port: int, deadline: float, name: str, log: Path, pid: int) -> None:
    while time.monotonic() < deadline and pid_alive(pid):
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    why = "exited" if not pid_alive(pid) else "did not listen on 127.0.0.1:{port} in time"
    raise BedError(f"{name} {why}: {_log_tail(log)}")


def _log_tail(log: Path, lines: int = 8) -> str:
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"(no log at {log})"
    return f"last lines of {log}:\n  " + "\n  ".join(tail)


# -- the lab behind simulated nodes ------------------------------------------------------------
def add_lab_pool(
    bed: ClusterBed, pool: str, lab: Any, image: NodeImage | None = None
) -> list[str]:
    """One simulated node per host of a running ``pytest_azlinux.lab.Lab``: the node's
    InternalIP is the lab host's address and exec into its pods runs inside that host."""
    from .hostproc import enter_cmd

    hosts = lab.hosts
    if not hosts:
        raise BedError(f"lab {lab.name} has no hosts: run `azl lab up` first")
    names: list[str] = []
    for i, host in enumerate(hosts):
        names += bed.add_pool(pool, 1, image=image or lab_node_image(host.variant),
                              addresses=[host.address], prefix=f"aks-{pool}-31415926-vmss",
                              start=i)
    for name, host in zip(names, hosts, strict=True):
        enter = list(enter_cmd(host))
        if enter and enter[0] == "nsenter":  # not the pod-side shim of the same name
            enter[0] = shutil.which("nsenter") or "/usr/bin/nsenter"
        bed.bind_node(name, enter)
    return names


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


def write_targets(bed: ClusterBed, path: Path, pools: Mapping[str, str]) -> Path:
    """A targets file with one ``cluster`` target per pool (target name -> pool)."""
    targets = {
        name: {
            "kind": "cluster",
            "description": f"test-bed pool {pool} (kwok-simulated nodes)",
            "kubeconfig": str(bed.kubeconfig),
            "pool": pool,
            "namespace": "azl-system",
            "access": "debug-pod",
            "debug_image": "mcr.microsoft.com/cbl-mariner/busybox:2.0",
        }
        for name, pool in pools.items()
    }
    path.write_text(yaml.safe_dump({"targets": targets}, sort_keys=False))
    return path

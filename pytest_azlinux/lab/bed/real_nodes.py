"""Real nodes in the test bed: lab VMs running containerd, runc, CNI plugins and a kubelet.

Each node is a lab VM (``lab/vm.py``, an AKS-node variant: the Debian kernel with AppArmor)
with one more read-only disk, the *node kit*: the kubelet and containerd built by
``.ci/build-testbed.sh``, Debian's CNI plugins and the pod images (``node_images``), packed
once per content into an ext4 image under ``$AZL_TESTBED_CACHE/node``. After boot the bed
provisions each VM over SSH: its kubelet certificate (``system:node:<name>``, signed by the
bed's CA), containerd (systemd cgroups, runc from Debian, the local sandbox image), a CNI
bridge with the node's pod CIDR, routes to the other real nodes' pod CIDRs, and the kubelet,
which registers with the bed's API server on the lab bridge like an AKS node (pool labels,
Node authorizer and NodeRestriction on the server side).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import ipaddress
import json
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ...cluster.limits import POD_NETWORK, limit_annotation
from ...errors import BedError
from ..lab import Lab
from ..vm import VmHost, start_vms, stop_vms
from ..vm_variants import MAX_REAL_NODES, NODE_VARIANTS
from .binaries import CACHE, NODE_CNI_PLUGINS, NodeBinaries, find_node_binaries
from .manifests import NodeImage, pool_labels
from .node_images import PAUSE_IMAGE, write_node_images
from .pki import node_certificate

if TYPE_CHECKING:
    from .bed import ClusterBed

Progress = Callable[[str], None]
KIT_SERIAL = "azlnode"
KIT_MOUNT = "/opt/azl-node"
NODE_MEMORY_MIB = 1536
POD_CIDRS = ipaddress.IPv4Network("10.244.0.0/16")
REAL_LABEL = "azl.testbed/real-node"
# Under TCG a node needs about a minute from boot to Ready; the bound leaves room for load.
READY_TIMEOUT = 600.0


@dataclass(frozen=True)
class RealNode:
    """One real node: its Kubernetes name, the VM behind it, its pod CIDR."""

    name: str
    variant: str
    address: str
    pod_cidr: str


def node_name(pool: str, index: int) -> str:
    return f"aks-{pool}-27182818-vmss{index:06x}"


def pod_cidr(index: int) -> str:
    return str(list(POD_CIDRS.subnets(new_prefix=24))[index + 1])


# -- the node kit ---------------------------------------------------------------------------
def node_kit(bins: NodeBinaries, progress: Progress = print) -> Path:
    """The ext4 image of the node components, built once per content (cached)."""
    kit_dir = CACHE / "node"
    kit_dir.mkdir(parents=True, exist_ok=True)
    images = write_node_images(kit_dir / "images")
    files = {"bin/kubelet": bins.kubelet}
    files |= {f"bin/{p.name}": p for p in sorted(bins.containerd.iterdir()) if p.is_file()}
    files |= {f"cni/{name}": bins.cni / name for name in NODE_CNI_PLUGINS}
    files |= {f"images/{images.path.name}": images.path}
    digest = hashlib.sha256()
    for rel, path in sorted(files.items()):  # small files by content, binaries by size+mtime
        st = path.stat()
        if st.st_size < 32 << 20:
            digest.update(f"{rel}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    image = kit_dir / f"kit-{digest.hexdigest()[:12]}.img"
    if image.is_file():
        return image
    progress(f"real nodes: packing the node kit ({len(files)} files) into {image}")
    with tempfile.TemporaryDirectory(prefix="azl-node-kit-", dir=kit_dir) as tmp:
        top = Path(tmp)
        tree = top / "tree"
        for rel, path in files.items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tree / rel)
        size_mib = sum(p.stat().st_size for p in files.values()) * 13 // 10 // (1 << 20) + 16
        tmp_image = top / "kit.img"  # private to this process: labs may pack at once
        _run(["mke2fs", "-q", "-t", "ext4", "-L", KIT_SERIAL, "-d", str(tree), str(tmp_image),
              f"{size_mib}M"])
        tmp_image.replace(image)
    for old in kit_dir.glob("kit-*.img"):
        if old != image:
            old.unlink(missing_ok=True)
    return image


# -- per-node configuration ------------------------------------------------------------------
def containerd_config() -> str:
    return f"""version = 3
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{PAUSE_IMAGE}'
[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '/usr/sbin/runc'
      SystemdCgroup = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/opt/cni/bin']
    conf_dir = '/etc/cni/net.d'
"""


def cni_config(cidr: str) -> str:
    gateway = str(ipaddress.IPv4Network(cidr).network_address + 1)
    return json.dumps({
        "cniVersion": "1.0.0", "name": "azl-pods",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": cidr, "gateway": gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "loopback"},
        ],
    }, indent=1)


def kubelet_config() -> str:
    return yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": "/var/lib/kubelet/pki/ca.crt"}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "tlsCertFile": "/var/lib/kubelet/pki/kubelet.crt",
        "tlsPrivateKeyFile": "/var/lib/kubelet/pki/kubelet.key",
        "clusterDomain": "cluster.local", "clusterDNS": ["10.96.0.10"], "resolvConf": "",
        "failSwapOn": False, "serializeImagePulls": False,
        # pods without a profile of their own get the runtime's default seccomp filter, as
        # on a hardened node pool: a baseline pod that reaches the host keyrings is a FAIL
        "seccompDefault": True,
        # a lab VM's disk and memory are small: evict only when truly out
        "evictionHard": {"memory.available": "32Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
    }, sort_keys=False)


def kubeconfig(server: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "bed", "cluster": {
            "server": server, "certificate-authority": "/var/lib/kubelet/pki/ca.crt"}}],
        "users": [{"name": "kubelet", "user": {
            "client-certificate": "/var/lib/kubelet/pki/kubelet.crt",
            "client-key": "/var/lib/kubelet/pki/kubelet.key"}}],
        "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "kubelet"}}],
        "current-context": "bed",
    }, sort_keys=False)


def node_labels(pool: str, image: NodeImage) -> dict[str, str]:
    """What the kubelet registers its node with (``--node-labels``)."""
    return {**pool_labels(pool, image), REAL_LABEL: "true"}


# Transient units (systemd-run): no unit files, no daemon-reload (5 s under emulation)
_SERVICE = ("Restart=always", "RestartSec=2", "Delegate=yes", "KillMode=process",
            "OOMScoreAdjust=-999", "LimitNOFILE=1048576")


def _files_archive(files: dict[str, tuple[bytes, int]]) -> str:
    """The files as one base64 tar (one process writes them all: each process is dear)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return base64.encodebytes(buf.getvalue()).decode()


def provision_script(
    node: RealNode, others: Sequence[RealNode], server: str, ca: bytes, cert: bytes,
    key: bytes, labels: dict[str, str],
) -> str:
    """The root shell script that makes a booted node VM a kubelet node."""
    kubelet_argv = [
        "/usr/local/bin/kubelet", "--config=/var/lib/kubelet/config.yaml",
        "--kubeconfig=/var/lib/kubelet/kubeconfig", f"--hostname-override={node.name}",
        f"--node-ip={node.address}",
        "--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
    ]
    files = {
        "/etc/containerd/config.toml": (containerd_config().encode(), 0o644),
        "/etc/cni/net.d/10-azl-pods.conflist": (cni_config(node.pod_cidr).encode(), 0o644),
        "/var/lib/kubelet/config.yaml": (kubelet_config().encode(), 0o644),
        "/var/lib/kubelet/kubeconfig": (kubeconfig(server).encode(), 0o600),
        "/var/lib/kubelet/pki/ca.crt": (ca, 0o644),
        "/var/lib/kubelet/pki/kubelet.crt": (cert, 0o644),
        "/var/lib/kubelet/pki/kubelet.key": (key, 0o600),
    }
    props = " ".join(f"-p {p}" for p in _SERVICE)
    lines = [
        "set -eu",
        f"mkdir -p {KIT_MOUNT}",
        f"mountpoint -q {KIT_MOUNT} || mount -o ro /dev/disk/by-id/virtio-{KIT_SERIAL} "
        f"{KIT_MOUNT}",
        # linked, not copied: 170 MB written to an emulated disk cost seconds per node
        f"ln -sf {KIT_MOUNT}/bin/* /usr/local/bin/",
        f"mkdir -p /opt/cni/bin && ln -sf {KIT_MOUNT}/cni/* /opt/cni/bin/",
        "base64 -d <<'AZL_FILES' | tar -x -C / --no-same-owner",
        _files_archive(files).rstrip("\n"),
        "AZL_FILES",
        "modprobe overlay; modprobe br_netfilter || true",
        "sysctl -q -w net.ipv4.ip_forward=1",
        *(f"ip route replace {o.pod_cidr} via {o.address}" for o in others),
        f"systemd-run -q --unit=azl-containerd {props} /usr/local/bin/containerd",
        "for i in $(seq 600); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done",
        f"ctr -n k8s.io images import {KIT_MOUNT}/images/images.tar >/dev/null",
        f"systemd-run -q --unit=azl-kubelet -p After=azl-containerd.service "
        f"-p Requires=azl-containerd.service {props} {shlex.join(kubelet_argv)}",
    ]
    return "\n".join(lines) + "\n"


# -- up and down -----------------------------------------------------------------------------
def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kw)
    if res.returncode != 0:
        raise BedError(f"{cmd[0]} failed (exit {res.returncode}): {res.stderr.strip()[-800:]}")
    return res


def ssh_root(lab: Lab, address: str, script: str, timeout: float = 600.0) -> str:
    """Run ``script`` as root on a lab VM (sudo sh over the lab's key); its stdout."""
    cmd = [
        "ssh", "-i", str(lab.identity_file), "-o", f"UserKnownHostsFile={lab.known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30",
        f"azureuser@{address}", "sudo", "sh", "-s",
    ]
    try:
        res = subprocess.run(cmd, input=script, capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BedError(
            f"real node at {address}: provisioning timed out after {timeout:.0f} s") from None
    if res.returncode != 0:
        raise BedError(f"real node at {address}: provisioning failed "
                       f"(exit {res.returncode}): {res.stderr.strip()[-800:]}")
    return res.stdout


def add_real_nodes(
    bed: ClusterBed, lab: Lab, count: int, pool: str, image: NodeImage | None = None,
    progress: Progress = print,
) -> list[RealNode]:
    """Boot ``count`` node VMs in ``lab``, make them kubelet nodes of ``bed``, wait for Ready."""
    if not 1 <= count <= MAX_REAL_NODES:
        raise BedError(f"real nodes: between 1 and {MAX_REAL_NODES}, not {count}")
    state = bed.state()
    lab_state = lab.load_state()
    if lab_state is None:
        raise BedError(f"real nodes: lab {lab.name} is not up (azl lab up --name {lab.name})")
    if state.listen != lab_state.bridge_address:
        raise BedError(f"real nodes: the bed's API server listens on {state.listen}, not on "
                       f"lab {lab.name}'s bridge ({lab_state.bridge_address})")
    bins = find_node_binaries(build=True)
    kit = node_kit(bins, progress)
    variants = list(NODE_VARIANTS)[:count]
    # recorded before the boot: `down` stops the VMs even if this is interrupted
    bed.record_real_nodes(lab.name, {node_name(pool, i): v for i, v in enumerate(variants)})
    vms: list[VmHost] = start_vms(lab, variants, memory_mib=NODE_MEMORY_MIB, progress=progress,
                                  disks={KIT_SERIAL: kit})
    nodes = [RealNode(node_name(pool, i), vm.variant, vm.address, pod_cidr(i))
             for i, vm in enumerate(vms)]
    ca = (bed.pki / "ca.crt").read_bytes()
    labels = node_labels(pool, image or NodeImage())

    def provision(node: RealNode) -> None:
        cert, key = node_certificate(bed.pki, node.name, node.address)
        others = [o for o in nodes if o is not node]
        ssh_root(lab, node.address,
                 provision_script(node, others, state.server, ca, cert, key, labels))
        progress(f"real node {node.name} ({node.address}): kubelet started")

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool_:
        errors = [f.exception() for f in [pool_.submit(provision, n) for n in nodes]]
    failed = [e for e in errors if e is not None]
    if failed:
        raise failed[0]
    wait_ready(bed, [n.name for n in nodes], READY_TIMEOUT, progress)
    if any(vm.accel == "tcg" for vm in vms):
        declare_emulated(bed, [n.name for n in nodes])
    return nodes


# Under software emulation the pod path's extra veth and bridge hop is CPU, which emulation
# makes dear and erratic: pod vs host network measured 0.24/0.32, 0.44/0.11 and 0.12/0.38
# Gbit/s in three runs. No comparison can be judged there, so the nodes say so.
EMULATED_NETWORK = ("test-bed node in a VM under software emulation (TCG): pod and host "
                    "network throughput are measured, but their ratio is emulation noise")


def declare_emulated(bed: ClusterBed, names: Sequence[str]) -> None:
    """Declare the pod-network limit on nodes whose VM is emulated (``cluster/limits.py``)."""
    from ...cluster.k8s import client

    core = client.CoreV1Api(bed.api())
    patch = {"metadata": {"annotations": {limit_annotation(POD_NETWORK): EMULATED_NETWORK}}}
    for name in names:
        core.patch_node(name, patch)


def wait_ready(bed: ClusterBed, names: Sequence[str], timeout: float, progress: Progress) -> None:
    from ...cluster.k8s import ApiException, client

    core = client.CoreV1Api(bed.api())
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                node = core.read_node(name)
            except ApiException:
                continue
            conds = node.status.conditions or []
            if any(c.type == "Ready" and c.status == "True" for c in conds):
                progress(f"real node {name}: Ready")
                pending.discard(name)
        time.sleep(2)
    if pending:
        raise BedError(f"real nodes not Ready after {timeout:.0f} s: {', '.join(sorted(pending))}"
                       " (the VM's journal: journalctl -u azl-kubelet)")


def remove_real_nodes(bed: ClusterBed, lab_name: str, nodes: dict[str, str]) -> None:
    """Delete the nodes from the API (if it answers) and stop their VMs."""
    from ...cluster.k8s import client

    with contextlib.suppress(Exception):  # the API may be down already; the VMs go anyway
        core = client.CoreV1Api(bed.api())
        for name in nodes:
            with contextlib.suppress(Exception):
                core.delete_node(name)
    lab = Lab(lab_name)
    if lab.load_state() is not None:
        stop_vms(lab, progress=lambda _: None, variants=list(nodes.values()))

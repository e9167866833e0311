"""``ClusterBed``: one test bed under a root directory — start it, register nodes, stop it.

A real etcd + kube-apiserver + kube-controller-manager (namespace and garbage collectors)
and kwok playing the kubelets of simulated node pools. The API path is real: clients talk to
kube-apiserver, which proxies exec to kwok exactly as it would to a kubelet.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import ssl
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...errors import BedError
from ...localproc import pid_alive
from . import processes, shims, tokens
from .binaries import COMPONENTS, Binaries, find_binaries
from .manifests import NodeImage, node_manifest, snapshot_class_manifest, storage_class_manifest
from .pki import kubeconfig_text, write_pki
from .processes import Layout
from .stages import kwok_config

DEFAULT_ROOT = Path(os.environ.get("AZL_TESTBED_ROOT", "/var/lib/azl-testbed/default"))
# Everything a bed writes under its root (``Layout``, shims, state, the CLI's targets file):
# ``down`` deletes these and nothing else, so a root a user pointed at an existing directory
# loses only what the bed put there.
BED_FILES = ("state.json", "kubeconfig", "token-webhook.kubeconfig", "kwok.yaml", "targets.yaml",
             "pki", "logs", "etcd-data", "nodes", "podbin")
# kwok reads the OpenAPI v3 document of the CRDs it stages: they must be served first
_OPENAPI_PATHS = ("apis/snapshot.storage.k8s.io/v1", "apis/kwok.x-k8s.io/v1alpha1")


@dataclass
class BedState:
    """What ``up`` started (written to <root>/state.json so ``down`` works from any process)."""

    server: str = ""
    kubeconfig: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    listen: str = "127.0.0.1"  # the API server's address (a lab bridge's for real nodes)
    lab: str = ""  # the lab whose hosts back the pools (and whose VMs are the real nodes)
    real_nodes: dict[str, str] = field(default_factory=dict)  # node name -> VM variant


class ClusterBed:
    """Start, inspect and stop one test bed living under ``root``."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self.layout = Layout(root)
        self.pki = self.layout.pki
        self.logs = self.layout.logs
        self.kubeconfig = self.layout.kubeconfig
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
    def up(
        self, timeout: float = 120.0, binaries: Binaries | None = None, listen: str = "127.0.0.1",
    ) -> BedState:
        """Start etcd, kube-apiserver, kube-controller-manager and kwok (idempotent).

        ``listen``: the API server's address; real nodes (VMs on a lab's bridge) need the
        bridge's address, which only this machine and that lab's hosts can reach."""
        if self.is_up():
            state = self.state()
            if state.listen != listen:
                raise BedError(
                    f"the test bed at {self.root} is up on {state.listen}, not {listen}: "
                    "stop it first (azl lab cluster down)")
            return state
        self.down()
        bins = binaries or find_binaries(build=True)
        for d in (self.root, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        write_pki(self.pki, addresses=(listen,) if listen != "127.0.0.1" else ())
        tokens.write_key(self.pki)
        shims.install_shims(self.root)
        shims.nodes_dir(self.root).mkdir(parents=True, exist_ok=True)
        ports = processes.free_ports()
        server = f"https://{listen}:{ports['apiserver']}"
        self.kubeconfig.write_text(kubeconfig_text(server, self.pki))
        self.kubeconfig.chmod(0o600)
        self.layout.kwok_config.write_text(yaml.safe_dump_all(kwok_config(self.root)))
        self.layout.token_webhook_config.write_text(
            tokens.webhook_kubeconfig(self.pki, ports[processes.TOKEN_WEBHOOK]))
        state = BedState(server=server, kubeconfig=str(self.kubeconfig), ports=ports,
                         started=time.time(), listen=listen)
        deadline = time.monotonic() + timeout
        layout = self.layout

        def start(name: str, argv: list[str], env: Mapping[str, str] | None = None) -> int:
            state.pids[name] = processes.spawn(layout, name, argv, env)
            self._save(state)  # recorded at once: ``down`` stops it even if ``up`` fails
            return state.pids[name]

        try:
            pid = start("etcd", processes.etcd_argv(layout, bins, ports))
            webhook = start(processes.TOKEN_WEBHOOK, processes.token_webhook_argv(layout, ports),
                            {"PYTHONPATH": processes.PACKAGE_PATH})
            processes.wait_port(ports["etcd"], deadline, "etcd", layout.log("etcd"), pid)
            processes.wait_port(ports[processes.TOKEN_WEBHOOK], deadline, processes.TOKEN_WEBHOOK,
                                layout.log(processes.TOKEN_WEBHOOK), webhook)
            start("kube-apiserver", processes.apiserver_argv(layout, bins, ports, listen))
            self._wait_healthy(server, deadline)
            start("kube-controller-manager", processes.controller_manager_argv(layout, bins))
            self._install_crds(bins.crds, deadline)
            path = f"{shims.podbin(self.root)}:{os.environ.get('PATH', '/usr/bin:/bin')}"
            pid = start("kwok", processes.kwok_argv(layout, bins, ports), {"PATH": path})
            processes.wait_port(ports["kwok"], deadline, "kwok", layout.log("kwok"), pid)
            self._install_storage()
        except BaseException:
            self.down()
            raise
        return state

    def record_real_nodes(self, lab: str, nodes: Mapping[str, str]) -> None:
        """Remember real nodes (before they boot: ``down`` stops them even if ``up`` fails)."""
        state = self.state()
        state.lab = lab
        state.real_nodes.update(nodes)
        self._save(state)

    def record_lab(self, lab: str) -> None:
        """Remember the lab whose hosts back this bed's pools (``azl lab cluster --lab``)."""
        state = self.state()
        state.lab = lab
        self._save(state)

    def down(self, keep_logs: bool = True) -> list[str]:
        """Stop the real nodes' VMs and the processes ``up`` recorded (by pid), and delete
        the bed's data; with ``keep_logs=False`` also the logs and what else the bed wrote,
        and the root directory itself once nothing else is in it. Returns what was left in
        the root that the bed did not write (kept: it is not the bed's to delete)."""
        state = self.state()
        if state.real_nodes:
            from .real_nodes import remove_real_nodes

            remove_real_nodes(self, state.lab, state.real_nodes)
        others = [name for name in state.pids if name not in COMPONENTS]  # the token webhook
        for name in [*reversed(COMPONENTS), *others]:
            pid = state.pids.get(name)
            if pid:
                processes.stop(pid)
        for sub in ("etcd-data", "nodes", "pki"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        for f in (self.state_file, self.kubeconfig):
            f.unlink(missing_ok=True)
        if keep_logs:
            return []
        for name in BED_FILES:
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        try:
            left = sorted(p.name for p in self.root.iterdir())
        except FileNotFoundError:
            return []
        if not left:
            self.root.rmdir()
        return left

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
        log = processes.log_tail(self.layout.log("kube-apiserver"))
        raise BedError(f"kube-apiserver not ready at {server}: {log}")

    def _get(self, server: str, path: str) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        with urllib.request.urlopen(f"{server}{path}", context=ctx, timeout=5) as resp:
            return bytes(resp.read())

    # -- objects ------------------------------------------------------------------------
    def api(self) -> Any:
        """A kubernetes ApiClient for this bed (admin)."""
        from ...cluster.k8s import client, config

        cfg = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=cfg)
        return client.ApiClient(cfg)

    def _install_crds(self, crds: Path, deadline: float) -> None:
        from ...cluster.k8s import ApiException, client

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
            if established == len(names) and self._openapi_has(_OPENAPI_PATHS):
                return
            time.sleep(0.3)
        raise BedError(f"CRDs not established in time: {', '.join(names)}")

    def _openapi_has(self, paths: Sequence[str]) -> bool:
        try:
            data = json.loads(self._get(self.state().server or "", "/openapi/v3"))
        except (OSError, ValueError):
            return False
        return all(p in data.get("paths", {}) for p in paths)

    def _install_storage(self) -> None:
        """The StorageClass and VolumeSnapshotClass of the simulated CSI driver."""
        from ...cluster.k8s import ApiException, client

        api = self.api()
        try:
            client.StorageV1Api(api).create_storage_class(storage_class_manifest())
            body = snapshot_class_manifest()
            client.CustomObjectsApi(api).create_cluster_custom_object(
                "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", body)
        except ApiException as exc:
            if exc.status != 409:
                raise BedError(f"installing the test-bed storage classes: {exc.reason}") from None

    def add_pool(
        self, pool: str, count: int, *, image: NodeImage | None = None,
        addresses: Sequence[str] | None = None, prefix: str | None = None,
        extra_labels: Mapping[str, str] | None = None, start: int = 0,
    ) -> list[str]:
        """Register ``count`` simulated nodes of ``pool`` (names aks-<pool>-NNNNN-vmss0000XX)."""
        from ...cluster.k8s import ApiException, client

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
        shims.bind_node(self.root, node, enter)

    def remove_pool(self, pool: str) -> None:
        from ...cluster.k8s import client

        core = client.CoreV1Api(self.api())
        core.delete_collection_node(label_selector=f"agentpool={pool},type=kwok")
        shims.unbind_nodes(self.root, f"aks-{pool}-")

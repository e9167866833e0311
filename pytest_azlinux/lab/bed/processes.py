"""The bed's processes: how each component is started, waited for and stopped.

Each component runs in a session of its own (so it and its children stop together), logs
to ``<root>/logs/<name>.log``, and is known by the pid recorded in the bed's state file, so
any process can stop a bed another one started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import BedError
from ...localproc import pid_alive
from .binaries import Binaries, etcd_supports_unsafe_no_fsync
from .manifests import SIMULATED_ANNOTATION

PORTS = ("etcd", "etcd-peer", "apiserver", "kwok", "token-webhook")
TOKEN_WEBHOOK = "token-webhook"  # a component of the bed that is not a Go binary
# Python components and plugins of the bed import this very copy of the package
PACKAGE_PATH = str(Path(__file__).resolve().parents[3])


@dataclass(frozen=True)
class Layout:
    """Where a bed keeps its files (all under ``root``)."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def token_webhook_config(self) -> Path:
        return self.root / "token-webhook.kubeconfig"

    @property
    def kwok_config(self) -> Path:
        return self.root / "kwok.yaml"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


def free_ports() -> dict[str, int]:
    out = {}
    for name in PORTS:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            out[name] = int(s.getsockname()[1])
    return out


def spawn(layout: Layout, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> int:
    """Start one component in its own session, logging to its log file; return its pid."""
    with layout.log(name).open("ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})},
        )
    return proc.pid


def stop(pid: int, grace: float = 10.0) -> None:
    """Stop one recorded process (its own session, so the group too): TERM, then KILL."""
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


def wait_port(port: int, deadline: float, name: str, log: Path, pid: int) -> None:
    """Wait until ``name`` (pid ``pid``) listens on 127.0.0.1:``port``; BedError with its log."""
    while time.monotonic() < deadline and pid_alive(pid):
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    why = "exited" if not pid_alive(pid) else f"did not listen on 127.0.0.1:{port} in time"
    raise BedError(f"{name} {why}: {log_tail(log)}")


def log_tail(log: Path, lines: int = 8) -> str:
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"(no log at {log})"
    return f"last lines of {log}:\n  " + "\n  ".join(tail)


# -- command lines -------------------------------------------------------------------------
def etcd_argv(layout: Layout, bins: Binaries, ports: Mapping[str, int]) -> list[str]:
    client = f"http://127.0.0.1:{ports['etcd']}"
    peer = f"http://127.0.0.1:{ports['etcd-peer']}"
    argv = [
        str(bins.etcd), "--name=azl-testbed", f"--data-dir={layout.root / 'etcd-data'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=azl-testbed={peer}", "--quota-backend-bytes=4294967296",
    ]
    if etcd_supports_unsafe_no_fsync(bins.etcd):  # a throwaway store: no fsync, less noise
        argv += ["--unsafe-no-fsync=true", "--log-level=warn"]
    return argv


def apiserver_argv(
    layout: Layout, bins: Binaries, ports: Mapping[str, int], listen: str = "127.0.0.1",
) -> list[str]:
    p = layout.pki
    return [
        str(bins.kube_apiserver),
        f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
        f"--bind-address={listen}", f"--advertise-address={listen}",
        f"--secure-port={ports['apiserver']}", f"--cert-dir={p}",
        f"--tls-cert-file={p / 'admin.crt'}", f"--tls-private-key-file={p / 'admin.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.96.0.0/16",
        # as on AKS: a kubelet may only touch its own node and the pods bound to it
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        # bearer tokens besides certificates: service-account tokens, and short-lived tokens
        # checked by the bed's webhook (tokens.py: Entra ID's part); its cache 1 s, so an
        # expired token is refused after kube-apiserver's overall token cache (10 s)
        f"--authentication-token-webhook-config-file={layout.token_webhook_config}",
        "--authentication-token-webhook-version=v1",
        "--authentication-token-webhook-cache-ttl=1s",
        "--allow-privileged=true",
        f"--kubelet-client-certificate={p / 'admin.crt'}",
        f"--kubelet-client-key={p / 'admin.key'}",
        "--kubelet-preferred-address-types=InternalDNS,InternalIP",
        "--endpoint-reconciler-type=none", "--profiling=false",
    ]


def token_webhook_argv(layout: Layout, ports: Mapping[str, int]) -> list[str]:
    return [sys.executable, "-m", "pytest_azlinux.lab.bed.idp", "serve",
            f"--pki={layout.pki}", f"--port={ports[TOKEN_WEBHOOK]}"]


def controller_manager_argv(layout: Layout, bins: Binaries) -> list[str]:
    return [
        str(bins.kube_controller_manager), f"--kubeconfig={layout.kubeconfig}",
        "--controllers=namespace-controller,garbage-collector-controller,"
        "serviceaccount-controller,serviceaccount-token-controller,"
        "root-ca-certificate-publisher-controller",  # kube-root-ca.crt: real pods mount it
        f"--service-account-private-key-file={layout.pki / 'sa.key'}",
        f"--root-ca-file={layout.pki / 'ca.crt'}", "--leader-elect=false",
        "--secure-port=0", "--use-service-account-credentials=false",
    ]


def kwok_argv(layout: Layout, bins: Binaries, ports: Mapping[str, int]) -> list[str]:
    return [
        str(bins.kwok), f"--kubeconfig={layout.kubeconfig}",
        f"--config={layout.kwok_config}",
        f"--tls-cert-file={layout.pki / 'admin.crt'}",
        f"--tls-private-key-file={layout.pki / 'admin.key'}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={SIMULATED_ANNOTATION}=fake",
        "--node-ip=127.0.0.1", "--node-name=localhost",
        f"--node-port={ports['kwok']}", f"--server-address=127.0.0.1:{ports['kwok']}",
        "--node-lease-duration-seconds=200", "--enable-crds=Exec",
    ]

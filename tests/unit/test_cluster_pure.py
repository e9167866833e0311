"""Pure parts of the cluster support: node facts, pod names and manifests, bed config."""

from __future__ import annotations

import re
from typing import ClassVar

import yaml

from pytest_azlinux.cluster.nodes import node_facts
from pytest_azlinux.cluster.pods import (
    debug_pod_manifest,
    level_allows,
    pod_name,
    profile_pod_manifest,
)
from pytest_azlinux.lab.bed.manifests import NodeImage, node_manifest
from pytest_azlinux.lab.bed.stages import kwok_config

# A node as an AKS Azure Linux 3.0 pool registers it (shape of `kubectl get node -o json`).
AKS_NODE = {
    "metadata": {
        "name": "aks-canary-12345678-vmss000000",
        "labels": {
            "agentpool": "canary",
            "kubernetes.azure.com/agentpool": "canary",
            "kubernetes.azure.com/os-sku": "AzureLinux",
            "kubernetes.azure.com/node-image-version": "AKSAzureLinux-V3gen2-202512.18.0",
            "kubernetes.azure.com/fips_enabled": "false",
            "kubernetes.azure.com/mode": "user",
        },
    },
    "status": {
        "addresses": [{"type": "InternalIP", "address": "10.224.0.4"},
                      {"type": "Hostname", "address": "aks-canary-12345678-vmss000000"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "nodeInfo": {"osImage": "Microsoft Azure Linux 3.0", "kernelVersion": "6.6.150.1-1.azl3",
                     "containerRuntimeVersion": "containerd://2.2.4", "architecture": "amd64",
                     "kubeletVersion": "v1.33.5"},
    },
}


def test_node_facts_from_labels_and_node_info() -> None:
    facts = node_facts(AKS_NODE)
    assert facts.pool == "canary"
    assert facts.node_image_version == "AKSAzureLinux-V3gen2-202512.18.0"
    assert facts.os_sku == "AzureLinux"
    assert facts.fips_enabled is False
    assert facts.os_image == "Microsoft Azure Linux 3.0"
    assert facts.kernel_version == "6.6.150.1-1.azl3"
    assert facts.runtime == ("containerd", "2.2.4")
    assert facts.internal_ip == "10.224.0.4"
    assert facts.ready and facts.is_azure_linux


def test_node_facts_missing_fields_are_empty_not_errors() -> None:
    facts = node_facts({"metadata": {"name": "n"}, "status": {}})
    assert facts.fips_enabled is None and facts.internal_ip is None and not facts.ready


def test_simulated_node_reads_back_as_an_aks_node() -> None:
    body = node_manifest("aks-x-1-vmss000000", "x", "198.18.0.2", NodeImage(fips=True))
    facts = node_facts(body)
    assert facts.pool == "x" and facts.fips_enabled is True
    assert facts.internal_ip == "198.18.0.2"
    assert facts.os_image == "Microsoft Azure Linux 3.0"
    assert facts.container_runtime.startswith("containerd://2.")


def test_pod_names_are_dns_labels_and_distinct_per_node() -> None:
    long_node = "aks-averyveryverylongpoolname-12345678-vmss0000000000000000000000"
    a = pod_name("azl-debug", "0123abcd", long_node)
    b = pod_name("azl-debug", "0123abcd", long_node + "x")
    for name in (a, b):
        assert len(name) <= 63
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert a != b


def test_debug_pod_is_privileged_hostpid_pinned() -> None:
    pod = debug_pod_manifest("p", "node-1", "busybox", {"azl.io/run-id": "r"})
    spec = pod["spec"]
    assert spec["nodeName"] == "node-1" and spec["hostPID"] is True
    assert spec["containers"][0]["securityContext"] == {"privileged": True}
    assert spec["volumes"][0]["hostPath"]["path"] == "/"
    assert pod["metadata"]["labels"]["azl.io/run-id"] == "r"


def test_profile_pods_match_their_level() -> None:
    restricted = profile_pod_manifest("p", "n", "img", "restricted", {})
    sc = restricted["spec"]["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert "securityContext" not in profile_pod_manifest("p", "n", "img", "baseline", {})[
        "spec"]["containers"][0]
    assert level_allows("privileged", "privileged")
    assert level_allows("baseline", "restricted")
    assert not level_allows("restricted", "baseline")


def test_kwok_config_routes_exec_and_simulates_csi(tmp_path: object) -> None:
    from pathlib import Path

    docs = kwok_config(Path("/var/lib/azl-testbed/x"))
    text = yaml.safe_dump_all(docs)
    stages = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Stage"}
    pod_ready = stages["azl-pod-ready"]["spec"]["steps"]
    # The Exec is applied before the pod turns Running, so exec works as soon as it runs.
    assert "apply" in pod_ready[0] and "kind: Exec" in pod_ready[0]["apply"]["template"]
    assert "AZL_TESTBED_NODE" in pod_ready[0]["apply"]["template"]
    assert "patch" in pod_ready[1]
    assert "readyToUse: true" in text


def test_bed_wait_port_error_names_the_port() -> None:
    """A component that is alive but never listens: the error names the real port (the
    message once lacked its f prefix and printed ``{port}``)."""
    import os
    import socket
    import time
    from pathlib import Path

    import pytest

    from pytest_azlinux.errors import BedError
    from pytest_azlinux.lab.bed.processes import wait_port

    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(BedError) as info:
            wait_port(port, time.monotonic(), "kwok", Path("/nonexistent/kwok.log"), os.getpid())
    message = str(info.value)
    assert f"kwok did not listen on 127.0.0.1:{port} in time" in message
    assert "{port}" not in message and "no log at /nonexistent/kwok.log" in message


def test_simulated_objects_declare_what_they_cannot_do() -> None:
    """The bed declares its limits on its objects; the cluster package reads capabilities."""
    from pytest_azlinux.cluster.limits import POD_NETWORK, RUN_CONTAINERS, VOLUME_DATA
    from pytest_azlinux.lab.bed.manifests import storage_class_manifest

    simulated = node_facts(node_manifest("aks-x-1-vmss000000", "x", "198.18.0.2", NodeImage()))
    assert "no container" in (simulated.cannot(RUN_CONTAINERS) or "")
    assert "no CNI" in (simulated.cannot(POD_NETWORK) or "")
    assert simulated.cannot(VOLUME_DATA) is None  # a storage limit, declared on the class
    real = node_facts(AKS_NODE)  # an AKS node declares no limits: it can do everything
    assert real.limits == {} and real.cannot(RUN_CONTAINERS) is None
    annotations = storage_class_manifest()["metadata"]["annotations"]
    assert "hold no data" in annotations[f"limits.azl.io/{VOLUME_DATA}"]


# -- errors leave the cluster package as InfraErrors, and bugs are not hidden ---------------
def _closed_port_client() -> object:
    """A real API client pointed at 127.0.0.1:<a port nothing listens on>."""
    import socket

    from pytest_azlinux.cluster.k8s import client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = 0
    return client.ApiClient(cfg)


def test_retry_turns_an_api_error_status_into_an_infra_error() -> None:
    """An error status leaves ``retry`` as ApiError (a ClusterError, so an ERROR), never as
    the client's raw ApiException (which pytest would report as a FAIL)."""
    import pytest

    from pytest_azlinux.cluster.api import retry
    from pytest_azlinux.cluster.k8s import ApiException
    from pytest_azlinux.errors import ApiError, InfraError

    def forbidden() -> None:
        raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiError) as info:
        retry(forbidden, "list pods in azl-system")
    assert isinstance(info.value, InfraError)
    assert info.value.status == 403 and str(info.value) == "list pods in azl-system: 403 Forbidden"


def test_a_failed_list_is_not_nothing_left() -> None:
    """The run ledger cannot reach the API: ``remaining`` raises instead of answering "no
    objects left" (which once let a run delete a namespace another run still used)."""
    import pytest

    from pytest_azlinux.cluster.runs import RunLedger
    from pytest_azlinux.errors import ClusterError

    ledger = RunLedger(_closed_port_client(), "azl-system")
    with pytest.raises(ClusterError, match="list Pod in azl-system: API server unreachable"):
        ledger.remaining()


class FakeWebSocket:
    """A fake (no real websocket can be made to fail this way on purpose): the exec
    websocket's interface, raising ``error`` from its first ``update``."""

    _channels: ClassVar[dict[int, bytes]] = {}

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.open = True

    def is_open(self) -> bool:
        return self.open

    def update(self, timeout: float = 0) -> None:
        self.open = False
        raise self.error

    def read_channel(self, channel: int) -> bytes:
        return b""

    def close(self, timeout: float = 3) -> None:  # websocket-client's signature
        self.open = False


def _drained(stream: object) -> tuple[bytes, bytes, bool]:
    import time

    from pytest_azlinux.transport.kube import _ExecStream

    assert isinstance(stream, _ExecStream)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out, err, eof = stream.read_available()
        if eof:
            return out, err, eof
        time.sleep(0.01)
    raise AssertionError("the reader thread never ended")


def test_exec_reader_hands_a_bug_to_the_caller() -> None:
    """An error the reader thread does not expect is raised to the reading caller, not
    swallowed into an end of stream (which reads as "connection lost", an infra ERROR)."""
    import pytest
    from websocket import WebSocketConnectionClosedException

    from pytest_azlinux.transport.kube import _ExecStream

    broken = _ExecStream(FakeWebSocket(TypeError("a bug in frame handling")))
    try:
        with pytest.raises(TypeError, match="a bug in frame handling"):
            _drained(broken)
    finally:
        broken.close()
    closed = _ExecStream(FakeWebSocket(WebSocketConnectionClosedException("peer gone")))
    try:
        assert _drained(closed) == (b"", b"", True)  # an ended stream is an end of stream
        assert "WebSocketConnectionClosedException: peer gone" in closed.diagnostics()
    finally:
        closed.close()


def test_kube_connect_does_not_turn_a_bug_into_host_unreachable() -> None:
    """Opening the node shell retries what can pass (a stream that ends, an API error); a
    programming error propagates at once instead of becoming "host unreachable"."""
    import pytest

    from pytest_azlinux.cluster.context import ClusterContext
    from pytest_azlinux.cluster.runs import RunLedger
    from pytest_azlinux.targets import ClusterTarget, HostSpec
    from pytest_azlinux.transport.kube import KubeTransport

    config = ClusterTarget(kind="cluster", pool="canary")
    context = ClusterContext("nodepool-canary", config, None, RunLedger(None, "azl-system"))
    spec = HostSpec(name="aks-canary-0", target="nodepool-canary", access="kube",
                    address="10.0.0.4", node="aks-canary-0")
    transport = KubeTransport(spec, context)
    transport._pod = "azl-debug-x"  # the debug pod exists; the exec is what fails

    def buggy_exec_stream() -> object:
        raise TypeError("unexpected keyword argument")

    transport._exec_stream = buggy_exec_stream  # type: ignore[assignment,method-assign]
    with pytest.raises(TypeError, match="unexpected keyword"):
        transport.connect()

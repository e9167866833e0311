"""Cluster targets against the test bed: a real kube-apiserver + etcd, kwok-simulated nodes.

What is real here: the API server (discovery, labels, Pod Security admission, exec
proxying, CRDs), etcd, the controller manager's namespace and garbage collectors, the
kubernetes client, and the commands, which run inside lab hosts. What is simulated
(test bed, see docs/cluster.md): kwok plays the kubelets, so pods run no container; exec
into a pod on a pool-``canary`` node is routed by the bed's shims into the lab host bound
to that node.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_azlinux.cluster.api import PodSecurityRejected
from pytest_azlinux.cluster.pods import create_pod, ensure_namespace, profile_pod_manifest
from pytest_azlinux.cluster.runs import MANAGED_BY, MANAGED_LABEL, RunLedger
from pytest_azlinux.cluster.target import resolve_cluster_target
from pytest_azlinux.errors import CommandTimeout, HostUnreachable, TargetsError
from pytest_azlinux.host import Host
from pytest_azlinux.session import make_transport
from pytest_azlinux.targets import ClusterTarget, HostSpec, load_targets
from pytest_azlinux.transport.kube import KubeTransport
from tests.fixtures.cluster import BedHandle
from tests.fixtures.junit import junit_outcomes

ROOT = Path(__file__).resolve().parents[2]


def _target(bed: BedHandle, name: str = "nodepool-canary", **changes: Any) -> ClusterTarget:
    target = load_targets(bed.targets_file).get(name)
    assert isinstance(target, ClusterTarget)
    return target.model_copy(update=changes)


def _managed_left(bed: BedHandle, namespace: str = "azl-system") -> list[str]:
    from kubernetes import client

    core = client.CoreV1Api(bed.api())
    selector = f"{MANAGED_LABEL}={MANAGED_BY}"
    left = [f"pod/{p.metadata.name}" for p in core.list_namespaced_pod(
        namespace, label_selector=selector).items]
    left += [f"configmap/{c.metadata.name}" for c in core.list_namespaced_config_map(
        namespace, label_selector=selector).items]
    return left


@contextlib.contextmanager
def _resolved(name: str, target: ClusterTarget) -> Iterator[list[HostSpec]]:
    """The target's node specs; its cluster context stays registered until the block ends."""
    specs, undo = resolve_cluster_target(name, target, start=True)
    assert undo is not None
    try:
        yield specs
    finally:
        undo()


def _connect_error(name: str, target: ClusterTarget) -> str:
    """The ``HostUnreachable`` message of connecting to the target's first node."""
    with _resolved(name, target) as specs:
        host = Host(specs[0], make_transport(specs[0]), 10)
        try:
            with pytest.raises(HostUnreachable) as info:
                host.transport.connect()
            return str(info.value)
        finally:
            host.close()


def test_pool_discovered_by_label_with_node_facts(cluster_bed: BedHandle) -> None:
    with _resolved("nodepool-canary", _target(cluster_bed)) as specs:
        assert [s.name for s in specs] == cluster_bed.canary_nodes
        lab_addresses = [h.address for h in cluster_bed.lab.hosts]
        assert [s.address for s in specs] == lab_addresses
        for spec in specs:
            assert spec.access == "kube" and spec.node == spec.name
            assert spec.labels["agentpool"] == "canary"
            assert spec.labels["kubernetes.azure.com/os-sku"] == "AzureLinux"


def test_selector_and_fips_labels(cluster_bed: BedHandle) -> None:
    target = _target(cluster_bed, "nodepool-idle",
                     selector="kubernetes.azure.com/fips_enabled=true")
    with _resolved("nodepool-idle", target) as specs:
        assert sorted(s.name for s in specs) == sorted(cluster_bed.idle_nodes)
        from pytest_azlinux.cluster.target import get_context

        ctx = get_context("nodepool-idle")
        assert ctx is not None
        facts = ctx.nodes[specs[0].name]
        assert facts.fips_enabled is True
        assert facts.node_image_version == "AKSAzureLinux-V3gen2fips-202511.07.0"
        assert facts.os_image == "Microsoft Azure Linux 3.0"
        assert facts.runtime[0] == "containerd" and facts.runtime[1].startswith("2.")


def test_empty_selection_is_a_clear_error(cluster_bed: BedHandle) -> None:
    with pytest.raises(TargetsError) as info:
        resolve_cluster_target("gone", _target(cluster_bed, pool="nosuchpool"), start=True)
    message = str(info.value)
    assert "target 'gone'" in message and "agentpool=nosuchpool" in message
    assert "canary" in message and "idle" in message  # the pools that do exist


def test_debug_pod_exec_runs_in_the_bound_lab_host(cluster_bed: BedHandle) -> None:
    specs, undo = resolve_cluster_target("nodepool-canary", _target(cluster_bed), start=True)
    assert undo is not None
    hosts = [Host(s, make_transport(s), 30) for s in specs]
    try:
        for host, lab_host in zip(hosts, cluster_bed.lab.hosts, strict=True):
            host.transport.connect()
            # the command ran inside the lab host: its hostname and os-release, not ours
            assert host.check_output("hostname") == lab_host.name
            image_label = host.spec.labels["kubernetes.azure.com/node-image-version"]
            assert host.facts.node_image_version == image_label
            expected_id = "mariner" if lab_host.variant.startswith("mariner") else "azurelinux"
            assert host.facts.os_id == expected_id
            result = host.run("printf out; printf err >&2; exit 3")
            assert (result.rc, result.stdout, result.stderr) == (3, "out", "err")
            assert host.run("cat", stdin=b"\x00\x01binary").stdout_bytes == b"\x00\x01binary"
        # one exec stream per node, reused: 50 more commands open none and share one shell
        transport = hosts[0].transport
        assert isinstance(transport, KubeTransport)
        opened = []
        open_stream = transport._exec_stream

        def counting_open() -> Any:
            opened.append(1)
            return open_stream()

        transport._exec_stream = counting_open  # type: ignore[method-assign]
        shells = {hosts[0].run("echo $PPID").stdout.strip() for _ in range(50)}
        assert opened == [] and len(shells) == 1, (opened, shells)
        del transport._exec_stream
        # a timeout kills the command; the host stays usable
        with pytest.raises(CommandTimeout):
            hosts[0].run("sleep 30", timeout=1)
        assert hosts[0].check_output("echo still-there") == "still-there"
    finally:
        for host in hosts:
            host.close()
        undo()
    assert _managed_left(cluster_bed) == []


def test_node_without_lab_host_is_an_infra_error(cluster_bed: BedHandle) -> None:
    message = _connect_error("nodepool-idle", _target(cluster_bed, "nodepool-idle"))
    assert "bound to no lab host" in message


def test_pod_security_rejection_is_reported(cluster_bed: BedHandle) -> None:
    from kubernetes import client

    api = cluster_bed.api()
    core = client.CoreV1Api(api)
    namespace = "azl-restricted-test"
    core.create_namespace({"metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    try:
        ledger = RunLedger(api, namespace)
        body = profile_pod_manifest("azl-priv", cluster_bed.canary_nodes[0], "busybox",
                                    "privileged", {})
        with pytest.raises(PodSecurityRejected) as info:
            create_pod(api, ledger, body)
        message = str(info.value)
        assert "refused by Pod Security" in message and "enforce=restricted" in message
        assert "privileged" in message
        # the debug-pod transport reports it as an unreachable host, naming the cause
        target = _target(cluster_bed, namespace=namespace)
        assert ensure_namespace(api, namespace, "privileged") is False  # not ours: untouched
        assert "Pod Security" in _connect_error("restricted", target)
    finally:
        core.delete_namespace(namespace)


def _write_suite(tmp: Path, body: str) -> Path:
    suite = tmp / "suite"
    suite.mkdir()
    (suite / "test_nodes.py").write_text(body)
    return suite


def _pytest(bed: BedHandle, tmp: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp),
         "--azl-targets-file", str(bed.targets_file), *args],
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_host_level_suite_runs_on_nodes_through_debug_pods(
    cluster_bed: BedHandle, tmp_path: Path
) -> None:
    """The image suite, unchanged, on the pool's nodes: one item per node, no ERROR."""
    junit = tmp_path / "junit.xml"
    proc = _pytest(cluster_bed, tmp_path, str(ROOT / "suites" / "image"),
                   "--azl-target", "nodepool-canary", f"--junitxml={junit}",
                   "--azl-junit-dir", str(tmp_path / "reports"))
    out, _ = proc.communicate(timeout=600)
    text = out.decode(errors="replace")
    assert junit.exists(), text
    outcomes = junit_outcomes(junit)
    errors = [name for name, (outcome, _) in outcomes.items() if outcome == "error"]
    assert not errors, text[-3000:]
    for node in cluster_bed.canary_nodes:
        assert any(f"[{node}]" in name for name in outcomes), text[-2000:]
    passed = [name for name, (outcome, _) in outcomes.items() if outcome == "passed"]
    assert passed, text[-2000:]
    reports = list((tmp_path / "reports").glob("*.xml"))
    assert reports and any(
        "AKSAzureLinux-V3gen2-202511.07.0" in r.read_text() for r in reports)
    assert _managed_left(cluster_bed) == []


def test_interrupted_run_leaves_nothing_and_killed_run_is_swept(
    cluster_bed: BedHandle, tmp_path: Path
) -> None:
    suite = _write_suite(tmp_path, (
        "import time\n"
        "def test_hold(azl_host):\n"
        "    azl_host.run('true')\n"
        "    print('HOLDING', flush=True)\n"
        "    time.sleep(120)\n"
    ))
    for sig in (signal.SIGINT, signal.SIGKILL):
        proc = _pytest(cluster_bed, tmp_path, str(suite), "--azl-target", "nodepool-canary",
                       "-s", "-x")
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        seen = b""
        while b"HOLDING" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert b"HOLDING" in seen, seen.decode(errors="replace")
        assert _managed_left(cluster_bed), "the run made no debug pod?"
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        if sig == signal.SIGINT:
            assert _managed_left(cluster_bed) == []
        else:
            # killed outright: the next run sweeps the dead run's objects
            assert _managed_left(cluster_bed)
            _specs, undo = resolve_cluster_target("nodepool-canary", _target(cluster_bed),
                                                 start=True)
            assert undo is not None
            undo()
            assert _managed_left(cluster_bed) == []


def test_cluster_suites_on_the_bed(cluster_bed: BedHandle, tmp_path: Path) -> None:
    """suites/cluster end to end on the bed: each test runs its API-level part and then says
    it is API-level only (kwok nodes run no container); nothing is left behind."""
    import yaml

    data = yaml.safe_load(cluster_bed.targets_file.read_text())
    data["targets"]["nodepool-canary"]["suites"] = {"cluster": {
        "storage_class": "azl-testbed-csi", "snapshot_class": "azl-testbed-vsc",
        "duration": 1, "repetitions": 1}}
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump(data))
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--azl-targets-file", str(targets), "--azl-target", "nodepool-canary",
         "--azl-allow-destructive", f"--junitxml={junit}", "-rs", "--durations=8",
         str(ROOT / "suites" / "cluster")],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    text = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert junit.exists(), text
    outcomes = junit_outcomes(junit)
    assert outcomes, text
    for name, (outcome, message) in outcomes.items():
        assert outcome == "skipped" and "API-level only" in message, (name, outcome, message)
    assert any("test_volume_snapshot_restore" in n for n in outcomes)
    assert any("test_pod_to_pod_throughput" in n for n in outcomes)
    assert sum("test_escape_probe_in_pod" in n for n in outcomes) == 3 * len(
        cluster_bed.canary_nodes)
    assert _managed_left(cluster_bed) == []
    from kubernetes import client

    api = cluster_bed.api()
    pvs = client.CoreV1Api(api).list_persistent_volume().items
    assert pvs == [], [p.metadata.name for p in pvs]
    contents = client.CustomObjectsApi(api).list_cluster_custom_object(
        "snapshot.storage.k8s.io", "v1", "volumesnapshotcontents")["items"]
    assert contents == [], [c["metadata"]["name"] for c in contents]

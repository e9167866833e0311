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
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_azlinux.cluster.context import POD_TIMEOUT, ClusterContext
from pytest_azlinux.cluster.pods import create_pod, ensure_namespace, profile_pod_manifest
from pytest_azlinux.cluster.runs import (
    DELETE_TIMEOUT,
    MANAGED_BY,
    MANAGED_LABEL,
    NAMESPACE_GONE_TIMEOUT,
    RunLedger,
)
from pytest_azlinux.cluster.target import resolve_cluster_target
from pytest_azlinux.errors import (
    CommandTimeout,
    HostUnreachable,
    PodSecurityRejected,
    TargetsError,
)
from pytest_azlinux.host import Host
from pytest_azlinux.kinds.protocol import Resolved
from pytest_azlinux.lab.bed import ClusterBed, NodeImage, write_targets
from pytest_azlinux.lab.hostproc import enter_cmd
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.targets import ClusterTarget, HostSpec, load_targets
from pytest_azlinux.transport.kube import READY_WITHIN, KubeTransport
from tests.fixtures.child import ROOT, child_pytest, wait_for_output
from tests.fixtures.cluster import BedHandle
from tests.fixtures.junit import junit_outcomes, junit_properties

# Deadlines scaled to what is awaited, with room for a busy machine (no speed assumed):
# a child pytest starts (interpreter, collection, target resolution: STARTUP), makes a debug
# pod that must run (POD_TIMEOUT) and answer (READY_WITHIN); after a signal it deletes its
# run's objects, sweeps stale runs and waits for the namespace to go.
STARTUP = 180.0
CHILD_READY_WITHIN = STARTUP + POD_TIMEOUT + READY_WITHIN
CHILD_CLEANUP_WITHIN = 2 * DELETE_TIMEOUT + NAMESPACE_GONE_TIMEOUT + STARTUP
SUITE_WITHIN = 900.0  # the image suite on three nodes (about 60 s on an idle machine)


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


def _sweep_dead_runs(bed: BedHandle, namespace: str = "azl-system") -> list[str]:
    """Delete what runs whose process is gone left in ``namespace`` (as the next run would)."""
    return RunLedger(bed.api(), namespace).sweep()


@pytest.fixture(autouse=True)
def _clean_start(cluster_bed: BedHandle) -> None:
    """Each test starts without objects an earlier, failed test's child left behind."""
    _sweep_dead_runs(cluster_bed)


@contextlib.contextmanager
def _resolved(name: str, target: ClusterTarget) -> Iterator[Resolved]:
    """The resolved target (hosts, cluster context); its run is cleaned up at the end."""
    resolved = resolve_cluster_target(name, target, start=True)
    assert resolved.undo is not None and isinstance(resolved.context, ClusterContext)
    try:
        yield resolved
    finally:
        resolved.undo()


def _node_host(resolved: Resolved, spec: HostSpec, timeout: float = 30) -> Host:
    """A host on ``spec``'s node, its transport given the target's context (as the session
    does)."""
    assert isinstance(resolved.context, ClusterContext)
    return Host(spec, KubeTransport(spec, resolved.context), timeout)


def _connect_error(name: str, target: ClusterTarget,
                   error: type[Exception] = HostUnreachable) -> str:
    """The message of ``error`` (exactly that type) raised connecting to the target's first
    node."""
    with _resolved(name, target) as resolved:
        host = _node_host(resolved, resolved.hosts[0], 10)
        try:
            with pytest.raises(error) as info:
                host.transport.connect()
            assert type(info.value) is error, repr(info.value)
            return str(info.value)
        finally:
            host.close()


def test_pool_discovered_by_label_with_node_facts(cluster_bed: BedHandle) -> None:
    with _resolved("nodepool-canary", _target(cluster_bed)) as resolved:
        specs = resolved.hosts
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
    with _resolved("nodepool-idle", target) as resolved:
        specs = resolved.hosts
        assert sorted(s.name for s in specs) == sorted(cluster_bed.idle_nodes)
        assert isinstance(resolved.context, ClusterContext)
        facts = resolved.context.node(specs[0].name)
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
    resolved = resolve_cluster_target("nodepool-canary", _target(cluster_bed), start=True)
    assert resolved.undo is not None
    hosts = [_node_host(resolved, s) for s in resolved.hosts]
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
        resolved.undo()
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
        # the debug-pod transport reports it as what it is (docs/cluster.md), not as a lost
        # node: PodSecurityRejected naming the pod, the node and the namespace's level
        target = _target(cluster_bed, namespace=namespace)
        assert ensure_namespace(api, namespace, "privileged") is False  # not ours: untouched
        said = _connect_error("restricted", target, PodSecurityRejected)
        assert "refused by Pod Security" in said and "enforce=restricted" in said, said
        assert f"on node {cluster_bed.canary_nodes[0]}" in said, said
        # a run joined it (record written) without touching it: the namespace is the user's
        annotations = core.read_namespace(namespace).metadata.annotations or {}
        assert not [a for a in annotations if a.startswith("azl.io/")], annotations
    finally:
        core.delete_namespace(namespace)


# A pool half upgraded from one weekly AKS node image to the next, on one OS image.
NODE_OLD, NODE_NEW = "AKSAzureLinux-V3gen2-202611.01.0", "AKSAzureLinux-V3gen2-202611.08.0"


def _mixed_pool(bed: BedHandle, pool: str) -> dict[str, str]:
    """Four kwok nodes of ``pool``, two on each node image, all bound to the lab's azl3 host
    (one OS image): ``{node: node image version}``."""
    host = next(h for h in bed.lab.hosts if h.variant == "azl3")
    enter = list(enter_cmd(host))
    if enter and enter[0] == "nsenter":  # this machine's, not the pod-side shim
        import shutil

        enter[0] = shutil.which("nsenter") or "/usr/bin/nsenter"
    nodes: dict[str, str] = {}
    for i, version in enumerate((NODE_OLD, NODE_OLD, NODE_NEW, NODE_NEW)):
        [name] = bed.bed.add_pool(pool, 1, image=NodeImage(node_image_version=version),
                                  prefix=f"aks-{pool}-27182818-vmss", start=i)
        bed.bed.bind_node(name, enter)
        nodes[name] = version
    return nodes


def test_mixed_node_images_are_facts_properties_and_a_finding(
    cluster_bed: BedHandle, tmp_path: Path
) -> None:
    """Each test on a node carries the node's image version and OS SKU labels; one image
    per target names both node image versions and the nodes on each; the per-image report
    and its HTML page show the node images."""
    pool = "mixed"
    nodes = _mixed_pool(cluster_bed, pool)
    targets = write_targets(cluster_bed.bed, tmp_path / "targets.yaml", {"nodepool-mixed": pool})
    junit, reports = tmp_path / "junit.xml", tmp_path / "reports"
    try:
        proc = child_pytest(targets, tmp_path, str(ROOT / "suites" / "image" / "test_identity.py"),
                            "--azl-target", "nodepool-mixed", f"--junitxml={junit}",
                            "--azl-junit-dir", str(reports))
        with _child(proc, cluster_bed):
            out, _ = proc.communicate(timeout=SUITE_WITHIN)
    finally:
        cluster_bed.bed.remove_pool(pool)
    text = out.decode(errors="replace")
    assert junit.exists(), text[-3000:]
    outcomes = junit_outcomes(junit)
    old = ", ".join(n for n, v in nodes.items() if v == NODE_OLD)
    new = ", ".join(n for n, v in nodes.items() if v == NODE_NEW)
    outcome, message = outcomes["test_one_image_per_target[nodepool-mixed]"]
    assert outcome == "failed", (outcome, message)
    assert f"2 node image versions ({NODE_OLD}: {old}; {NODE_NEW}: {new})" in message, message
    assert "images: expected one image" not in message, message  # one OS image
    # every test on a node carries that node's labels (pytest's JUnit)
    props = junit_properties(junit)
    for node, version in nodes.items():
        cases = [name for name in props if name.endswith(f"[{node}]")]
        assert cases, sorted(props)
        for name in cases:
            assert props[name]["azl.node_image_version"] == version, (name, props[name])
            assert props[name]["azl.os_sku"] == "AzureLinux", (name, props[name])
            assert props[name]["azl.os_sku_effective"] == "AzureLinux3", (name, props[name])
    # the per-image report: both node images on the suite, each case with its node's
    [report] = [r for r in reports.glob("*.xml") if not r.name.startswith("target-")]
    suites, cases = read_cases(report)
    [suite] = suites.values()
    assert suite["azl.node_image_version"] == f"{NODE_OLD},{NODE_NEW}", suite
    assert suite["azl.os_sku"] == "AzureLinux", suite
    for case in cases:
        assert case.properties["azl.node_image_version"] == nodes[case.host], case
    page = (reports / "index.html").read_text()
    for node, version in nodes.items():
        assert re.search(rf"<strong>{node}</strong> <span class=\"node-image\"[^>]*>{version}<",
                         page), node
    assert f"{NODE_OLD},{NODE_NEW}" in page


def _azl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``azl ARGV`` in this process: exit code, and what it printed (stdout + stderr)."""
    from pytest_azlinux.cli import main

    capsys.readouterr()
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse refusing the command line
        rc = int(exc.code or 0)
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_bed_commands_take_one_flag_set_and_down_removes_the_state_directory(
    cluster_bed: BedHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """``azl lab cluster up|status|down`` all take ``--root`` and ``--lab``; ``down`` leaves
    no state directory behind (but keeps what the bed did not write there)."""
    lab = cluster_bed.lab.name
    root = Path(f"/var/lib/azl-testbed/pytest-cli-{os.getpid()}")
    cmd = ("lab", "cluster")
    assert _azl(capsys, *cmd, "status", "--root", str(root), "--lab", lab) == (
        1, "cluster test bed: not started\n")
    rc, said = _azl(capsys, *cmd, "up", "--root", str(root), "--lab", lab, "--lab-pool", "cli")
    try:
        assert rc == 0, said
        rc, said = _azl(capsys, *cmd, "status", "--root", str(root), "--lab", lab)
        assert rc == 0 and f"lab {lab}" in said and "cli=3" in said, said
        rc, said = _azl(capsys, *cmd, "status", "--root", str(root), "--lab", "other")
        assert (rc, said) == (2, f"azl: error: the test bed at {root} is bound to lab {lab}, "
                                 "not lab other\n")
        rc, said = _azl(capsys, *cmd, "down", "--root", str(root), "--lab", "other")
        assert rc == 2 and "not lab other" in said, said
        assert ClusterBed(root).is_up()  # refused: still up
        rc, said = _azl(capsys, *cmd, "down", "--root", str(root), "--lab", lab)
        assert (rc, said) == (0, f"cluster test bed down; {root} removed\n")
        assert not root.exists()
    finally:
        ClusterBed(root).down(keep_logs=False)
    # a root that already held something of its own: the bed's files go, the rest stays
    root.mkdir(parents=True)
    (root / "notes.txt").write_text("mine\n")
    (root / "logs").mkdir()
    (root / "logs" / "etcd.log").write_text("old\n")
    try:
        rc, said = _azl(capsys, *cmd, "down", "--root", str(root))
        assert rc == 0 and "(notes.txt)" in said, said
        assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]
    finally:
        (root / "notes.txt").unlink()
        root.rmdir()


def _write_suite(tmp: Path, body: str) -> Path:
    suite = tmp / "suite"
    suite.mkdir()
    (suite / "test_nodes.py").write_text(body)
    return suite


def _pytest(bed: BedHandle, tmp: Path, *args: str) -> subprocess.Popen[bytes]:
    return child_pytest(bed.targets_file, tmp, *args)


def test_host_level_suite_runs_on_nodes_through_debug_pods(
    cluster_bed: BedHandle, tmp_path: Path
) -> None:
    """The image suite, unchanged, on the pool's nodes: one item per node, no ERROR."""
    junit = tmp_path / "junit.xml"
    proc = _pytest(cluster_bed, tmp_path, str(ROOT / "suites" / "image"),
                   "--azl-target", "nodepool-canary", f"--junitxml={junit}",
                   "--azl-junit-dir", str(tmp_path / "reports"))
    with _child(proc, cluster_bed):
        out, _ = proc.communicate(timeout=SUITE_WITHIN)
    text = out.decode(errors="replace")
    assert junit.exists(), text
    outcomes = junit_outcomes(junit)
    errors = [name for name, (outcome, _) in outcomes.items() if outcome == "error"]
    assert not errors, "\n".join(f"{n}: {outcomes[n][1]}" for n in errors)[:3000]
    for node in cluster_bed.canary_nodes:
        assert any(f"[{node}]" in name for name in outcomes), text[-2000:]
    passed = [name for name, (outcome, _) in outcomes.items() if outcome == "passed"]
    assert passed, text[-2000:]
    reports = list((tmp_path / "reports").glob("*.xml"))
    assert reports and any(
        "AKSAzureLinux-V3gen2-202511.07.0" in r.read_text() for r in reports)
    assert _managed_left(cluster_bed) == []


@contextlib.contextmanager
def _child(proc: subprocess.Popen[bytes], bed: BedHandle) -> Iterator[subprocess.Popen[bytes]]:
    """A child pytest that never outlives the test: killed if it still runs at the end, and
    what it left in the cluster swept, so the next test starts clean."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            _sweep_dead_runs(bed)


def _ends_within(proc: subprocess.Popen[bytes], within: float) -> bool:
    try:
        proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_interrupted_run_leaves_nothing_and_killed_run_is_swept(
    cluster_bed: BedHandle, tmp_path: Path
) -> None:
    suite = _write_suite(tmp_path, (
        "import time\n"
        "def test_hold(azl_host):\n"
        "    azl_host.run('true')\n"
        "    print('HOLDING', flush=True)\n"
        "    time.sleep(3600)\n"
    ))
    for sig in (signal.SIGINT, signal.SIGKILL):
        proc = _pytest(cluster_bed, tmp_path, str(suite), "--azl-target", "nodepool-canary",
                       "-s", "-x")
        with _child(proc, cluster_bed):
            wait_for_output(proc, b"HOLDING", CHILD_READY_WITHIN)
            assert _managed_left(cluster_bed), "the run made no debug pod?"
            proc.send_signal(sig)
            assert _ends_within(proc, CHILD_CLEANUP_WITHIN), (
                f"the child pytest did not end within {CHILD_CLEANUP_WITHIN:g} s of {sig.name}")
        if sig == signal.SIGINT:
            assert _managed_left(cluster_bed) == []
        else:
            # killed outright: the next run sweeps the dead run's objects
            assert _managed_left(cluster_bed)
            with _resolved("nodepool-canary", _target(cluster_bed)):
                pass
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


# -- a list that fails is never "nothing left" ------------------------------------------------
def _limited_client(bed: BedHandle, namespace: str, readable: list[str]) -> Any:
    """An API client of a real service account that may read ``namespace`` itself and list
    only ``readable`` (core resources) in it: RBAC forbids it everything else. Its
    cluster-wide grant is named after the namespace (delete ``azl-limited-<namespace>``)."""
    from pytest_azlinux.cluster.k8s import client

    api = bed.api()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "azl-limited"}})
    grant = f"azl-limited-{namespace}"
    rbac.create_cluster_role({"metadata": {"name": grant}, "rules": [
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace],
         "verbs": ["get"]}]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": grant},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": grant},
        "subjects": [{"kind": "ServiceAccount", "name": "azl-limited",
                      "namespace": namespace}]})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "azl-limited"},
        "rules": [{"apiGroups": [""], "resources": readable, "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "azl-limited"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "azl-limited"},
        "subjects": [{"kind": "ServiceAccount", "name": "azl-limited",
                      "namespace": namespace}]})
    token = core.create_namespaced_service_account_token(
        "azl-limited", namespace, {"spec": {"expirationSeconds": 600}}).status.token
    cfg = client.Configuration()
    cfg.host = bed.bed.state().server
    cfg.ssl_ca_cert = str(bed.bed.pki / "ca.crt")
    cfg.api_key = {"authorization": f"Bearer {token}"}
    cfg.retries = 0
    return client.ApiClient(cfg)


def test_a_forbidden_list_keeps_the_namespace_of_another_run(cluster_bed: BedHandle) -> None:
    """Another live run has a pod in our helper namespace, and we may not list pods: the
    ledger must say it cannot tell (an ERROR), not "nothing left" — which once let the end
    of a run delete a namespace another run still used."""
    from pytest_azlinux.cluster.k8s import client
    from pytest_azlinux.cluster.target import _drop_namespace_if_unused
    from pytest_azlinux.errors import ApiError

    api = cluster_bed.api()
    core = client.CoreV1Api(api)
    namespace = "azl-shared-test"
    assert ensure_namespace(api, namespace, "privileged") is True  # made by us: managed
    try:
        other = RunLedger(api, namespace)  # a live run (this process) with a pod there
        create_pod(api, other, profile_pod_manifest(
            "azl-other-run", cluster_bed.canary_nodes[0], "busybox", "baseline", {}))
        limited = _limited_client(
            cluster_bed, namespace, ["configmaps", "persistentvolumeclaims"])
        mine = RunLedger(limited, namespace)
        with pytest.raises(ApiError) as info:
            mine.remaining(f"{MANAGED_LABEL}={MANAGED_BY}")
        assert info.value.status == 403 and f"list Pod in {namespace}" in str(info.value)
        # the end of our run: it may read the namespace, cannot list pods, so it keeps it
        errors = _drop_namespace_if_unused(limited, namespace, mine)
        assert len(errors) == 1 and f"namespace {namespace} kept" in errors[0], errors
        assert f"needs `list` on `pods` in `{namespace}`" in errors[0], errors
        assert core.read_namespace(namespace).status.phase == "Active"
        assert core.read_namespaced_pod("azl-other-run", namespace).metadata.name
    finally:
        rbac = client.RbacAuthorizationV1Api(api)
        with contextlib.suppress(Exception):  # made only once the client was made
            rbac.delete_cluster_role_binding(f"azl-limited-{namespace}")
            rbac.delete_cluster_role(f"azl-limited-{namespace}")
        core.delete_namespace(namespace)


# -- runs that share the helper namespace (CI shards at once) --------------------------------
@contextlib.contextmanager
def _shared_namespace(bed: BedHandle, namespace: str) -> Iterator[Any]:
    from pytest_azlinux.cluster.k8s import client
    from pytest_azlinux.cluster.runs import wait_namespace_gone

    api = bed.api()
    assert ensure_namespace(api, namespace, "privileged") is True  # made by a run: managed
    try:
        yield client.CoreV1Api(api)
    finally:
        with contextlib.suppress(Exception):
            client.CoreV1Api(api).delete_namespace(namespace)
        wait_namespace_gone(api, namespace, NAMESPACE_GONE_TIMEOUT)


def _record_of(core: Any, namespace: str, ledger: RunLedger) -> str:
    return str(core.read_namespaced_config_map(f"azl-run-{ledger.run_id}", namespace)
               .metadata.name)


def test_a_run_joining_while_another_ends_keeps_the_namespace(cluster_bed: BedHandle) -> None:
    """The ending run has seen no other record; a run joins before its delete: the delete
    is refused (the namespace changed since the ending run read it), the joined run keeps
    its namespace and its record."""
    from pytest_azlinux.cluster.target import _drop_namespace_if_unused, _join_namespace

    api, namespace = cluster_bed.api(), "azl-join-test"
    with _shared_namespace(cluster_bed, namespace) as core:
        ending, joining = RunLedger(api, namespace), RunLedger(api, namespace)
        _join_namespace(api, namespace, "privileged", ending)
        ending.delete_run()  # its record is gone: it is at its end

        def remaining_then_another_joins(selector: str | None = None) -> list[str]:
            seen = RunLedger.remaining(ending, selector)
            _join_namespace(api, namespace, "privileged", joining)  # just after the look
            return seen

        ending.remaining = remaining_then_another_joins  # type: ignore[method-assign]
        assert _drop_namespace_if_unused(api, namespace, ending) == []
        assert core.read_namespace(namespace).metadata.deletion_timestamp is None
        assert _record_of(core, namespace, joining)


def test_a_run_joining_a_namespace_being_deleted_gets_a_new_one(cluster_bed: BedHandle) -> None:
    """The other run's delete came first: the joining run waits it out and makes the
    namespace again, with its record in it."""
    from pytest_azlinux.cluster.target import _join_namespace

    api, namespace = cluster_bed.api(), "azl-rejoin-test"
    with _shared_namespace(cluster_bed, namespace) as core:
        first_uid = core.read_namespace(namespace).metadata.uid
        core.delete_namespace(namespace)  # the other run's end
        joining = RunLedger(api, namespace)
        _join_namespace(api, namespace, "privileged", joining)
        now = core.read_namespace(namespace)
        assert now.metadata.uid != first_uid and now.metadata.deletion_timestamp is None
        assert _record_of(core, namespace, joining)


def test_a_run_that_starts_during_a_sweep_is_not_swept(cluster_bed: BedHandle) -> None:
    """A run writes its record, then its objects; a sweep that looks at records and objects
    in between must still find its record (else it deletes a live run's objects)."""
    from pytest_azlinux.cluster.k8s import client

    api, namespace = cluster_bed.api(), "azl-sweep-test"
    with _shared_namespace(cluster_bed, namespace) as core:
        sweeper, starting = RunLedger(api, namespace), RunLedger(api, namespace)
        listed = RunLedger._list

        def starting_run_appears(self: RunLedger, kind: Any, selector: str) -> Any:
            if not starting_run_appears.done:  # type: ignore[attr-defined]
                starting_run_appears.done = True  # type: ignore[attr-defined]
                starting.write_record()
                client.CoreV1Api(api).create_namespaced_config_map(namespace, starting.label({
                    "metadata": {"name": "azl-starting"}, "data": {"a": "b"}}))
            return listed(self, kind, selector)

        starting_run_appears.done = False  # type: ignore[attr-defined]
        sweeper._list = starting_run_appears.__get__(sweeper)  # type: ignore[method-assign]
        assert starting.run_id not in sweeper.stale_runs()
        assert core.read_namespaced_config_map("azl-starting", namespace).metadata.name


def test_api_errors_from_the_helpers_are_infra_errors(cluster_bed: BedHandle) -> None:
    """A real 404 from the API server leaves the cluster helpers as ApiError (ERROR), with
    the status for callers that expect it; never as the client's own exception (FAIL)."""
    from pytest_azlinux.cluster.pods import namespace_level
    from pytest_azlinux.errors import ApiError, InfraError

    with pytest.raises(ApiError) as info:
        namespace_level(cluster_bed.api(), "azl-no-such-namespace")
    assert isinstance(info.value, InfraError) and info.value.status == 404
    assert "read namespace azl-no-such-namespace: 404" in str(info.value)

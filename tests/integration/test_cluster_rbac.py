"""Least privilege on the test bed: the roles of ``azl cluster rbac`` are enough, each of their
rules is needed, and a user whose credential comes from an exec plugin runs the suites.

The bed's kube-apiserver authorizes with RBAC (and the Node authorizer) and authenticates
service-account tokens and, through the bed's token webhook (``lab/bed/tokens.py``, the
stand-in for Entra ID), short-lived tokens an exec plugin prints as kubelogin would. Runs
here are child pytest runs, as a user's: they see only what their identity may do.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pytest_azlinux.cluster import rbac
from pytest_azlinux.lab.bed import identities, tokens
from tests.fixtures.child import ROOT, child_pytest, run_to_end
from tests.fixtures.cluster import BedHandle
from tests.fixtures.junit import junit_outcomes
from tests.fixtures.rbac import (
    EXEC_USER,
    GROUP,
    NAMESPACE,
    SERVICE_ACCOUNT,
    clean,
    counting_plugin,
    grant,
    outliving_test,
    revoke,
    scoped_targets,
)

RUN_WITHIN = 900.0  # a child run of the suites on three nodes, on a busy machine
FAIL_WITHIN = 300.0  # a child run that stops at its first refusal (no retry loop, no hang)

IMAGE_ONE = [str(ROOT / "suites" / "image" / "test_identity.py"),
             "-k", "test_os_release_matches_profile"]
CSI = [str(ROOT / "suites" / "cluster" / "test_csi_snapshot.py"), "--azl-allow-destructive"]


@dataclass
class RbacBed:
    bed: BedHandle
    kubeconfig: Path
    tmp: Path

    def targets(self, tmp: Path, kubeconfig: Path | None = None) -> Path:
        """The bed's targets file, the canary pool's target as this identity, in NAMESPACE."""
        path = scoped_targets(self.bed.targets_file, tmp, "nodepool-canary",
                              kubeconfig or self.kubeconfig)
        data = yaml.safe_load(path.read_text())
        data["targets"]["nodepool-canary"]["suites"] = {"cluster": {
            "storage_class": "azl-testbed-csi", "snapshot_class": "azl-testbed-vsc",
            "duration": 1, "repetitions": 1}}
        path.write_text(yaml.safe_dump(data))
        return path


@pytest.fixture(scope="module")
def rbac_bed(cluster_bed: BedHandle, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RbacBed]:
    tmp = tmp_path_factory.mktemp("rbac")
    kubeconfig = identities.service_account_kubeconfig(
        cluster_bed.bed, tmp / "kubeconfig", *SERVICE_ACCOUNT)
    grant(cluster_bed.bed)
    try:
        yield RbacBed(cluster_bed, kubeconfig, tmp)
    finally:
        revoke(cluster_bed.bed)


def _run(targets: Path, tmp: Path, args: list[str], within: float) -> tuple[int, str, Path]:
    junit = tmp / "junit.xml"
    proc = child_pytest(targets, tmp, "--azl-target", "nodepool-canary", "-rs",
                        f"--junitxml={junit}", "--azl-junit-dir", str(tmp / "reports"), *args)
    started = time.monotonic()
    out = run_to_end(proc, within)
    assert proc.returncode is not None and time.monotonic() - started < within, out[-3000:]
    return proc.returncode, out, junit


# -- sufficient ------------------------------------------------------------------------------
def test_the_suites_pass_under_the_shipped_role_alone(rbac_bed: RbacBed, tmp_path: Path) -> None:
    """The image, security and cluster suites as a service account bound only to the roles
    `azl cluster rbac` prints: no test errors, nothing refused, nothing left behind."""
    suites = [str(ROOT / "suites" / s) for s in ("image", "security", "cluster")]
    rc, out, junit = _run(rbac_bed.targets(tmp_path), tmp_path,
                          [*suites, "--azl-allow-destructive"], RUN_WITHIN)
    assert junit.exists(), out[-3000:]
    outcomes = junit_outcomes(junit)
    errors = {n: m for n, (o, m) in outcomes.items() if o == "error"}
    assert not errors, "\n".join(f"{n}: {m}" for n, m in errors.items())[:3000]
    assert "pytest-azlinux needs" not in out and "cleanup failed" not in out, out[-3000:]
    assert "Traceback" not in out
    for suite in ("test_os_release_matches_profile", "test_container_escape",
                  "test_escape_probe_in_pod", "test_volume_snapshot_restore"):
        assert any(suite in name for name in outcomes), (suite, sorted(outcomes)[:20])
    passed = [n for n, (o, _) in outcomes.items() if o == "passed"]
    assert passed, out[-2000:]
    assert rc in (0, 1), out[-3000:]  # findings on lab hosts may FAIL; nothing else
    clean(rbac_bed.bed.bed)  # asserts the run left nothing (its own cleanup ran)


# -- necessary -------------------------------------------------------------------------------
# What a run does with each rule, and where it stops without it: at start-up (exit 4, before
# any test), in a test (its ERROR), or at its end (cleanup fails, exit 1).
NEEDED_BY: dict[str, tuple[str, list[str]]] = {
    "nodes:list": ("start", IMAGE_ONE),
    "namespaces:get": ("start", IMAGE_ONE),
    "configmaps:create": ("start", IMAGE_ONE),
    "configmaps:list": ("start", IMAGE_ONE),
    "configmaps:deletecollection": ("end", IMAGE_ONE),
    "pods:list": ("start", IMAGE_ONE),
    "pods:deletecollection": ("end", IMAGE_ONE),
    "persistentvolumeclaims:list,deletecollection": ("start", IMAGE_ONE),
    "volumesnapshots.snapshot.storage.k8s.io:list,deletecollection": ("start", IMAGE_ONE),
    "pods:create,get": ("test", IMAGE_ONE),
    "pods/exec:get": ("test", IMAGE_ONE),
    "pods/exec:create": ("test", IMAGE_ONE),
    "pods:delete": ("test", CSI),
    "storageclasses.storage.k8s.io:get": ("test", CSI),
    "volumesnapshotclasses.snapshot.storage.k8s.io:get": ("test", CSI),
    "volumesnapshotcontents.snapshot.storage.k8s.io:get": ("test", CSI),
    "persistentvolumeclaims:create,get": ("test", CSI),
    "volumesnapshots.snapshot.storage.k8s.io:create,get": ("test", CSI),
}


def test_every_rule_has_a_case() -> None:
    assert sorted(NEEDED_BY) == sorted(r.key for r in rbac.RULES)


def _expected_lines(rule: rbac.Rule) -> list[str]:
    where = "cluster-wide" if rule.cluster and not rule.own_namespace else f"in `{NAMESPACE}`"
    group = f".{rule.group}" if rule.group else ""
    return [f"pytest-azlinux needs `{verb}` on `{resource}{group}` {where}: "
            "see `azl cluster rbac`" for resource in rule.resources for verb in rule.verbs]


@pytest.mark.parametrize("rule", rbac.RULES, ids=[r.key for r in rbac.RULES])
def test_each_rule_left_out_fails_the_run_naming_it(
    rbac_bed: RbacBed, tmp_path: Path, rule: rbac.Rule,
) -> None:
    phase, args = NEEDED_BY[rule.key]
    grant(rbac_bed.bed.bed, without=(rule.key,))
    try:
        rc, out, _ = _run(rbac_bed.targets(tmp_path), tmp_path, args, FAIL_WITHIN)
    finally:
        grant(rbac_bed.bed.bed)
        clean(rbac_bed.bed.bed)
    lines = [line for line in out.splitlines()
             if any(expected in line for expected in _expected_lines(rule))]
    assert lines, f"no line names {rule.key}:\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    if phase == "start":
        assert rc == 4, out[-3000:]
        assert any(line.startswith("ERROR: pytest-azlinux needs") for line in lines), out[-3000:]
    elif phase == "end":
        assert rc == 1, out[-3000:]
        assert any("azl: cleanup failed:" in line for line in lines), out[-3000:]
    else:
        assert rc == 1, out[-3000:]
        assert any(line.startswith(("ERROR ", "E ")) or " ERROR " in line
                   or "PermissionDenied" in line or "HostUnreachable" in line
                   for line in lines), out[-3000:]


# -- exec-plugin credentials -----------------------------------------------------------------
def test_the_bed_refuses_an_expired_token(cluster_bed: BedHandle) -> None:
    """What makes the refresh below necessary: the webhook's tokens really expire."""
    import urllib.error
    import urllib.request

    token, _ = tokens.mint(cluster_bed.bed.pki, EXEC_USER, [GROUP], ttl=2)
    server = cluster_bed.bed.state().server

    def status() -> int:
        import ssl

        tls = ssl.create_default_context(cafile=str(cluster_bed.bed.pki / "ca.crt"))
        request = urllib.request.Request(f"{server}/api/v1/nodes?limit=1",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, context=tls, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status() in (200, 403)  # authenticated (403 when GROUP holds no role yet)
    # expired, and past kube-apiserver's caches of a successful authentication: the
    # webhook's (1 s) and the overall one (10 s, which the server warns about at start)
    time.sleep(13)
    assert status() == 401


def test_an_exec_plugin_user_runs_the_image_suite_and_refreshes_its_token(
    rbac_bed: RbacBed, tmp_path: Path,
) -> None:
    """A kubeconfig whose user is an exec plugin (as kubelogin makes it), in a group bound
    to the shipped roles: the image suite runs on the kwok pool; its tokens live 10 s, so
    the plugin runs again within the run (the run's end comes after the first expired)."""
    kubeconfig, runs = counting_plugin(rbac_bed.bed.bed, tmp_path, ttl=10)
    outlive = outliving_test(tmp_path, ttl=10)
    rc, out, junit = _run(rbac_bed.targets(tmp_path, kubeconfig), tmp_path,
                          [str(ROOT / "suites" / "image"), str(outlive)], RUN_WITHIN)
    assert junit.exists(), out[-3000:]
    outcomes = junit_outcomes(junit)
    errors = {n: m for n, (o, m) in outcomes.items() if o == "error"}
    assert not errors, "\n".join(f"{n}: {m}" for n, m in errors.items())[:3000]
    assert [n for n, (o, _) in outcomes.items() if o == "passed"], out[-2000:]
    assert "cleanup failed" not in out and rc in (0, 1), out[-3000:]
    count = len(runs.read_text().splitlines())
    assert count >= 2, f"the plugin ran {count} time(s): the token was never refreshed"
    clean(rbac_bed.bed.bed)


@pytest.mark.parametrize("plugin", ["failing", "missing"])
def test_a_broken_exec_plugin_stops_the_run_before_any_test(
    rbac_bed: RbacBed, tmp_path: Path, plugin: str,
) -> None:
    if plugin == "failing":
        command, args = "/bin/sh", ["-c", "echo 'AADSTS50076: MFA required' >&2; exit 3"]
        expected = (f"exec plugin `{shlex.join([command, *args])}` exited 3: "
                    "AADSTS50076: MFA required")
    else:
        command, args = str(tmp_path / "kubelogin"), ["get-token"]
        expected = f"exec plugin `{command} get-token`: command not found: {command}"
    kubeconfig = identities.exec_command_kubeconfig(
        rbac_bed.bed.bed, tmp_path / "kubeconfig-broken", command, args)
    rc, out, junit = _run(rbac_bed.targets(tmp_path, kubeconfig), tmp_path, IMAGE_ONE,
                          FAIL_WITHIN)
    assert rc == 4, out[-3000:]
    lines = [line for line in out.splitlines() if expected in line]
    assert lines and lines[0].startswith("ERROR: target 'nodepool-canary': kubeconfig"), out
    assert "Traceback" not in out and not junit.exists(), out[-3000:]


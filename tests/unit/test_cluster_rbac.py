"""The shipped permissions (``azl cluster rbac``), an RBAC refusal as one line, and the exec
credential plugin of a kubeconfig user.

The 403 texts are what kube-apiserver v1.37.2 of the test bed answered (REST, and the exec
handshake as the websocket client reports it); the plugins are real processes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import sys
import time
from pathlib import Path

import pytest
import yaml

from pytest_azlinux.cli import main
from pytest_azlinux.cluster import rbac
from pytest_azlinux.cluster.api import api_error, api_failure
from pytest_azlinux.cluster.credentials import ExecPlugin
from pytest_azlinux.cluster.k8s import ApiException
from pytest_azlinux.errors import ApiError, CredentialPluginFailed, PermissionDenied

ROOT = Path(__file__).resolve().parents[2]


def _doc_table() -> str:
    text = (ROOT / "docs" / "cluster.md").read_text()
    found = re.search(r"<!-- rbac-table: begin -->\n(.*?)<!-- rbac-table: end -->", text, re.S)
    assert found, "docs/cluster.md has no rbac table between its markers"
    return found.group(1)


def test_docs_permissions_table_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cluster", "rbac", "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert printed == _doc_table()
    assert len(printed.strip().splitlines()) == len(rbac.RULES) + 2


def test_every_verb_on_a_resource_has_one_rule() -> None:
    """A rule left out is then really missing (none grants the same verb again), and each
    rule says why."""
    seen: dict[tuple[str, str, str], str] = {}
    for rule in rbac.RULES:
        assert rule.reason and "\n" not in rule.reason
        for resource in rule.resources:
            for verb in rule.verbs:
                key = (rule.group, resource, verb)
                assert key not in seen, f"{key} in {seen.get(key)} and {rule.key}"
                seen[key] = rule.key
    assert len({r.key for r in rbac.RULES}) == len(rbac.RULES)


def _printed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["cluster", "rbac", *args]) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]


def test_the_manifest_grants_exactly_the_selected_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = _printed(capsys, "--namespace", "azl-ci", "--service-account", "ci/runner",
                    "--group", "g-1", "--features", "debug-pod")
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"]
    ns, cluster_role, role, crb, rb = docs
    labels = ns["metadata"]["labels"]  # type: ignore[index]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert "app.kubernetes.io/managed-by" not in labels  # a run never deletes it
    granted = {(g, res, v) for d in (cluster_role, role) for r in d["rules"]  # type: ignore[attr-defined]
               for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}
    assert ("", "pods/exec", "create") in granted and ("", "nodes", "list") in granted
    assert ("", "pods", "delete") not in granted  # probe pods only
    assert not [k for k in granted if k[1] == "storageclasses"]  # csi only
    for d in (cluster_role, role):
        for r in d["rules"]:  # type: ignore[attr-defined]
            assert not {"*", "update", "patch", "escalate", "bind", "impersonate"} & set(
                r["verbs"])
    ns_rule = next(r for r in cluster_role["rules"] if r["resources"] == ["namespaces"])  # type: ignore[attr-defined]
    assert ns_rule["resourceNames"] == ["azl-ci"] and ns_rule["verbs"] == ["get"]
    assert role["metadata"]["namespace"] == "azl-ci"  # type: ignore[index]
    assert crb["subjects"] == rb["subjects"] == [
        {"kind": "ServiceAccount", "name": "runner", "namespace": "ci"},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g-1"}]


def test_each_rule_is_printed_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "rbac"]) == 0
    out = capsys.readouterr().out
    for rule in rbac.RULES:
        assert f"# {rule.reason} [" in out


def test_node_facts_alone_need_a_baseline_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    docs = _printed(capsys, "--features", "nodes", "--no-namespace")
    assert [d["kind"] for d in docs] == ["ClusterRole", "Role"]  # no subjects: no bindings
    assert rbac.pod_security_level(["nodes", "csi"]) == "baseline"


def test_bad_options_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "rbac", "--features", "debug-pod,nope"]) == 2
    assert capsys.readouterr().err.strip() == (
        "azl: error: --features: unknown nope (known: nodes, debug-pod, pods, csi)")
    assert main(["cluster", "rbac", "--service-account", "runner"]) == 2
    assert "NAMESPACE/NAME" in capsys.readouterr().err


# -- a 403 as one line ----------------------------------------------------------------------
REST_403 = ('pods "azl-debug-1" is forbidden: User "system:serviceaccount:azl-ci:runner" '
            'cannot create resource "pods/exec" in API group "" in the namespace "azl-system"')
CLUSTER_403 = ('nodes is forbidden: User "azl-ci@example.test" cannot list resource "nodes" '
               'in API group "" at the cluster scope')
SNAP_403 = ('volumesnapshots.snapshot.storage.k8s.io is forbidden: User "u" cannot list '
            'resource "volumesnapshots" in API group "snapshot.storage.k8s.io" in the '
            'namespace "azl-system"')


def test_rbac_refusals_name_verb_resource_and_namespace() -> None:
    err = api_failure("exec in pod azl-system/azl-debug-1", 403, REST_403)
    assert isinstance(err, PermissionDenied) and err.status == 403
    assert str(err).startswith(
        "pytest-azlinux needs `create` on `pods/exec` in `azl-system`: see `azl cluster rbac`")
    assert "system:serviceaccount:azl-ci:runner" in str(err) and "\n" not in str(err)
    err = api_failure("list nodes", 403, CLUSTER_403)
    assert str(err).startswith("pytest-azlinux needs `list` on `nodes` cluster-wide:")
    err = api_failure("list VolumeSnapshot", 403, SNAP_403)
    assert "`list` on `volumesnapshots.snapshot.storage.k8s.io` in `azl-system`" in str(err)
    # other 403s stay what they are: Pod Security, a namespace being deleted
    other = api_failure("create pod", 403, 'pods "x" is forbidden: violates PodSecurity ...')
    assert type(other) is ApiError


def test_a_refused_exec_handshake_is_read_as_a_403() -> None:
    body = json.dumps({"kind": "Status", "message": REST_403}).encode()
    reason = (f"Handshake status 403 Forbidden -+-+- {{'content-type': 'application/json'}} "
              f"-+-+- {body!r}")
    status, message = api_error(ApiException(status=0, reason=reason))
    assert status == 403
    err = api_failure("exec", status, message)
    assert isinstance(err, PermissionDenied) and err.resource == "pods/exec"
    assert err.namespace == "azl-system" and err.user == "system:serviceaccount:azl-ci:runner"


# -- the exec credential plugin -------------------------------------------------------------
def _script(tmp: Path, body: str) -> str:
    path = tmp / "plugin"
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _credential(token: str, expires: str | None) -> str:
    status = {"token": token, **({"expirationTimestamp": expires} if expires else {})}
    return json.dumps({"apiVersion": "client.authentication.k8s.io/v1",
                       "kind": "ExecCredential", "status": status})


def test_the_plugin_token_is_refreshed_before_it_expires(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    script = _script(tmp_path, (
        "import os, pathlib, json\n"
        f"p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert info['spec']['interactive'] is False\n"
        f"print({_credential('TOKEN', expires)!r}.replace('TOKEN', f'tok-{{n}}'))\n"))
    plugin = ExecPlugin(script)
    assert plugin.header() == "Bearer tok-1"
    assert plugin.header() == "Bearer tok-1"  # cached while fresh
    time.sleep(4)
    assert plugin.header() == "Bearer tok-2"  # expired: the plugin ran again
    plugin.invalidate()
    assert plugin.header() == "Bearer tok-3"  # refused by the server: again


def test_a_failing_plugin_names_command_and_stderr(tmp_path: Path) -> None:
    script = _script(tmp_path, (
        "import sys\nprint('AADSTS700082: the refresh token has expired', file=sys.stderr)\n"
        "sys.exit(1)\n"))
    with pytest.raises(CredentialPluginFailed) as info:
        ExecPlugin(script, ["get-token", "--login", "azurecli"]).header()
    assert str(info.value) == (
        f"exec plugin `{script} get-token --login azurecli` exited 1: "
        "AADSTS700082: the refresh token has expired")


def test_a_missing_plugin_and_a_bad_credential(tmp_path: Path) -> None:
    with pytest.raises(CredentialPluginFailed, match="command not found: /nonexistent/kubelogin"):
        ExecPlugin("/nonexistent/kubelogin").header()
    script = _script(tmp_path, "print('{\"status\": {}}')\n")
    with pytest.raises(CredentialPluginFailed, match="printed no ExecCredential"):
        ExecPlugin(script).header()
    slow = _script(tmp_path, "import time\ntime.sleep(30)\n")
    with pytest.raises(CredentialPluginFailed, match=r"no credential within 0\.5 s"):
        ExecPlugin(slow, timeout=0.5).header()


def test_a_kubeconfig_with_a_broken_plugin_is_a_usage_error(tmp_path: Path) -> None:
    from pytest_azlinux.cluster.api import load_client
    from pytest_azlinux.errors import TargetsError

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin-missing",
            "args": ["get-token"]}}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    with pytest.raises(TargetsError) as info:
        load_client(str(kubeconfig), None, "target 'canary'")
    assert str(info.value) == (
        f"target 'canary': kubeconfig {kubeconfig}: exec plugin `kubelogin-missing get-token`: "
        "command not found: kubelogin-missing")


def test_an_exec_refused_without_a_reason_names_what_was_attempted() -> None:
    """kube-apiserver v1.37 refuses a websocket exec that has ``get`` but not ``create`` on
    pods/exec with a bare 'is forbidden: ' (recorded on the bed): the caller's attempt is
    named instead."""
    body = ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
            '"pods \\"azl-debug-347cc157-aks-canary-31415926-vmss000000-b1955b\\" is forbidden: ",'
            '"reason":"Forbidden","details":{"name":"azl-debug-347cc157","kind":"pods"},'
            '"code":403}')
    reason = f"Handshake status 403 Forbidden -+-+- {{'content-length': '286'}} -+-+- {body}"
    status, message = api_error(ApiException(status=0, reason=reason))
    err = api_failure("exec in pod azl-rbac/azl-debug-1", status, message,
                      attempted=("create", "pods/exec", "azl-rbac"))
    assert isinstance(err, PermissionDenied)
    assert str(err).startswith(
        "pytest-azlinux needs `create` on `pods/exec` in `azl-rbac`: see `azl cluster rbac`")
    assert type(api_failure("exec", status, message)) is ApiError  # nothing attempted: as is

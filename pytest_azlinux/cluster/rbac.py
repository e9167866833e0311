"""The Kubernetes permissions a run uses, one rule per reason, and the manifests that grant them.

``RULES`` is the one list: ``azl cluster rbac`` prints it as a ClusterRole (cluster-scoped
resources) and a Role in the helper namespace (everything else), with bindings for the
subjects given, and as the table of docs/cluster.md "Permissions". Each rule names the
features that use it; a run that selects fewer features gets fewer rules. The helper
namespace is part of the manifest: made once by whoever applies it (labelled for the Pod
Security level the selected pods need), so runs need no right to create, label or delete
namespaces, and never delete it.

The cluster test bed proves the list both ways (tests/integration/test_cluster_rbac.py): the
suites pass as a service account bound to these roles alone, and each rule removed makes a
run fail naming the missing verb, resource and namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

Feature = Literal["nodes", "debug-pod", "pods", "csi"]
FEATURES: dict[Feature, str] = {
    "nodes": "node discovery and facts, the run's record and cleanup (every run)",
    "debug-pod": "node access through a privileged debug pod per node (access: debug-pod)",
    "pods": "probe pods of suites/cluster: the escape probe per Pod Security profile, pod "
            "network",
    "csi": "the CSI snapshot flow of suites/cluster (storage_class, snapshot_class)",
}
ROLE_NAME = "pytest-azlinux"
SNAPSHOTS = "snapshot.storage.k8s.io"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


@dataclass(frozen=True)
class Rule:
    """One RBAC rule and why a run needs it."""

    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    reason: str
    features: frozenset[Feature]
    group: str = ""  # "" = the core API group
    cluster: bool = False  # cluster-scoped resources (ClusterRole); else the helper namespace
    own_namespace: bool = False  # limited to the helper namespace by name (resourceNames)

    @property
    def key(self) -> str:
        """A short stable name: ``pods/exec:create``, ``volumesnapshots.snapshot...:get``."""
        group = f".{self.group}" if self.group else ""
        return f"{','.join(self.resources)}{group}:{','.join(self.verbs)}"

    def manifest(self, namespace: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"apiGroups": [self.group], "resources": list(self.resources)}
        if self.own_namespace:
            rule["resourceNames"] = [namespace]
        rule["verbs"] = list(self.verbs)
        return rule


def _f(*features: Feature) -> frozenset[Feature]:
    return frozenset(features)


EVERY_RUN = _f("nodes", "debug-pod", "pods", "csi")
POD_USERS = _f("debug-pod", "pods", "csi")
PROBE_PODS = _f("pods", "csi")

RULES: tuple[Rule, ...] = (
    # -- every run --------------------------------------------------------------------------
    Rule(("nodes",), ("list",), "find the pool's nodes by label; read their nodeInfo and labels",
         EVERY_RUN, cluster=True),
    Rule(("namespaces",), ("get",), "read the helper namespace: its Pod Security level, and "
         "whether a run made it", EVERY_RUN, cluster=True, own_namespace=True),
    Rule(("configmaps",), ("create",), "write the run's record (ConfigMap azl-run-<id>: host, "
         "pid, expiry) before anything else", EVERY_RUN),
    Rule(("configmaps",), ("list",), "read other runs' records: sweep killed runs, never "
         "sweep a live one", EVERY_RUN),
    Rule(("configmaps",), ("deletecollection",), "delete the run's record at its end, and "
         "the records of killed runs", EVERY_RUN),
    Rule(("pods",), ("list",), "find the run's pods (and a killed run's) by label, and wait "
         "until they are gone", EVERY_RUN),
    Rule(("pods",), ("deletecollection",), "delete the run's pods at its end in one request "
         "per kind, and a killed run's", EVERY_RUN),
    Rule(("persistentvolumeclaims",), ("list", "deletecollection"), "find and delete, by "
         "label, claims a run made (its own at its end, a killed run's in the sweep)",
         EVERY_RUN),
    Rule(("volumesnapshots",), ("list", "deletecollection"), "find and delete, by label, "
         "snapshots a run made (its own at its end, a killed run's in the sweep)", EVERY_RUN,
         group=SNAPSHOTS),
    # -- pods on the nodes ------------------------------------------------------------------
    Rule(("pods",), ("create", "get"), "create the run's pods pinned to nodes and wait until "
         "they run (debug pods, probe pods)", POD_USERS),
    Rule(("pods/exec",), ("get",), "run commands in those pods (the node shell of a debug "
         "pod, the probes): an exec stream is a websocket GET", POD_USERS),
    Rule(("pods/exec",), ("create",), "the same streams: kube-apiserver also asks for create "
         "on a websocket exec (as for kubectl's POST)", POD_USERS),
    Rule(("pods",), ("delete",), "delete a probe pod when the test that made it ends",
         PROBE_PODS),
    # -- CSI snapshots ----------------------------------------------------------------------
    Rule(("storageclasses",), ("get",), "read the StorageClass: its provisioner, and whether "
         "its volumes hold data", _f("csi"), group="storage.k8s.io", cluster=True),
    Rule(("volumesnapshotclasses",), ("get",), "read the VolumeSnapshotClass: its driver must "
         "be the StorageClass provisioner", _f("csi"), group=SNAPSHOTS, cluster=True),
    Rule(("volumesnapshotcontents",), ("get",), "read the content bound to a snapshot: its "
         "driver, and that it points back at the snapshot", _f("csi"), group=SNAPSHOTS,
         cluster=True),
    Rule(("persistentvolumeclaims",), ("create", "get"), "create a claim (and one restored "
         "from the snapshot) and wait until it is Bound", _f("csi")),
    Rule(("volumesnapshots",), ("create", "get"), "snapshot the claim and wait until the "
         "snapshot is readyToUse", _f("csi"), group=SNAPSHOTS),
)


def rules_for(features: Iterable[Feature]) -> list[Rule]:
    """The rules the ``features`` use (``nodes`` is always in), in ``RULES`` order."""
    selected = {"nodes", *features}
    return [r for r in RULES if r.features & selected]


def pod_security_level(features: Iterable[Feature]) -> str:
    """The helper namespace's Pod Security level: debug pods and the escape probe's
    privileged profile need ``privileged``; CSI mount pods and ``access: ssh`` ``baseline``."""
    return "privileged" if {"debug-pod", "pods"} & set(features) else "baseline"


@dataclass(frozen=True)
class Subjects:
    """Who the roles are bound to: ``namespace/name`` service accounts, users, groups."""

    service_accounts: Sequence[str] = ()
    users: Sequence[str] = ()
    groups: Sequence[str] = ()

    def manifest(self) -> list[dict[str, str]]:
        out = []
        for sa in self.service_accounts:
            ns, _, name = sa.partition("/")
            out.append({"kind": "ServiceAccount", "name": name, "namespace": ns})
        out += [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u}
                for u in self.users]
        out += [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g}
                for g in self.groups]
        return out

    def __bool__(self) -> bool:
        return bool(self.service_accounts or self.users or self.groups)


def manifests(
    namespace: str, features: Iterable[Feature], subjects: Subjects = Subjects(), *,
    without: Iterable[str] = (), with_namespace: bool = True,
) -> list[tuple[dict[str, Any], list[Rule]]]:
    """The objects that grant the run its rules, each with the rules in it (for comments).

    ``without``: rule keys to leave out (the bed proves each one necessary this way)."""
    features = list(features)
    left_out = set(without)
    rules = [r for r in rules_for(features) if r.key not in left_out]
    meta_labels = {"app.kubernetes.io/part-of": "pytest-azlinux"}
    ref = {"apiGroup": "rbac.authorization.k8s.io"}
    out: list[tuple[dict[str, Any], list[Rule]]] = []
    if with_namespace:
        level = pod_security_level(features)
        # Not labelled managed-by: runs treat it as the user's and never relabel or delete it.
        out.append(({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": namespace, "labels": {**meta_labels, PSA_ENFORCE: level,
                                          "pod-security.kubernetes.io/warn": level}}}, []))
    cluster = [r for r in rules if r.cluster]
    local = [r for r in rules if not r.cluster]
    out.append(({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": ROLE_NAME, "labels": meta_labels},
                 "rules": [r.manifest(namespace) for r in cluster]}, cluster))
    out.append(({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": ROLE_NAME, "namespace": namespace, "labels": meta_labels},
                 "rules": [r.manifest(namespace) for r in local]}, local))
    if subjects:
        bound = subjects.manifest()
        out.append(({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": ROLE_NAME, "labels": meta_labels},
                     "roleRef": {**ref, "kind": "ClusterRole", "name": ROLE_NAME},
                     "subjects": bound}, []))
        out.append(({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": ROLE_NAME, "namespace": namespace,
                                  "labels": meta_labels},
                     "roleRef": {**ref, "kind": "Role", "name": ROLE_NAME},
                     "subjects": bound}, []))
    return out


def render_yaml(objects: list[tuple[dict[str, Any], list[Rule]]]) -> str:
    """Multi-document YAML, each rule preceded by a comment with its reason."""
    docs = []
    for body, rules in objects:
        head = {k: v for k, v in body.items() if k != "rules"}
        text = yaml.safe_dump(head, sort_keys=False)
        if "rules" in body:
            text += "rules:\n" if body["rules"] else "rules: []\n"
            for rule, data in zip(rules, body["rules"], strict=True):
                text += f"# {rule.reason} [{_used_by(rule)}]\n"
                item = yaml.safe_dump([data], sort_keys=False, default_flow_style=None)
                text += item
        docs.append(text)
    return "---\n" + "---\n".join(docs)


def render_markdown(namespace: str = "azl-system") -> str:
    """The docs' table: one row per rule of ``RULES`` (every feature)."""
    lines = ["| resources | verbs | where | used by | why |", "| --- | --- | --- | --- | --- |"]
    for r in RULES:
        group = f" ({r.group})" if r.group else ""
        where = "cluster" if r.cluster else f"`{namespace}`"
        if r.own_namespace:
            where = f"`{namespace}` only (resourceNames)"
        lines.append(f"| `{', '.join(r.resources)}`{group} | {', '.join(r.verbs)} | {where} | "
                     f"{_used_by(r, '`')} | {r.reason} |")
    return "\n".join(lines) + "\n"


def _used_by(rule: Rule, quote: str = "") -> str:
    if rule.features == EVERY_RUN:
        return "every run"
    return ", ".join(f"{quote}{f}{quote}" for f in FEATURES if f in rule.features)

"""TEST-BED SIMULATION: kwok's configuration, the stages that play the kubelet and the CSI driver.

- Nodes: made Ready and kept alive (heartbeat) as a kubelet would.
- Pods on simulated nodes: first a kwok ``Exec`` that routes exec into the bound lab host
  (``shims.py``), then Running with the node's address as pod IP (no CNI here).
- The CSI driver and the snapshot controller: a PVC of the bed's StorageClass gets a PV and
  is Bound; a VolumeSnapshot gets a VolumeSnapshotContent and turns readyToUse; deleting
  either releases and deletes what the "driver" made. Status changes only: no data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .manifests import CSI_DRIVER, STORAGE_CLASS
from .shims import podbin


def kwok_config(root: Path) -> list[dict[str, Any]]:
    """kwok configuration: node and pod lifecycles, the per-pod Exec, the CSI simulation."""
    path = f"{podbin(root)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
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

"""Kubernetes node pools as targets: discovery, node facts, debug pods, pod-level helpers.

``target.resolve_cluster_target`` turns a ``kind: cluster`` target into one host per node;
``transport/kube.py`` runs host commands through a privileged debug pod on each node.
"""

"""Fixtures for cluster targets: ``azl_node`` (the node behind ``azl_host``) and
``azl_cluster`` (pods pinned to nodes, labelled with the run id, deleted at teardown).

Both read the target's ``ClusterContext`` from ``azl_target.context``: the value the
target's resolution handed over, never a lookup by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..errors import ClusterError
from ..host import Host
from ..session import SelectedTarget
from ..settings import parse
from .context import ClusterContext
from .nodes import NodeFacts
from .settings import ClusterSettings
from .workloads import ClusterPods


def _context(target: SelectedTarget) -> ClusterContext:
    context = target.context
    if not isinstance(context, ClusterContext):
        raise ClusterError(f"cluster target {target.name} is not resolved in this process")
    return context


@pytest.fixture
def azl_node(azl_host: Host, azl_target: SelectedTarget) -> NodeFacts:
    """The Kubernetes node behind ``azl_host`` (labels, nodeInfo, declared limits); skips on
    hosts that are not nodes."""
    if azl_target.kind != "cluster":
        pytest.skip(f"{azl_host.name} is not a Kubernetes node (target kind {azl_target.kind})")
    return _context(azl_target).node(azl_host.spec.node or azl_host.name)


@pytest.fixture
def azl_cluster(azl_target: SelectedTarget) -> Iterator[ClusterPods]:
    """Pod-level access to a cluster target: pods pinned to nodes, deleted at teardown, and
    the target's ``suites.cluster`` settings (``azl_cluster.settings``)."""
    if azl_target.kind != "cluster":
        pytest.skip(f"target {azl_target.name} is not a cluster (kind {azl_target.kind})")
    settings = parse(ClusterSettings, azl_target.settings("cluster"), azl_target.name)
    pods = ClusterPods(_context(azl_target), settings)
    yield pods
    pods.delete_all()

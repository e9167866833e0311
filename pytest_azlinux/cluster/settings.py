"""The pod-level cluster suites' settings: ``suites.cluster`` of a ``kind: cluster`` target."""

from __future__ import annotations

from pydantic import Field

from ..settings import SuiteSettings
from .api import DEFAULT_BURST, DEFAULT_QPS
from .context import POD_TIMEOUT


class ClusterSettings(SuiteSettings):
    """``suites.cluster``; every field optional."""

    suite = "cluster"

    # pods of every suite
    pod_image: str | None = None  # default: the target's debug_image
    pod_timeout: float = Field(default=POD_TIMEOUT, gt=0)
    # client-side API rate limit of the run (every request and exec stream of the target;
    # a 429's Retry-After is honoured on top): a token bucket, api_qps 0 = unlimited
    api_qps: float = Field(default=DEFAULT_QPS, ge=0)
    api_burst: int = Field(default=DEFAULT_BURST, ge=1)
    # CSI snapshot flow (suites/cluster/test_csi_snapshot.py): not applicable without both
    storage_class: str | None = None
    snapshot_class: str | None = None  # its driver must be the StorageClass provisioner
    snapshot_node: str | None = None  # default: the first node
    volume_size: str = "1Gi"
    snapshot_timeout: float = Field(default=300.0, gt=0)
    # pod network (suites/cluster/test_pod_network.py)
    iperf_image: str | None = None  # must ship iperf3; default: pod_image
    duration: int = Field(default=3, ge=1, le=600)
    repetitions: int = Field(default=2, ge=1, le=20)
    pod_network_tolerance: float = Field(default=0.10, ge=0, lt=1)

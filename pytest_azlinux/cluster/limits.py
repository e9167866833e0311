"""What a node (or a StorageClass) cannot do, as declared by whoever runs it.

Suites ask for a capability, never whether a node is real or simulated: an object annotated
``limits.azl.io/<capability>: <reason>`` cannot do ``<capability>``, and ``<reason>`` says
why, in words fit for a skip message. The cluster test bed declares the limits of its
simulated nodes and of its simulated CSI driver this way; a real AKS node declares none.
"""

from __future__ import annotations

from collections.abc import Mapping

LIMIT_PREFIX = "limits.azl.io/"

RUN_CONTAINERS = "run-containers"  # pods are admitted but no container runs
POD_NETWORK = "pod-network"  # pod IPs are node IPs: pod and host network are one path
VOLUME_DATA = "volume-data"  # volumes are provisioned and snapshotted but hold no data


def limit_annotation(capability: str) -> str:
    """The annotation key that declares ``capability`` missing."""
    return LIMIT_PREFIX + capability


def declared_limits(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """capability -> reason, from an object's annotations."""
    return {
        key.removeprefix(LIMIT_PREFIX): str(reason)
        for key, reason in (annotations or {}).items()
        if key.startswith(LIMIT_PREFIX)
    }

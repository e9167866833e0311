"""The escape probe in pods of each Pod Security profile, pinned to each node.

Settings: ``suites.escape`` (the same model as the host variant, suites/security/
test_escape.py): ``profiles``, ``timeout`` and the probe's arguments.

A profile above the namespace's Pod Security level (privileged where it enforces baseline)
is refused by admission, as it should be: the test skips, quoting the refusal (the probe did
not run). A refusal at or below the namespace's level is an error (the pod is wrong).

Where a node declares that its pods run no container (``cluster/limits.py``; the test bed's
kwok nodes do), the pod is admitted and the probe runs through the exec API, but no verdict
about container isolation is given (the test skips after the API-level part, saying why).
"""

from __future__ import annotations

import pytest

from pytest_azlinux.analyse.escape import PROFILES, probe_script, verdict_for
from pytest_azlinux.cluster.limits import RUN_CONTAINERS
from pytest_azlinux.cluster.nodes import NodeFacts
from pytest_azlinux.cluster.pods import namespace_level
from pytest_azlinux.cluster.workloads import ClusterPods
from pytest_azlinux.containers.settings import EscapeSettings
from pytest_azlinux.errors import PodSecurityRejected

pytestmark = [pytest.mark.azl_cluster, pytest.mark.azl_escape]
LEVELS = ("restricted", "baseline", "privileged")  # Pod Security levels, strictest first


@pytest.mark.parametrize("profile", PROFILES)
def test_escape_probe_in_pod(
    azl_node: NodeFacts, azl_cluster: ClusterPods, azl_escape_settings: EscapeSettings,
    profile: str,
) -> None:
    if profile not in azl_escape_settings.profiles:
        pytest.skip(f"profile {profile} not in suites.escape.profiles")
    args = [f"{k}={v}" for k, v in azl_escape_settings.probe_arguments().items()]
    try:
        pod = azl_cluster.run_pod(azl_node.name, profile, role="escape")  # type: ignore[arg-type]
    except PodSecurityRejected as refused:
        level = namespace_level(azl_cluster.api, azl_cluster.namespace)
        if level in LEVELS and LEVELS.index(profile) > LEVELS.index(level):
            pytest.skip(f"not admitted, as namespace {azl_cluster.namespace} enforces {level}: "
                        f"{refused}")
        raise
    result = azl_cluster.exec(pod.metadata.name, ["sh", "-c", probe_script(), "escape", *args],
                              timeout=max(120.0, azl_escape_settings.timeout))
    verdict = verdict_for(result.stdout, profile, runtime_version=azl_node.runtime[1] or None)
    no_container = azl_node.cannot(RUN_CONTAINERS)
    if no_container:
        pytest.skip(f"node {azl_node.name}: pod admitted and probe ran through the exec API "
                    f"({len(verdict.findings)} checks), but {no_container}: no isolation "
                    "verdict (API-level only)")
    assert verdict.outcome != "fail", verdict.summary()

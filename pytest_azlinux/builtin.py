"""The shipped suites and target kinds, registered through the same hooks a third-party
package implements (``hookspecs.py``): the plugin registers this module as a pytest plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .kinds import BUILTIN, TargetKind
from .suite_table import Suite

SUITES = (
    Suite("image", markers=("azl_image: image posture suite",),
          fixtures="pytest_azlinux.profiles.fixtures",
          settings="pytest_azlinux.profiles.settings:ImageSettings"),
    Suite("network", markers=("azl_network: network throughput suite",),
          fixtures="pytest_azlinux.network.fixtures",
          settings="pytest_azlinux.network.settings:NetworkSettings"),
    Suite("storage", markers=("azl_storage: storage snapshot suite",),
          fixtures="pytest_azlinux.storage.fixtures",
          settings="pytest_azlinux.storage.settings:StorageSettings"),
    Suite("selinux", markers=(
        "azl_selinux: SELinux mode and denial suite",
        "azl_selinux_watch(mode='fail'|'warn'|'ignore'): attach the SELinux denials that "
        "appear on the test's host while it runs to the test (fail, warn or just record)",
    ),
          fixtures="pytest_azlinux.selinux.fixtures",
          settings="pytest_azlinux.selinux.settings:SelinuxSettings"),
    Suite("escape", markers=("azl_escape: container-escape probe suite",),
          fixtures="pytest_azlinux.containers.fixtures",
          settings="pytest_azlinux.containers.settings:EscapeSettings"),
    Suite("cluster", markers=("azl_cluster: needs a cluster target (Kubernetes API)",),
          fixtures="pytest_azlinux.cluster.fixtures",
          settings="pytest_azlinux.cluster.settings:ClusterSettings"),
    Suite("hardening", markers=(
        "azl_hardening: hardening baseline suite (one test per control)",
        "azl_control(id): the hardening control a test checks (waivers: match: {control: ID})",
    ), fixtures="pytest_azlinux.hardening.fixtures",
        settings="pytest_azlinux.hardening.settings:HardeningSettings"),
    # the gate (gate/): its settings sit beside the suites' in a target
    Suite("sentinels", markers=(
        "azl_no_sentinels(*names, reason=...): no sentinel checks for this test (all, or the "
        "named ones: kernel, units, denials)",
    ), settings="pytest_azlinux.gate.settings:SentinelSettings"),
    Suite("reruns", settings="pytest_azlinux.gate.settings:RerunSettings"),
)


@pytest.hookimpl
def pytest_azl_suites() -> Sequence[Suite]:
    return SUITES


@pytest.hookimpl
def pytest_azl_target_kinds() -> Sequence[TargetKind]:
    return BUILTIN

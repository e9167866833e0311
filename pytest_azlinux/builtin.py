"""The shipped suites and target kinds, registered through the same hooks a third-party
package implements (``hookspecs.py``): the plugin registers this module as a pytest plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .kinds import BUILTIN, TargetKind
from .suite_table import Suite


def _shipped(name: str, package: str, model: str, *markers: str,
             live: str | None = None) -> Suite:
    """A shipped suite: fixtures and settings model in ``pytest_azlinux.<package>``."""
    return Suite(name, markers=markers, fixtures=f"pytest_azlinux.{package}.fixtures",
                 settings=f"pytest_azlinux.{package}.settings:{model}", live=live)


SUITES = (
    # the image suite's fixtures: the profile lookup and the posture reads fetched ahead
    Suite("image", markers=("azl_image: image posture suite",),
          fixtures="pytest_azlinux.posture.fixtures",
          settings="pytest_azlinux.profiles.settings:ImageSettings"),
    _shipped("network", "network", "NetworkSettings", "azl_network: network throughput suite",
             live="measures throughput between running hosts"),
    _shipped("storage", "storage", "StorageSettings", "azl_storage: storage snapshot suite",
             live="formats, snapshots and verifies file systems on a running host"),
    _shipped("selinux", "selinux", "SelinuxSettings",
             "azl_selinux: SELinux mode and denial suite",
             "azl_selinux_watch(mode='fail'|'warn'|'ignore'): attach the SELinux denials that "
             "appear on the test's host while it runs to the test (fail, warn or just record)",
             live="reads the running SELinux state and the denials a running host logs"),
    _shipped("escape", "containers", "EscapeSettings",
             "azl_escape: container-escape probe suite",
             live="runs container-escape probes in containers on a running host"),
    _shipped("cluster", "cluster", "ClusterSettings",
             "azl_cluster: needs a cluster target (Kubernetes API)"),
    _shipped("hardening", "hardening", "HardeningSettings",
             "azl_hardening: hardening baseline suite (one test per control)",
             "azl_control(id): the hardening control a test checks (waivers: match: "
             "{control: ID})"),
    # the gate (gate/): its settings sit beside the suites' in a target
    Suite("sentinels", settings="pytest_azlinux.gate.settings:SentinelSettings", markers=(
        "azl_no_sentinels(*names, reason=...): no sentinel checks for this test (all, or the "
        "named ones: kernel, units, denials)",)),
    Suite("reruns", settings="pytest_azlinux.gate.settings:RerunSettings"),
)


@pytest.hookimpl
def pytest_azl_suites() -> Sequence[Suite]:
    return SUITES


@pytest.hookimpl
def pytest_azl_target_kinds() -> Sequence[TargetKind]:
    return BUILTIN

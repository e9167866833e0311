"""Fixtures of the escape suite (registered by the plugin, so users' suites get them too)."""

from __future__ import annotations

import pytest

from ..cleanup import CleanupLedger
from ..errors import SettingsError
from ..host import Host
from ..session import SelectedTarget
from ..settings import parse
from .runc import RuncProbe
from .runtime import detect_runtimes, skip_reason, usable_runc
from .settings import EscapeSettings


@pytest.fixture
def azl_escape_settings(azl_target: SelectedTarget) -> EscapeSettings:
    """The target's ``suites.escape`` settings, validated (host and pod variants alike)."""
    try:
        return parse(EscapeSettings, azl_target.settings("escape"), azl_target.name)
    except SettingsError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture
def azl_escape_runner(
    azl_host: Host, azl_escape_settings: EscapeSettings, azl_cleanup: CleanupLedger
) -> RuncProbe:
    """Starts probe containers on the host with runc; skips when the host has no usable runc."""
    if azl_host.spec.access == "kube":
        pytest.skip(f"{azl_host.name}: a Kubernetes node: the escape probe runs in pods there "
                    "(cluster suite)")
    runtimes = detect_runtimes(azl_host)
    runc = usable_runc(runtimes)
    if runc is None:
        pytest.skip(skip_reason(azl_host.name, runtimes))
    return RuncProbe(
        azl_host, runc=runc.path, runtime_version=runc.version, ledger=azl_cleanup,
        timeout=azl_escape_settings.timeout,
    )

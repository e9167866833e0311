"""The hardening baseline for Azure Linux 3.0: one test per control and host.

Test ids are the control ids (``test_control[AZL-SSH-001-<host>]``); every test carries the
JUnit properties ``azl.control.id``, ``.severity``, ``.level``, ``.references``. The controls
are data (pytest_azlinux/hardening/controls/*.yaml, listed in docs/hardening.md); a host is
read once for all of them. ``--azl-hardening-level 2`` (or ``suites.hardening.level: 2``)
adds the level-2 controls.
"""

from __future__ import annotations

import pytest

from pytest_azlinux.hardening import Control, HostBaseline, check_control, control_params

pytestmark = pytest.mark.azl_hardening


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # here rather than a parametrize mark: it runs before the host parametrization, so the
    # control id comes first in the test id
    if "control" in metafunc.fixturenames:
        metafunc.parametrize("control", control_params())


def test_control(control: Control, azl_hardening: HostBaseline) -> None:
    check_control(azl_hardening, control)

"""SELinux: the mode agrees everywhere and with the image profile; no unexplained denials;
container processes run confined.

Target settings (``suites.selinux``): ``expect_mode``, ``allowlist``, ``window``
(boot | run | all), ``source``, ``audit_log``, ``check_denials`` (auto | always | never),
``watch``, ``container_types``, ``top``. See docs/selinux.md.
"""

from __future__ import annotations

import pytest

from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.selinux.containers import container_processes, read_processes, wrong_domains
from pytest_azlinux.selinux.fixtures import SelinuxHost, record_allowlist, record_collection
from pytest_azlinux.selinux.mode import mode_problems

pytestmark = pytest.mark.azl_selinux


def test_selinux_mode(azl_selinux: SelinuxHost) -> None:
    """Runtime, config file and kernel command line agree, and match the expected mode."""
    readings = azl_selinux.readings
    expected, expected_from = azl_selinux.expected
    problems = mode_problems(readings, expected, expected_from)
    if problems:
        pytest.fail(
            f"{azl_selinux.host.name}: SELinux mode mismatch: {'; '.join(map(str, problems))}\n"
            f"  {readings.describe()}\n  expected: {expected} "
            f"({expected_from})",
            pytrace=False,
        )


def _require_denial_check(selinux: SelinuxHost) -> None:
    """Skip (or fail) where SELinux is off: what the profile expects decides."""
    settings = selinux.settings
    if settings.check_denials == "never":
        pytest.skip("denial checks switched off (suites.selinux.check_denials: never)")
    runtime = selinux.readings.runtime
    if runtime != "disabled" or settings.check_denials == "always":
        return
    expected, expected_from = selinux.expected
    if expected in ("permissive", "enforcing"):
        pytest.fail(
            f"{selinux.host.name}: SELinux is disabled but {expected} is expected "
            f"({expected_from}): denials cannot be logged ({selinux.readings.describe()})",
            pytrace=False,
        )
    pytest.skip(
        f"SELinux disabled on {selinux.host.name} ({selinux.readings.runtime_source}), "
        f"expected {expected} ({expected_from}): no denials to check"
    )


def test_no_unexplained_denials(
    azl_selinux: SelinuxHost, azl_metric: MetricRecorder, request: pytest.FixtureRequest
) -> None:
    """Every AVC / USER_AVC denial and SELINUX_ERR in the window is allowlisted with a reason."""
    _require_denial_check(azl_selinux)
    collection = azl_selinux.collect_window()
    record_collection(request.node, collection)
    groups, verdict = azl_selinux.judge(collection)
    record_allowlist(request.node, verdict)
    azl_metric("selinux_denials", sum(g.count for g in groups), "records", better="lower")
    azl_metric("selinux_denials_unexplained", sum(g.count for g in verdict.unexplained),
               "records", better="lower")
    if verdict.unexplained:
        pytest.fail(azl_selinux.explain(collection, verdict), pytrace=False)


def test_container_domains(azl_selinux: SelinuxHost) -> None:
    """Processes below containerd-shim / conmon run as container_t, not spc_t or unconfined."""
    if azl_selinux.readings.runtime == "disabled":
        pytest.skip(f"SELinux disabled on {azl_selinux.host.name}: no process domains")
    procs = container_processes(read_processes(azl_selinux.host))
    if not procs:
        pytest.skip(f"no container processes on {azl_selinux.host.name}")
    wrong = wrong_domains(procs, azl_selinux.settings.container_types)
    if wrong:
        listing = "\n".join(f"  pid {p.pid} {p.comm}: {p.label}" for p in wrong[:20])
        pytest.fail(
            f"{azl_selinux.host.name}: {len(wrong)} of {len(procs)} container processes run "
            f"outside {', '.join(azl_selinux.settings.container_types)}:\n{listing}",
            pytrace=False,
        )

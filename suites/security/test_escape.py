"""Container escape: what a compromised workload could reach from a container, per profile.

A container is started on each host with runc for each profile (restricted, baseline,
privileged), the escape probe runs inside it (read-only), and its findings are judged for
that profile: a restricted or baseline container with a FAIL finding fails the test, listing
the findings; a privileged container's access is reported as expected.
Settings: ``suites.escape`` (pytest_azlinux.containers.settings), shared with the pod variant;
``timing_repetitions`` probe runs per profile give the run time's repetitions.
"""

from __future__ import annotations

import statistics

import pytest

from pytest_azlinux.analyse.escape import PROFILES, Severity
from pytest_azlinux.containers.runc import RuncProbe
from pytest_azlinux.containers.settings import EscapeSettings
from pytest_azlinux.fixtures import MetricRecorder


@pytest.mark.azl_escape
@pytest.mark.parametrize("profile", PROFILES)
def test_container_escape(
    profile: str,
    azl_escape_runner: RuncProbe,
    azl_escape_settings: EscapeSettings,
    azl_metric: MetricRecorder,
    record_property: pytest.RecordProperty,
) -> None:
    if profile not in azl_escape_settings.profiles:
        pytest.skip(f"profile {profile} not in suites.escape.profiles")
    args = azl_escape_settings.probe_arguments()
    run = azl_escape_runner.run(profile, probe_args=args)  # type: ignore[arg-type]
    verdict = run.verdict
    if verdict.elapsed_ms is not None:
        # the findings are the first run's; later runs only repeat the timing
        times = [verdict.elapsed_ms] + [
            ms for _ in range(azl_escape_settings.timing_repetitions - 1)
            if (ms := azl_escape_runner.run(profile, probe_args=args).verdict.elapsed_ms)  # type: ignore[arg-type]
            is not None]
        azl_metric("escape_probe_ms", statistics.median(times), "ms", better="lower",
                   samples=times)
    record_property("escape.outcome", verdict.outcome)
    for finding in verdict.with_severity(Severity.FAIL, Severity.WARN, Severity.EXPECTED):
        record_property(f"escape.{finding.check}", finding.severity.value)
    print(verdict.summary())  # shown with -rP, kept in the JUnit system-out
    changed = run.changes()
    assert not changed, "the probe changed files outside its temp dir:\n  " + "\n  ".join(changed)
    if verdict.outcome == "fail":
        pytest.fail(verdict.summary(), pytrace=False)

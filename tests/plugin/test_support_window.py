"""``test_image_supported`` end to end: the shipped suite file run (pytester subprocesses)
against a ``local`` target whose profile is named, on days set with ``--azl-today``."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist")
SUITE = Path(__file__).parent.parent.parent / "suites" / "image" / "test_support.py"
NODE = "suites/image/test_support.py::test_image_supported[localhost]"


def setup(pytester: pytest.Pytester, profile: str, waivers: str = "") -> None:
    target = pytester.path / "suites" / "image"
    target.mkdir(parents=True)
    (target / "test_support.py").write_text(SUITE.read_text())
    pytester.makefile(".yaml", **{"azl-targets": (
        f"targets:\n  here:\n    kind: local\n    profile: {profile}\n")})
    if waivers:
        pytester.makefile(".yaml", **{"azl-waivers": waivers})


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*RUN, "--azl-target=here", "-rA",
                                         "--azl-junit-dir=reports", "suites", *args,
                                         timeout=300)


def case_props(pytester: pytest.Pytester) -> dict[str, str]:
    (path,) = (pytester.path / "reports").glob("*.xml")
    (case,) = [c for c in ET.parse(path).getroot().iter("testcase")
               if c.get("name", "").startswith("test_image_supported")]
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_past_the_end_fails_in_one_line_naming_date_and_successor(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester, "aks-node-osguard")
    result = run(pytester, "--azl-today=2026-12-11")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # the verdict at the end of the terminal output holds the whole line, with no traceback
    verdict = result.outlines[result.outlines.index(
        next(line for line in result.outlines if "azl verdict" in line)):]
    (line,) = [row.strip() for row in verdict if row.startswith(f"    {NODE}: ")]
    assert line.startswith(f"{NODE}: image ")
    assert "(profile aks-node-osguard): out of support since 2026-12-10" in line
    assert "(images to be removed 2027-03-10)" in line
    assert line.endswith("move to AKS node running Azure Container Linux (profile aks-node-acl)")
    out = result.stdout.str()
    assert "Traceback" not in out and "def test_image_supported" not in out
    assert any(row.startswith(f"FAILED {NODE} - ") for row in result.outlines)
    props = case_props(pytester)
    assert props["azl.support.state"] == "ended"
    assert props["azl.support.ends"] == "2026-12-10"
    assert props["azl.support.successor"] == "aks-node-acl"


def test_within_30_days_passes_with_a_warning_and_a_property(pytester: pytest.Pytester) -> None:
    setup(pytester, "azl-3.0-osguard")
    result = run(pytester, "--azl-today=2026-12-07")
    assert result.ret == pytest.ExitCode.OK, result.outlines
    result.assert_outcomes(passed=1, warnings=1)
    out = result.stdout.str()
    assert "SupportEndingWarning" in out
    assert "support ends 2026-12-10, in 3 days" in out
    assert "move to Azure Container Linux 3.0 (profile acl-3.0)" in out
    assert case_props(pytester)["azl.support.state"] == "ending"


def test_well_before_the_end_passes_quietly(pytester: pytest.Pytester) -> None:
    setup(pytester, "azl-3.0-osguard")
    result = run(pytester, "--azl-today=2026-09-01", "-W", "error::UserWarning")
    assert result.ret == pytest.ExitCode.OK, result.outlines
    result.assert_outcomes(passed=1)
    assert case_props(pytester)["azl.support.state"] == "supported"


def test_ini_day_and_no_window_is_a_skip_saying_so(pytester: pytest.Pytester) -> None:
    setup(pytester, "azl-3.0")
    pytester.makeini("[pytest]\nazl_today = 2030-01-01\n")
    result = run(pytester)
    result.assert_outcomes(skipped=1)
    assert ("not applicable: no support window known: profile azl-3.0 sets no support_ends"
            in result.stdout.str())


def test_an_ini_day_is_overridden_by_the_option(pytester: pytest.Pytester) -> None:
    setup(pytester, "mariner-2.0")
    pytester.makeini("[pytest]\nazl_today = 2025-01-01\n")
    before = run(pytester)
    before.assert_outcomes(passed=1)  # 2025-01-01: 333 days before the end
    after = run(pytester, "--azl-today=2026-12-07")
    after.assert_outcomes(failed=1)
    assert "out of support since 2025-11-30 (images removed 2026-03-31)" in after.stdout.str()


def test_out_of_support_is_waivable_like_any_finding(pytester: pytest.Pytester) -> None:
    setup(pytester, "mariner-2.0", waivers=(
        "waivers:\n"
        "  - match: \"*suites/image/test_support.py::test_image_supported\"\n"
        "    reason: migration to Azure Linux 3.0 booked for January\n"
        f"    expires: {dt.date.today() + dt.timedelta(days=30)}\n"))
    result = run(pytester, "--azl-today=2026-12-07")
    assert result.ret == pytest.ExitCode.OK, result.outlines
    out = result.stdout.str()
    assert "migration to Azure Linux 3.0 booked for January" in out
    assert "FAILED" not in out and "WAIVED 1" in out


@pytest.mark.parametrize("value", ["2026-13-01", "tomorrow", "2026-1-5"])
def test_a_bad_day_is_a_usage_error_in_one_line(pytester: pytest.Pytester, value: str) -> None:
    setup(pytester, "azl-3.0")
    result = run(pytester, f"--azl-today={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "azl-today" in line]
    assert errors == [f"ERROR: --azl-today: expected a date YYYY-MM-DD, got {value!r}"
                      + (errors[0].split(f"{value!r}", 1)[1] if errors else "")]
    assert "Traceback" not in result.stderr.str()


def test_a_bad_ini_day_names_the_ini_value(pytester: pytest.Pytester) -> None:
    setup(pytester, "azl-3.0")
    pytester.makeini("[pytest]\nazl_today = 07/12/2026\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: ini azl_today: expected a date YYYY-MM-DD, got '07/12/2026'" in (
        result.stderr.str())

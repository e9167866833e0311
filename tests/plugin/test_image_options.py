"""The image options without booting anything: capabilities, usage errors (runs without root).

Each test runs a real pytest in a subprocess (pytester) against this machine.
"""

from __future__ import annotations

import pytest

from pytest_azlinux.report.junit import read_cases

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
TESTS = """
import pytest

@pytest.mark.azl_image
def test_posture(azl_host):
    pass

@pytest.mark.azl_selinux
def test_denials(azl_host):
    pass

def test_unmarked(azl_host):
    pass
"""


def test_capabilities_skip_suites_the_image_cannot_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest_subprocess(
        *RUN, "--azl-target=local", "--azl-capabilities", "machine-bootable,container", "-rs",
        "--azl-junit-dir", str(pytester.path / "reports"),
    )  # fmt: skip
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines([
        "*test_x.py:*: not applicable: the suite needs capability systemd; the image has "
        "container, machine-bootable",
    ])  # fmt: skip
    _, records = read_cases(next((pytester.path / "reports").glob("*.xml")))
    outcomes = {r.name: (r.outcome, r.message) for r in records}
    assert outcomes["test_denials[localhost]"][0] == "skipped"
    assert "needs capability systemd" in outcomes["test_denials[localhost]"][1]


def test_no_capability_declared_skips_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local", "--azl-capabilities", "")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--azl-target=local", "--azl-capabilities", "bootable"),
      "ERROR: --azl-capabilities: unknown capability 'bootable' (known: machine-bootable, "
      "container, systemd, runtime-package-management)"),
     (("--azl-target=local", "--azl-image-profile", "azl-3.0"),
      "ERROR: --azl-image-profile: needs --azl-image PATH"),
     (("--azl-image", "/nowhere/disk.vhd"),
      "ERROR: target 'image': field 'path': no such file: /nowhere/disk.vhd")],
)  # fmt: skip
def test_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest_subprocess(*RUN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.errlines, result.errlines

"""The image suite's package checks through pytest, on this machine (Debian: dpkg, no
``/usr/share/os-manifests``): the package list comes from dpkg and findings say so; a
profile whose ``package_source`` is ``spdx`` makes them an ERROR naming the manifest
directory, never "not installed".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pytest_azlinux.packages.sources import MANIFEST_DIR
from pytest_azlinux.report.junit import read_cases

SUITE = Path(__file__).resolve().parents[2] / "suites" / "image"
SPDX_PROFILE = """\
name: spdx-image
extends: azl-3.0
description: an image that keeps its packages in SPDX manifests
expect:
  package_source: {value: spdx, source: "ACL lists its packages in SPDX manifests"}
"""

pytestmark = pytest.mark.skipif(
    Path(MANIFEST_DIR).exists() or shutil.which("dpkg-query") is None,
    reason=f"needs a Debian machine without {MANIFEST_DIR}",
)


def _run(pytester: pytest.Pytester, profile: str) -> dict[str, tuple[str, str]]:
    for name in ("test_packages.py", "test_lsm.py"):
        shutil.copy(SUITE / name, pytester.path / name)
    profiles = pytester.path / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "spdx-image.yaml").write_text(SPDX_PROFILE)
    targets = pytester.path / "azl-targets.yaml"
    targets.write_text(yaml.safe_dump({"targets": {"here": {
        "kind": "local", "profile": profile,
        "suites": {"image": {"profiles_dir": str(profiles)}},
    }}}))  # fmt: skip
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--azl-target=here", f"--azl-targets-file={targets}",
        f"--azl-junit-dir={reports}", "-k", "package_versions or apparmor", timeout=300,
    )
    (report,) = reports.glob("*.xml")  # the per-image report: one image here
    cases = read_cases(report)[1]
    assert cases, result.stdout.str()
    return {c.name: (c.outcome, c.message) for c in cases}


def test_package_findings_say_the_list_came_from_dpkg(pytester: pytest.Pytester) -> None:
    results = _run(pytester, "azl-3.0")
    outcome, message = results["test_package_versions[localhost]"]
    assert outcome == "failed"  # Debian's openssl 3.0 and runc 1.1.5 are below azl-3.0's
    assert "packages.openssl: expected openssl >= 3.3, found 3.0." in message
    assert " (dpkg)" in message


def test_a_profile_that_says_spdx_without_manifests_is_an_error(
    pytester: pytest.Pytester,
) -> None:
    results = _run(pytester, "spdx-image")
    for test in ("test_package_versions[localhost]", "test_apparmor_matches_profile[localhost]"):
        outcome, message = results[test]
        assert outcome == "error", (test, message)
        assert "the profile's package_source is spdx" in message
        assert f"SPDX package manifests in {MANIFEST_DIR}" in message
        assert "not installed" not in message

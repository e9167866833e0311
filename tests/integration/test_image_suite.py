"""The image posture suite end to end, through pytest, against lab hosts of several variants.

Lab hosts (tests/fixtures/lab.py: azl3, azl3-hwe, mariner2) carry real Azure Linux /
CBL-Mariner identity files but share this machine's Debian kernel and userland. So identity,
SELinux mode (off here) and AppArmor (absent) can pass; kernel release, FIPS and anything
that needs the real image's kernel fail, and must fail with the profile's expectation and
source. Forcing a profile through the targets file's ``profile:`` shows the mismatch path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pytest_azlinux.lab import Lab
from tests.fixtures.junit import junit_outcomes
from tests.fixtures.lab import lab_targets_with

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "image"


def _copy_suite(pytester: pytest.Pytester) -> None:
    dest = pytester.path / "image"
    dest.mkdir()
    for path in SUITE.glob("*.py"):
        shutil.copy(path, dest / path.name)


def _run(pytester: pytest.Pytester, targets: Path, *args: str) -> dict[str, tuple[str, str]]:
    """Run the suite; ``{test id: (outcome, message)}`` from its JUnit XML."""
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "--azl-target", "lab", "--azl-targets-file", str(targets),
        "--azl-junit-dir", str(pytester.path / "reports"), "-p", "no:cacheprovider",
        f"--junitxml={junit}", "-rfEs", *args, timeout=300,
    )
    assert junit.exists(), result.stdout.str()
    return junit_outcomes(junit)


def _host(lab: Lab, variant: str) -> str:
    return next(h.name for h in lab.hosts if h.variant == variant)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    _copy_suite(pytester)
    return pytester


def _without_profiles(targets: Path) -> Path:
    """The lab pins each variant's profile; without the pins the profile is detected."""
    data = yaml.safe_load(targets.read_text())
    for host in data["targets"]["lab"]["hosts"]:
        host.pop("profile", None)
    targets.write_text(yaml.safe_dump(data))
    return targets


def test_detected_profiles_pass_where_the_lab_matches(suite: pytest.Pytester, lab: Lab) -> None:
    results = _run(suite, _without_profiles(lab_targets_with(lab, suite.path)))
    azl3, hwe, mariner = (_host(lab, v) for v in ("azl3", "azl3-hwe", "mariner2"))
    for host in (azl3, hwe, mariner):
        # the identity files are real; the lab's kernel has SELinux and AppArmor off
        assert results[f"test_os_release_matches_profile[{host}]"][0] == "passed"
        assert results[f"test_release_files_agree[{host}]"][0] == "passed"
        assert results[f"test_selinux_mode[{host}]"][0] == "passed"
        assert results[f"test_apparmor_matches_profile[{host}]"][0] == "passed"
        outcome, message = results[f"test_usr_verity[{host}]"]
        assert outcome == "skipped" and "has no verity" in message
    # the shared Debian kernel is no .azl3 / 5.15 kernel: a finding with expected vs found
    outcome, message = results[f"test_kernel_flavour_and_release[{azl3}]"]
    assert outcome == "failed"
    assert "kernel_release: expected uname -r matching \\.azl3$" in message
    assert "source: uname -r = <version>-<release>.azl3" in message
    outcome, message = results[f"test_kernel_flavour_and_release[{mariner}]"]
    assert outcome == "failed" and "profile mariner-2.0 (detected ID=mariner" in message
    # three variants in one target: one image per target fails unless mixing is allowed
    outcome, message = results["test_one_image_per_target[lab]"]
    assert outcome == "failed" and "3 images" in message


def test_forced_profiles_fail_with_the_right_message(suite: pytest.Pytester, lab: Lab) -> None:
    azl3, hwe, mariner = (_host(lab, v) for v in ("azl3", "azl3-hwe", "mariner2"))
    targets = lab_targets_with(
        lab, suite.path,
        host_profiles={mariner: "azl3", azl3: "azl-3.0-fips", hwe: "aks-node-3.0"},
        expect={"image_version": "3.0.20251021", "allow_mixed_images": True},
    )
    results = _run(suite, targets)
    outcome, message = results[f"test_os_release_matches_profile[{mariner}]"]
    assert outcome == "failed"
    assert "profile azl-3.0 (named in the targets file)" in message
    assert "os_id: expected azurelinux, found mariner" in message
    outcome, message = results[f"test_expected_image_version[{mariner}]"]
    assert outcome == "failed" and "expected 3.0.20251021, found 2.0." in message
    assert results[f"test_expected_image_version[{azl3}]"][0] == "passed"
    # FIPS profile on a kernel without FIPS or SELinux
    outcome, message = results[f"test_selinux_mode[{azl3}]"]
    assert outcome == "failed"
    assert "selinux.runtime: expected permissive, found runtime=disabled" in message
    assert "FIPS, core-efi-selinux, full and OVA configs set permissive" in message
    outcome, message = results[f"test_fips_enabled[{azl3}]"]
    assert outcome == "failed" and "fips.fips_enabled: expected 1" in message
    outcome, message = results[f"test_openssl_fips_provider[{azl3}]"]
    assert outcome == "failed" and "an active fips or symcrypt provider" in message
    # AKS node from 202511 expects AppArmor enabled: the lab's kernel has none
    outcome, message = results[f"test_apparmor_matches_profile[{hwe}]"]
    assert outcome == "failed"
    assert "AppArmor not enabled; profile aks-node-3.0 expects it" in message
    assert "AgentBaker PR #7261" in message
    outcome, message = results[f"test_package_versions[{hwe}]"]
    assert outcome == "failed" and "packages.containerd2: expected containerd2 installed" in message
    assert "(dpkg)" in message  # the lab's Debian userland answers through dpkg-query
    outcome, message = results["test_one_image_per_target[lab]"]
    assert outcome == "skipped" and "allows mixed images" in message


def test_user_profile_directory_from_the_target(suite: pytest.Pytester, lab: Lab) -> None:
    """A user profile (``suites.image.profiles_dir``) extends ours and fits the lab kernel."""
    profiles = suite.path / "my-profiles"
    profiles.mkdir()
    (profiles / "lab-azl3.yaml").write_text(
        "extends: azl-3.0\n"
        "expect:\n"
        "  kernel_flavour: null\n"
        "  kernel_release: {value: '.', source: 'lab hosts share the machine kernel'}\n"
    )
    azl3 = _host(lab, "azl3")
    targets = lab_targets_with(
        lab, suite.path, host_profiles={azl3: "lab-azl3"},
        suites={"image": {"profiles_dir": str(profiles)}},
    )
    results = _run(suite, targets, "-k", "kernel_flavour or os_release")
    assert results[f"test_kernel_flavour_and_release[{azl3}]"][0] == "passed"
    assert results[f"test_os_release_matches_profile[{azl3}]"][0] == "passed"
    # a broken user profile: an ERROR naming file and field, not a traceback
    (profiles / "lab-azl3.yaml").write_text("extends: azl-3.0\nexpect:\n  selinux: {value: on}\n")
    results = _run(suite, targets, "-k", "os_release")
    outcome, message = results[f"test_os_release_matches_profile[{azl3}]"]
    assert outcome == "error"
    assert "lab-azl3.yaml: field 'expect.selinux.value'" in message

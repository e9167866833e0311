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
      "ERROR: target 'image': field 'path': no such file: /nowhere/disk.vhd"),
     (("--azl-image", "/nowhere/disk.vhd", "--azl-image-provisioning", "butane"),
      "ERROR: --azl-image: target 'image': field 'provisioning': Input should be 'auto', "
      "'cloud-init' or 'ignition'"),
     (("--azl-image", "/nowhere/disk.vhd", "--azl-image-firmware", "secureboot"),
      "ERROR: --azl-image: target 'image': field 'firmware': Input should be 'bios', 'uefi' or "
      "'uefi-secureboot'"),
     (("--azl-image", "/nowhere/disk.vhd", "--azl-image-user", "Core Admin"),
      "ERROR: --azl-image: target 'image': field 'user': not a user name: 'Core Admin'"),
     (("--azl-target=local", "--azl-image-tpm"), "ERROR: --azl-image-tpm: needs --azl-image PATH")],
)  # fmt: skip
def test_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest_subprocess(*RUN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.errlines, result.errlines


@pytest.mark.parametrize(
    ("fields", "text", "message"),
    [({"provisioning": "ignition", "ignition": "mine.ign"}, "{not json",
      "target 'image': field 'ignition': mine.ign: not JSON (line 1: Expecting property "
      "name enclosed in double quotes); an Ignition config is JSON (Butane YAML must be "
      "translated with butane first)"),
     ({"provisioning": "cloud-init", "ignition": "mine.ign"}, "{}",
      "azl-targets.yaml: target 'image': field 'ignition': an Ignition config needs "
      "provisioning: ignition or auto"),
     ({"firmware": "uefi", "secure_boot_vars": "vars.fd"}, "{}",
      "azl-targets.yaml: target 'image': field 'secure_boot_vars': needs firmware: "
      "uefi-secureboot (the vars file holds its keys)")],
)  # fmt: skip
def test_ignition_and_firmware_fields_are_checked_before_anything_boots(
    pytester: pytest.Pytester, fields: dict[str, str], text: str, message: str
) -> None:
    """Usage errors of the targets file, one line, exit 4 (no root, no qemu needed: the
    image is a real but empty qcow2)."""
    import subprocess

    import yaml

    pytester.makepyfile(test_x=TESTS)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "disk.qcow2", "1M"],
                   cwd=pytester.path, check=True)  # fmt: skip
    (pytester.path / "mine.ign").write_text(text)
    target = {"kind": "image", "path": "disk.qcow2", **fields}
    (pytester.path / "azl-targets.yaml").write_text(
        yaml.safe_dump({"targets": {"image": target}}))
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=image")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [ln for ln in result.errlines if ln]
    assert line.startswith("ERROR: ") and line.endswith(message), line

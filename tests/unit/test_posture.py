"""Pure posture checks on realistic command output (Azure Linux 3.0, OS Guard, Debian lab)."""

from __future__ import annotations

import pytest

from pytest_azlinux.facts import parse_facts
from pytest_azlinux.packages.inventory import Inventory, parse_dpkg, parse_rpm
from pytest_azlinux.packages.versions import rpmvercmp, version_at_least
from pytest_azlinux.posture.findings import format_findings
from pytest_azlinux.posture.fips import check_fips_enabled, check_fips_provider, parse_providers
from pytest_azlinux.posture.identity import (
    check_expected_version,
    check_one_image,
    check_profile_identity,
    check_release_files_agree,
)
from pytest_azlinux.posture.kernel import check_cmdline, check_kernel, cmdline_has
from pytest_azlinux.posture.lsm import AppArmorEvidence, check_apparmor, check_lsm, parse_lsm
from pytest_azlinux.posture.osguard import (
    check_ipe,
    check_usr_readonly,
    check_verity,
    parse_mounts,
    parse_veritysetup_status,
)
from pytest_azlinux.posture.packages import check_packages
from pytest_azlinux.posture.selinux import check_selinux_consistent, check_selinux_mode
from pytest_azlinux.posture.sshd import (
    check_client_alive_interval,
    check_sshd_presence,
    parse_sshd_config,
    parse_sshd_t,
)
from pytest_azlinux.profiles import Profile, load_profiles
from pytest_azlinux.selinux.mode import selinux_state

AZL3_FACTS = """==> /etc/os-release
NAME="Microsoft Azure Linux"
VERSION="3.0.20251021"
ID=azurelinux
VERSION_ID="3.0"
PRETTY_NAME="Microsoft Azure Linux 3.0"
==> /etc/azurelinux-release
Azure Linux 3.0
AZURELINUX_BUILD_NUMBER=3.0.20251021
==> /etc/lsb-release
DISTRIB_ID="azurelinux"
DISTRIB_RELEASE="3.0.20251021"
DISTRIB_CODENAME=AzureLinux
DISTRIB_DESCRIPTION="Azure Linux 3.0"
==> uname
6.6.104.2-4.azl3
x86_64
==> cmdline
BOOT_IMAGE=/boot/vmlinuz-6.6.104.2-4.azl3 root=PARTUUID=1 ro selinux=0 rd.auto=1 console=ttyS0
==> hostname
vm-3-0
"""

PROVIDERS_DEFAULT = """Providers:
  default
    name: OpenSSL Default Provider
    version: 3.3.3
    status: active
"""
PROVIDERS_SYMCRYPT = """Providers:
  default
    name: OpenSSL Default Provider
    version: 3.3.3
    status: active
  symcryptprovider
    name: SymCrypt Provider
    version: 1.9.0
    status: active
"""
VERITY_ACTIVE = """/dev/mapper/usr is active and is in use.
  type:        VERITY
  status:      verified
  hash type:   1
  data block:  4096
  hash block:  4096
  hash name:   sha256
  salt:        6c1e
  data device: /dev/sda3
  size:        2097152 sectors
  mode:        readonly
  hash device: /dev/sda4
  hash offset: 8 sectors
  root hash:   0e7b5c
"""
MOUNTS_OSGUARD = """/dev/sda5 / ext4 rw,relatime 0 0
/dev/mapper/usr /usr ext4 ro,relatime 0 0
securityfs /sys/kernel/security securityfs rw,nosuid,nodev,noexec,relatime 0 0
"""
MOUNTS_DEBIAN = """/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
"""


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    ps = load_profiles()
    return {n: ps.get(n) for n in ps.names()}


def test_identity_agrees_on_real_azl3_files(profiles: dict[str, Profile]) -> None:
    facts = parse_facts(AZL3_FACTS)
    assert check_profile_identity(facts, profiles["azl-3.0"]) == []
    assert check_release_files_agree(facts) == []
    assert check_expected_version(facts, "3.0.20251021") == []
    [f] = check_expected_version(facts, "3.0.20251109")
    assert (f.expected, f.found) == ("3.0.20251109", "3.0.20251021")


def test_identity_disagreement_and_wrong_profile(profiles: dict[str, Profile]) -> None:
    text = AZL3_FACTS.replace('DISTRIB_RELEASE="3.0.20251021"', 'DISTRIB_RELEASE="3.0.20250910"')
    text = text.replace("AZURELINUX_BUILD_NUMBER=3.0.20251021\n", "")
    facts = parse_facts(text)
    found = {f.check: f for f in check_release_files_agree(facts)}
    assert found["identity./etc/azurelinux-release"].found == "no AZURELINUX_BUILD_NUMBER"
    assert found["identity./etc/lsb-release"].found == "DISTRIB_RELEASE=3.0.20250910"
    wrong = check_profile_identity(facts, profiles["mariner-2.0"])
    assert [f.check for f in wrong] == ["os_id", "version"]
    assert wrong[0].source.startswith("CBL-Mariner 2.0")


def test_one_image_per_target() -> None:
    assert check_one_image({"a": "azurelinux-3.0.20251021", "b": "azurelinux-3.0.20251021"}) == []
    [f] = check_one_image({"a": "azurelinux-3.0.20251021", "b": "mariner-2.0.20240609"})
    assert "2 images" in f.found and "mariner-2.0.20240609: b" in f.found


def test_kernel_flavour_and_cmdline(profiles: dict[str, Profile]) -> None:
    facts = parse_facts(AZL3_FACTS)
    assert check_kernel(facts, profiles["azl-3.0"]) == []
    [f] = check_kernel(facts, profiles["azl-3.0-hwe"])
    assert f.expected == "hwe" and "6.6.104.2-4.azl3" in f.found
    assert check_cmdline(facts, profiles["azl-3.0"]) == []
    fips = {f.check: f for f in check_cmdline(facts, profiles["azl-3.0-fips"])}
    assert "missing fips=1" in fips["cmdline_present"].found
    assert fips["cmdline_absent"].found.startswith("selinux=0 in:")


def test_cmdline_items() -> None:
    cmdline = ("ro", "selinux=0", "lockdown=integrity", "quiet")
    assert cmdline_has(cmdline, "selinux=0")
    assert not cmdline_has(cmdline, "selinux=1")
    assert cmdline_has(cmdline, "lockdown=")
    assert not cmdline_has(cmdline, "fips=")
    assert cmdline_has(cmdline, "quiet") and cmdline_has(cmdline, "lockdown")


def test_fips(profiles: dict[str, Profile]) -> None:
    fips = profiles["azl-3.0-fips"]
    assert check_fips_enabled("1\n", fips) == []
    [f] = check_fips_enabled("0\n", fips)
    assert (f.expected, f.found) == ("1", "0")
    assert check_fips_enabled(None, profiles["azl-3.0"]) == []
    assert check_fips_enabled("1", profiles["azl-3.0"])[0].expected == "0"
    assert [p.id for p in parse_providers(PROVIDERS_SYMCRYPT)] == ["default", "symcryptprovider"]
    assert check_fips_provider(PROVIDERS_SYMCRYPT, fips) == []
    [f] = check_fips_provider(PROVIDERS_DEFAULT, fips)
    assert f.found == "default (active)"
    inactive = PROVIDERS_SYMCRYPT.replace(
        "1.9.0\n    status: active", "1.9.0\n    status: inactive"
    )
    assert check_fips_provider(inactive, fips)


def test_verity_and_usr(profiles: dict[str, Profile]) -> None:
    og = profiles["azl-3.0-osguard"]
    status = parse_veritysetup_status(VERITY_ACTIVE)
    assert status.active and status.in_use and status.fields["mode"] == "readonly"
    assert check_verity(VERITY_ACTIVE, og) == []
    [f] = check_verity(VERITY_ACTIVE.replace("verified", "corrupted"), og)
    assert (f.check, f.found) == ("verity.usr.status", "corrupted")
    [f] = check_verity("/dev/mapper/usr is inactive.\n", og)
    assert f.found == "/dev/mapper/usr is inactive."
    assert check_usr_readonly(MOUNTS_OSGUARD, og) == []
    [f] = check_usr_readonly(MOUNTS_DEBIAN, og)
    assert f.found == "no /usr mount (part of /)"
    rw = check_usr_readonly(MOUNTS_OSGUARD.replace("usr ext4 ro,", "usr ext4 rw,"), og)
    assert rw[0].expected == "/usr mounted ro"
    assert parse_mounts("/dev/sdb /mnt/a\\040b ext4 rw 0 0\n")[0].mountpoint == "/mnt/a b"


def test_ipe(profiles: dict[str, Profile]) -> None:
    og = profiles["azl-3.0-osguard"]
    assert check_ipe("osguard_policy 1\n", og) == []
    assert check_ipe("osguard_policy 0\n", og)[0].found == "osguard_policy (inactive)"
    assert "IPE not active" in check_ipe(None, og)[0].found


def test_lsm_lists(profiles: dict[str, Profile]) -> None:
    lab_kernel = parse_lsm("lockdown,capability,landlock,bpf\n")
    findings = {f.check: f for f in check_lsm(lab_kernel, profiles["azl-3.0-fips"])}
    assert "missing yama,selinux" in findings["lsm_include"].found
    azl = parse_lsm("capability,landlock,lockdown,yama,loadpin,safesetid,integrity,ipe")
    assert check_lsm(azl, profiles["azl-3.0"]) == []
    [f] = check_lsm([*azl, "selinux"], profiles["azl-3.0"])
    assert f.check == "lsm_exclude" and "has selinux" in f.found


def test_apparmor_both_ways(profiles: dict[str, Profile]) -> None:
    nothing = AppArmorEvidence(module_enabled="N", lsm_active=False, service_active="inactive")
    assert check_apparmor(nothing, profiles["azl-3.0"]) == []
    installed = AppArmorEvidence(packages={"apparmor-parser": "3.1.7-1.azl3"})
    [f] = check_apparmor(installed, profiles["azl-3.0"])
    message = format_findings([f], "azl-3.0")
    assert "AppArmor artifacts present; not part of profile azl-3.0" in message
    assert "package apparmor-parser 3.1.7-1.azl3" in message
    assert "source: SPECS/apparmor" in message
    enabled = AppArmorEvidence(
        module_enabled="Y",
        lsm_active=True,
        service_active="active",
        packages={"apparmor-parser": "3.1.7-1.azl3"},
    )
    assert enabled.state == "enabled"
    assert check_apparmor(enabled, profiles["aks-node-3.0"]) == []
    [f] = check_apparmor(nothing, profiles["aks-node-3.0"])
    assert "AppArmor not enabled; profile aks-node-3.0 expects it" in f.summary
    assert "apparmor.service active (found inactive)" in f.summary


def test_selinux_mode_and_consistency(profiles: dict[str, Profile]) -> None:
    # marketplace 3.0: selinux=0 on the command line, selinux-policy %post wrote permissive
    azl = selinux_state(None, None, "SELINUX=permissive\nSELINUXTYPE=targeted\n", ("selinux=0",))
    assert azl.runtime == "disabled" and azl.configured == "disabled"
    assert check_selinux_mode(azl, profiles["azl-3.0"]) == []
    assert check_selinux_consistent(azl, profiles["azl-3.0"]) == []
    # FIPS image: permissive at run time and in config
    fips = selinux_state("0\n", None, "SELINUX=permissive\n", ())
    assert check_selinux_mode(fips, profiles["azl-3.0-fips"]) == []
    [f] = check_selinux_mode(fips, profiles["azl-3.0-osguard-ci"])
    assert f.expected == "enforcing" and "runtime=permissive (/sys/fs/selinux/enforce=0)" in f.found
    # the lab: Debian's config says permissive, the shared kernel has no SELinux active
    lab = selinux_state(None, "Disabled\n", "SELINUX=permissive\n", ())
    assert check_selinux_mode(lab, profiles["azl-3.0"]) == []
    [f] = check_selinux_consistent(lab, profiles["azl-3.0"])
    assert "they ask for permissive" in f.found
    # enforcing=0 on the command line overrides an enforcing config
    overridden = selinux_state("0", None, "SELINUX=enforcing", ("enforcing=0",))
    assert overridden.configured == "permissive"


def test_sshd(profiles: dict[str, Profile]) -> None:
    effective = parse_sshd_t("port 22\nclientaliveinterval 120\nclientalivecountmax 3\n")
    assert check_client_alive_interval(effective, "sshd -T", profiles["azl-3.0"]) == []
    [f] = check_client_alive_interval({"clientaliveinterval": "0"}, "sshd -T", profiles["azl-3.0"])
    assert f.found == "0 (sshd -T)" and "lisa" in f.source
    config = parse_sshd_config(
        "# ClientAliveInterval 999\nClientAliveInterval 180\nClientAliveInterval 5\n"
        "Match User x\nClientAliveInterval 1\n"
    )
    assert config["clientaliveinterval"] == "180"
    assert check_client_alive_interval({}, "/etc/ssh/sshd_config", profiles["azl-3.0"])
    assert check_sshd_presence("/usr/sbin/sshd", True, profiles["azl-3.0"]) == []
    [f] = check_sshd_presence("/usr/sbin/sshd", True, profiles["azl-3.0-osguard"])
    assert f.expected == "no sshd running" and "debug pod" in f.source


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.1.12", "1.1.12", 0),
        ("1.1.5", "1.1.12", -1),
        ("1.2.0", "1.1.12", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("2.0a", "2.0", 1),
        ("1.1.5+ds1", "1.1.12", -1),
        ("3.3.3", "3.3", 1),
        ("5.15", "5.15.0", -1),
        ("a", "1", -1),
    ],
)
def test_rpmvercmp(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected
    assert rpmvercmp(b, a) == -expected


def test_version_at_least() -> None:
    assert version_at_least("1.2.5-3.azl3", "1.1.12")
    assert not version_at_least("1.1.5+ds1-1+deb12u1", "1.1.12")  # Debian backport: see docs
    assert version_at_least("1:9.2p1-2+deb12u10", "9.2")
    assert version_at_least("2.0.0-7.azl3", "2.0")
    assert not version_at_least("2.0.0-7.azl3", "2.0.0-8.azl3")
    assert not version_at_least("2.0", "1:1.0")


def test_package_rules_on_rpm_and_dpkg_inventories(profiles: dict[str, Profile]) -> None:
    rpm_out = (
        "runc\t1.2.5-3.azl3\tx86_64\ncontainerd2\t2.0.0-14.azl3\tx86_64\n"
        "openssl\t1:3.3.3-2.azl3\tx86_64\ngpg-pubkey\t3135ce90-5e6fda74\t(none)\n"
    )
    rpm = Inventory.of("rpm", parse_rpm(rpm_out))
    assert rpm.versions(["runc", "containerd2", "openssl", "gpg-pubkey"]) == {
        "runc": "1.2.5-3.azl3",
        "containerd2": "2.0.0-14.azl3",
        "openssl": "1:3.3.3-2.azl3",
    }
    aks = profiles["aks-node-3.0"]
    [f] = [f for f in check_packages(rpm, aks) if f.check == "packages.apparmor-parser"]
    assert f.found == "not installed (rpm database)"
    assert check_packages(rpm, profiles["azl-3.0"]) == []
    dpkg_out = (
        "runc\t1.1.5+ds1-1+deb12u1\tamd64\tii \nopenssl\t3.0.19-1~deb12u2\tamd64\tii \n"
        "apparmor\t3.0.8-3\tamd64\trc \n"
    )
    deb = Inventory.of("dpkg", parse_dpkg(dpkg_out))
    assert deb.versions(["runc", "openssl", "apparmor"]) == {
        "runc": "1.1.5+ds1-1+deb12u1", "openssl": "3.0.19-1~deb12u2"
    }
    checks = {f.check: f for f in check_packages(deb, profiles["azl-3.0"])}
    assert checks["packages.runc"].expected == "runc >= 1.1.12"
    assert checks["packages.runc"].found == "1.1.5+ds1-1+deb12u1 (dpkg)"
    assert "CVE-2024-21626" in checks["packages.runc"].source


def test_selinux_implied_mode_honours_security_and_lsm_options() -> None:
    apparmor_boot = ["root=/dev/vda", "security=apparmor", "apparmor=1"]
    assert selinux_state(None, None, "SELINUX=permissive\n", apparmor_boot).configured == "disabled"
    lsm_without = ["lsm=landlock,lockdown,yama,apparmor"]
    assert selinux_state(None, None, "SELINUX=enforcing\n", lsm_without).configured == "disabled"
    lsm_with = ["lsm=landlock,selinux", "enforcing=1"]
    assert selinux_state("1", None, "SELINUX=permissive\n", lsm_with).configured == "enforcing"

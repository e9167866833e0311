"""Image profiles: loading errors, extends, user directories, selection from facts/labels."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pytest_azlinux.errors import AzlError, TargetsError
from pytest_azlinux.facts import ImageFacts, parse_facts
from pytest_azlinux.profiles import (
    ProfileError,
    detect_profile_name,
    dirs_from_env,
    load_profiles,
    select_profile,
)

AZL3_OS_RELEASE = """NAME="Microsoft Azure Linux"
VERSION="3.0.20251021"
ID=azurelinux
VERSION_ID="3.0"
PRETTY_NAME="Microsoft Azure Linux 3.0"
ANSI_COLOR="1;34"
HOME_URL="https://aka.ms/azurelinux"
"""
MARINER_OS_RELEASE = """NAME="Common Base Linux Mariner"
VERSION="2.0.20240609"
ID=mariner
VERSION_ID="2.0"
PRETTY_NAME="CBL-Mariner/Linux"
"""


def facts(os_release: str, kernel: str, cmdline: str = "", extra: str = "") -> ImageFacts:
    text = (
        f"==> /etc/os-release\n{os_release}{extra}\n==> uname\n{kernel}\nx86_64\n"
        f"==> cmdline\n{cmdline}\n==> hostname\nvm1\n"
    )
    return parse_facts(text)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


# --- the shipped profiles -------------------------------------------------------------


def test_every_shipped_profile_resolves_with_sources() -> None:
    profiles = load_profiles()
    names = profiles.names()
    for wanted in (
        "azl-3.0",
        "azl-3.0-hwe",
        "azl-3.0-fips",
        "azl-3.0-osguard",
        "azl-3.0-osguard-ci",
        "azl-3.0-baremetal",
        "aks-node-3.0-pre-202511",
        "aks-node-3.0",
        "mariner-2.0",
        "acl-3.0",
        "acl-3.0-fips",
        "aks-node-acl",
        "aks-node-acl-fips",
        "aks-node-osguard",
        "azl-4.0",
        "azl-4.0-fips",
    ):
        assert wanted in names
    for profile in profiles.all():
        for field in ("os_id", "version", "selinux", "apparmor", "fips", "verity_usr", "ipe"):
            assert profile.source(field) != "not set in this profile", (profile.name, field)
        for rule in profile.packages:
            assert rule.source
        if profile.successor is not None:  # a successor is a profile one can move to
            assert profile.successor in profiles, (profile.name, profile.successor)
        if profile.removed_on is not None:
            assert profile.support_ends is not None and profile.removed_on > profile.support_ends


def test_shipped_expectations_follow_the_reference() -> None:
    p = load_profiles()
    assert p.get("azl-3.0").selinux == "disabled"
    assert "selinux=0" in p.get("azl-3.0").cmdline_present
    assert p.get("azl-3.0-fips").selinux == "permissive"
    assert p.get("azl-3.0-fips").fips is True
    assert p.get("azl-3.0-hwe").kernel_flavour == "hwe"
    assert p.get("azl-3.0-osguard").selinux == "permissive"
    assert p.get("azl-3.0-osguard-ci").selinux == "enforcing"
    assert p.get("azl-3.0-osguard").verity_usr and p.get("azl-3.0-osguard").ipe
    assert p.get("azl-3.0-osguard").sshd is False
    assert p.get("azl-3.0-baremetal").selinux == "enforcing"
    assert p.get("aks-node-3.0-pre-202511").apparmor == "absent"
    assert p.get("aks-node-3.0").apparmor == "enabled"
    runc = p.get("aks-node-3.0").package("runc")
    assert runc is not None and runc.min == "1.1.12" and runc.required
    assert "CVE-2024-21626" in p.get("aks-node-3.0").source("packages.runc")
    assert p.get("mariner-2.0").os_id == "mariner"


def test_new_images_follow_their_sources() -> None:
    p = load_profiles()
    acl = p.get("acl-3.0")
    assert (acl.selinux, acl.selinux_policy, acl.ipe_mode) == ("enforcing", "targeted", "off")
    assert acl.secure_boot and acl.tpm and acl.uki and acl.usrhash
    assert acl.verity_usr and acl.verity_ab and acl.immutable
    assert acl.sysexts == ("containerd",) and acl.package_source == "spdx" and acl.sshd
    assert acl.fips is False and p.get("acl-3.0-fips").fips is True
    assert p.get("aks-node-acl").module_blacklist == "required"
    assert p.get("aks-node-acl-fips").fips is True
    osguard = p.get("aks-node-osguard")
    assert osguard.chain[:2] == ("aks-node-osguard", "azl-3.0-osguard")
    assert osguard.module_blacklist == "required" and osguard.uki and osguard.fips
    assert p.get("aks-node-3.0").module_blacklist == "forbidden"
    assert p.get("azl-3.0").module_blacklist is None  # AgentBaker's rule is for AKS nodes
    four = p.get("azl-4.0")
    assert (four.selinux, four.apparmor, four.package_source) == ("enforcing", "absent", "rpm")
    assert four.kernel_flavour is None  # not verifiable: left unset, the description says so
    assert "kernel flavour" in four.description
    assert p.get("azl-4.0-fips").package("dracut-fips") is not None


def test_support_windows_are_the_announced_dates() -> None:
    p = load_profiles()
    for name in ("azl-3.0-osguard", "azl-3.0-osguard-ci", "aks-node-osguard"):
        osguard = p.get(name)
        assert (osguard.support_ends, osguard.removed_on) == (date(2026, 12, 10), date(2027, 3, 10))
        assert "Azure/AKS#5950" in osguard.source("support_ends")
    assert p.get("azl-3.0-osguard").successor == "acl-3.0"
    assert p.get("aks-node-osguard").successor == "aks-node-acl"
    mariner = p.get("mariner-2.0")
    assert mariner.support_ends == date(2025, 11, 30) and mariner.successor == "azl-3.0"
    assert "Azure/AKS#4988" in mariner.source("support_ends")
    for name in ("azl-3.0", "acl-3.0", "aks-node-acl", "azl-4.0"):
        assert p.get(name).support_ends is None  # no end announced


def test_aliases_and_abstract() -> None:
    p = load_profiles()
    assert p.get("azl3").name == "azl-3.0"
    assert p.get("mariner2").name == "mariner-2.0"
    assert "azl-3.0-base" not in p.names()
    assert "azl-3.0-base" in p.names(include_abstract=True)


def test_profile_is_frozen() -> None:
    profile = load_profiles().get("azl-3.0")
    with pytest.raises(Exception, match="frozen"):
        profile.selinux = "enforcing"


# --- extends and user directories -----------------------------------------------------


def test_user_profile_extends_ours_and_merges_packages(tmp_path: Path) -> None:
    write(
        tmp_path,
        "ours-plus",
        """
extends: azl-3.0
expect:
  selinux: {value: permissive, source: "our fleet runs permissive (ticket 12)"}
  packages:
    runc: {min: "1.2.0", required: true, source: "our floor"}
    openssl: null
""",
    )
    profile = load_profiles([tmp_path]).get("ours-plus")
    assert profile.chain == ("ours-plus", "azl-3.0", "azl-3.0-base")
    assert profile.selinux == "permissive"
    assert profile.source("selinux") == "our fleet runs permissive (ticket 12)"
    assert profile.apparmor == "absent"  # inherited
    assert profile.source("apparmor").startswith("SPECS/apparmor")
    runc = profile.package("runc")
    assert runc is not None and runc.min == "1.2.0" and runc.required
    assert profile.package("openssl") is None  # dropped with null
    assert profile.package("containerd2") is not None  # inherited


def test_user_directory_overrides_by_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        "azl-3.0",
        """
extends: azl-3.0-base
description: local override
expect:
  selinux: {value: enforcing, source: "hardened"}
""",
    )
    assert load_profiles([tmp_path]).get("azl-3.0").selinux == "enforcing"
    assert load_profiles().get("azl-3.0").selinux == "disabled"  # cache keyed by dirs


def test_dirs_from_env() -> None:
    assert dirs_from_env({"AZL_PROFILES_DIR": "/a:/b"}) == ["/a", "/b"]
    assert dirs_from_env({}) == []


# --- loading errors: one line naming the file and the field ---------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "expect:\n  selinux: {value: permissive}\n",
            "field 'expect.selinux.source': every expectation needs a 'source:' note",
        ),
        ("expect:\n  selinux: {value: on, source: x}\n", "field 'expect.selinux.value'"),
        (
            "expect:\n  apparmor: {value: maybe, source: x}\n",
            "field 'expect.apparmor.value': Input should be 'absent', 'installed' or 'enabled'",
        ),
        (
            "expect:\n  version: {value: '3.0.(', source: x}\n",
            "field 'expect.version': not a valid regular expression",
        ),
        (
            "expect:\n  sshd_client_alive_interval: {value: [300, 10], source: x}\n",
            "range [300, 10] is empty",
        ),
        (
            "expect:\n  selinx: {value: disabled, source: x}\n",
            "field 'expect.selinx': Extra inputs are not permitted",
        ),
        ("expect: [1, 2\n", "invalid YAML"),
        ("- just a list\n", "a profile must be a mapping"),
        ("expect:\n  packages:\n    runc: {min: 1.1.12}\n", "field 'expect.packages.runc.source'"),
    ],
)
def test_loading_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad", text)
    with pytest.raises(ProfileError) as exc:
        load_profiles([tmp_path]).get("bad")
    assert str(path) in str(exc.value)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "child", "extends: azl-9.9\n")
    with pytest.raises(ProfileError, match=r"field 'extends': unknown profile 'azl-9.9'") as exc:
        load_profiles([tmp_path]).get("child")
    assert str(path) in str(exc.value)


def test_extends_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a", "extends: b\n")
    write(tmp_path, "b", "extends: a\n")
    with pytest.raises(ProfileError, match=r"cycle a -> b -> a"):
        load_profiles([tmp_path]).get("a")


def test_missing_required_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "thin",
        """
expect:
  os_id: {value: azurelinux, source: x}
  version: {value: '^3', source: x}
""",
    )
    with pytest.raises(ProfileError, match=r"field 'expect.selinux' is required") as exc:
        load_profiles([tmp_path]).get("thin")
    assert str(path) in str(exc.value)


def test_missing_directory_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profiles directory does not exist"):
        load_profiles([tmp_path / "nope"])
    with pytest.raises(ProfileError, match=r"host h1: unknown profile 'azl-9.9' \(known: "):
        load_profiles().get("azl-9.9", wanted_by="host h1")


def test_profile_error_is_an_azl_error() -> None:
    assert issubclass(ProfileError, TargetsError) and issubclass(ProfileError, AzlError)


# --- selection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_release", "kernel", "cmdline", "labels", "expected"),
    [
        (AZL3_OS_RELEASE, "6.6.104.2-4.azl3", "selinux=0 console=ttyS0", {}, "azl-3.0"),
        (AZL3_OS_RELEASE, "6.12.50.2-1.azl3", "selinux=0", {}, "azl-3.0-hwe"),
        (AZL3_OS_RELEASE, "6.6.104.2-4.azl3", "fips=1", {}, "azl-3.0-fips"),
        (AZL3_OS_RELEASE, "6.12.50.2-1.azl3", "fips=1", {}, "azl-3.0-hwe-fips"),
        (
            AZL3_OS_RELEASE + "VARIANT_ID=osguard\n",
            "6.6.104.2-4.azl3",
            "fips=1",
            {},
            "azl-3.0-osguard",
        ),
        (
            AZL3_OS_RELEASE + "VARIANT_ID=osguard-ci\n",
            "6.6.104.2-4.azl3",
            "fips=1",
            {},
            "azl-3.0-osguard-ci",
        ),
        (AZL3_OS_RELEASE + "VARIANT_ID=marketplace-gen2\n", "6.6.104.2-4.azl3", "", {}, "azl-3.0"),
        (MARINER_OS_RELEASE, "5.15.158.2-1.cm2", "", {}, "mariner-2.0"),
        (
            AZL3_OS_RELEASE,
            "6.6.150.1-1.azl3",
            "",
            {"kubernetes.azure.com/node-image-version": "AKSAzureLinux-V3gen2-202511.07.0"},
            "aks-node-3.0",
        ),
        (
            AZL3_OS_RELEASE,
            "6.6.150.1-1.azl3",
            "",
            {"kubernetes.azure.com/node-image-version": "AKSAzureLinux-V3gen2-202510.21.0"},
            "aks-node-3.0-pre-202511",
        ),
        (
            AZL3_OS_RELEASE,
            "6.6.150.1-1.azl3",
            "fips=1",
            {
                "kubernetes.azure.com/node-image-version": "AKSAzureLinux-V3gen2fips-202512.18.0",
                "kubernetes.azure.com/fips_enabled": "true",
            },
            "aks-node-3.0-fips",
        ),
        (
            AZL3_OS_RELEASE,
            "6.6.150.1-1.azl3",
            "",
            {
                "kubernetes.azure.com/node-image-version": "AKSAzureLinux-V3-202509.01.0",
                "kubernetes.azure.com/fips_enabled": "true",
            },
            "aks-node-3.0-pre-202511-fips",
        ),
        (
            MARINER_OS_RELEASE,
            "5.15.158.2-1.cm2",
            "",
            {"kubernetes.azure.com/node-image-version": "AKSCBLMariner-V2gen2-202404.01.0"},
            "mariner-2.0",
        ),
    ],
)
def test_detection(
    os_release: str, kernel: str, cmdline: str, labels: dict[str, str], expected: str
) -> None:
    name, reason = detect_profile_name(facts(os_release, kernel, cmdline), labels)
    assert name == expected
    assert reason
    load_profiles().get(name)  # every detected name exists


DATA = Path(__file__).parent.parent / "data" / "os-release"
ACL_OS_RELEASE = (DATA / "acl-3.0.20260706.os-release").read_text()
OSGUARD_OS_RELEASE = (DATA / "azurelinux-3.0-osguard.os-release").read_text()
# Azure Linux 4.0: the fields its own image tests assert (ID, VERSION_ID; microsoft/azurelinux
# base/images/tests/cases/static/test_os_release.py). Not a verbatim file: none is public.
AZL4_OS_RELEASE = 'NAME="Azure Linux"\nID=azurelinux\nVERSION_ID="4.0"\n'


def _acl_with_id(os_id: str) -> str:
    """The shipped ACL os-release with the ID an earlier ACL build reported (AgentBaker
    docs/acl-build-issues.md: 'ACL reports ID=acl')."""
    return ACL_OS_RELEASE.replace("ID=azurelinux\n", f"ID={os_id}\n")


NODE = "kubernetes.azure.com/node-image-version"


@pytest.mark.parametrize(
    ("os_release", "cmdline", "labels", "expected"),
    [
        (ACL_OS_RELEASE, "usrhash=ab12", {}, "acl-3.0"),
        (ACL_OS_RELEASE, "fips=1", {}, "acl-3.0-fips"),
        (_acl_with_id("acl"), "", {}, "acl-3.0"),
        (_acl_with_id("azurecontainerlinux"), "", {}, "acl-3.0"),
        (OSGUARD_OS_RELEASE, "fips=1 ipe.enforce=0", {}, "azl-3.0-osguard"),
        (AZL4_OS_RELEASE, "console=ttyS0 earlyprintk=ttyS0 rd.shell=0", {}, "azl-4.0"),
        (AZL4_OS_RELEASE, "console=ttyS0 fips=1 rd.shell=0", {}, "azl-4.0-fips"),
        # node image versions as AKS spells them
        (ACL_OS_RELEASE, "", {NODE: "AKSAzureContainerLinux-202606.01.0"}, "aks-node-acl"),
        (ACL_OS_RELEASE, "", {NODE: "AKSAzureLinux-aclgen2TL-202609.23.0"}, "aks-node-acl"),
        (ACL_OS_RELEASE, "", {NODE: "AKSAzureLinux-aclgen2fipsTL-202609.23.0"},
         "aks-node-acl-fips"),
        (ACL_OS_RELEASE, "", {NODE: "AKSAzureContainerLinux-202606.01.0",
                              "kubernetes.azure.com/fips_enabled": "true"}, "aks-node-acl-fips"),
        (OSGUARD_OS_RELEASE, "fips=1", {NODE: "AKSAzureLinux-OSGuardV3gen2fipsTL-202512.18.0"},
         "aks-node-osguard"),
        (MARINER_OS_RELEASE, "", {NODE: "AKSAzureLinux-V2gen2-202512.18.0"}, "mariner-2.0"),
    ],
)
def test_detection_of_the_new_images(
    os_release: str, cmdline: str, labels: dict[str, str], expected: str
) -> None:
    name, reason = detect_profile_name(facts(os_release, "6.6.143.1-1.azl3", cmdline), labels)
    assert name == expected
    assert reason
    load_profiles().get(name)


def test_acl_is_told_from_azure_linux_3_by_variant_not_id() -> None:
    acl = facts(ACL_OS_RELEASE, "6.6.143.1-1.azl3")
    assert acl.os_id == "azurelinux"  # the same ID as Azure Linux 3.0
    selected = select_profile(load_profiles(), acl)
    assert selected.name == "acl-3.0"
    assert "VARIANT_ID=azurecontainerlinux" in selected.reason
    assert acl.image_key == "azurelinux-3.0.20260706-azurecontainerlinux"


def test_detection_reason_names_what_was_seen() -> None:
    selected = select_profile(
        load_profiles(), facts(AZL3_OS_RELEASE, "6.12.50.2-1.azl3", "selinux=0")
    )
    assert selected.name == "azl-3.0-hwe"
    assert "ID=azurelinux VERSION_ID=3.0" in selected.reason
    assert "6.12.50.2-1.azl3" in selected.reason


def test_named_profile_wins_over_detection() -> None:
    selected = select_profile(
        load_profiles(), facts(MARINER_OS_RELEASE, "5.15.158.2-1.cm2"), named="azl3"
    )
    assert selected.name == "azl-3.0"
    assert selected.reason == "named in the targets file"


def test_no_profile_for_other_distributions() -> None:
    debian = facts('ID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n', "6.1.0-18-amd64")
    with pytest.raises(ProfileError, match=r"no image profile matches ID=debian VERSION_ID=12"):
        select_profile(load_profiles(), debian)


def test_bad_node_image_label() -> None:
    with pytest.raises(ProfileError, match="is not of the form"):
        detect_profile_name(
            facts(AZL3_OS_RELEASE, "6.6.1-1.azl3"),
            {"kubernetes.azure.com/node-image-version": "something-else"},
        )

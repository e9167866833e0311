"""ImageFacts parsing on the real identity files of Azure Linux 3.0 and CBL-Mariner 2.0."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.facts import FACTS_SCRIPT, ImageFacts, kernel_series, parse_facts
from pytest_azlinux.transport.local import LocalTransport

DATA = Path(__file__).parent.parent / "data" / "os-release"
AZL3_CMDLINE = (
    "BOOT_IMAGE=/boot/vmlinuz-6.6.104.2-4.azl3 root=PARTUUID=0f3e6b6e-01 ro "
    "selinux=1 enforcing=0 security=selinux console=ttyS0 fips=0 lockdown=integrity"
)


def facts_output(prefix: str, kernel: str, cmdline: str, extra: dict[str, str]) -> str:
    """What FACTS_SCRIPT prints on such a host (same section markers, same order)."""
    parts = [f"==> /etc/os-release\n{(DATA / f'{prefix}.os-release').read_text()}\n"]
    for path, suffix in extra.items():
        parts.append(f"==> {path}\n{(DATA / f'{prefix}.{suffix}').read_text()}\n")
    parts.append(f"==> uname\n{kernel}\nx86_64\n==> cmdline\n{cmdline}\n==> hostname\nnode-1\n")
    return "".join(parts)


def azl3(kernel: str = "6.6.104.2-4.azl3", cmdline: str = AZL3_CMDLINE) -> ImageFacts:
    return parse_facts(facts_output("azurelinux-3.0", kernel, cmdline, {
        "/etc/azurelinux-release": "azurelinux-release", "/etc/lsb-release": "lsb-release",
    }))


def mariner2() -> ImageFacts:
    return parse_facts(facts_output("mariner-2.0", "5.15.164.1-1.cm2", "ro quiet", {
        "/etc/mariner-release": "mariner-release", "/etc/lsb-release": "lsb-release",
    }))


def test_azure_linux_3_identity() -> None:
    f = azl3()
    assert (f.os_id, f.version, f.version_id) == ("azurelinux", "3.0.20251021", "3.0")
    assert f.name == "Microsoft Azure Linux"
    assert f.pretty_name == "Microsoft Azure Linux 3.0"
    assert f.build_number == "3.0.20251021"
    assert f.lsb_release == "3.0.20251021"
    assert f.variant_id is None and f.variant_name == "default"
    assert f.image_key == "azurelinux-3.0.20251021"
    assert (f.kernel, f.arch, f.hostname) == ("6.6.104.2-4.azl3", "x86_64", "node-1")
    assert f.os_release["HOME_URL"] == "https://aka.ms/azurelinux"
    assert set(f.release_files) == {"/etc/azurelinux-release", "/etc/lsb-release"}


def test_mariner_2_identity() -> None:
    f = mariner2()
    assert (f.os_id, f.version, f.version_id) == ("mariner", "2.0.20230811", "2.0")
    assert f.pretty_name == "CBL-Mariner/Linux"
    assert f.build_number == "c5977a5"  # a commit on 2.0, not the date
    assert f.lsb_release == "2.0.20230811"
    assert f.image_key == "mariner-2.0.20230811"
    assert f.kernel_flavour == "default"


def test_variant_goes_into_the_image_key() -> None:
    text = facts_output("azurelinux-3.0", "6.6.104.2-4.azl3", "", {}).replace(
        'SUPPORT_URL="https://aka.ms/azurelinux"',
        'SUPPORT_URL="https://aka.ms/azurelinux"\nVARIANT="OS Guard"\nVARIANT_ID=osguard',
    )
    f = parse_facts(text)
    assert (f.variant, f.variant_id) == ("OS Guard", "osguard")
    assert f.image_key == "azurelinux-3.0.20251021-osguard"
    assert f.variant_name == "osguard"


@pytest.mark.parametrize(
    ("kernel", "flavour"),
    [
        ("6.6.104.2-4.azl3", "default"),
        ("6.12.50.2-1.azl3", "hwe"),
        ("6.6.137.mshv2-1.azl3", "mshv"),
        ("6.6.104.2-4.azl3.rt", "rt"),
    ],
)
def test_kernel_flavour(kernel: str, flavour: str) -> None:
    assert azl3(kernel=kernel).kernel_flavour == flavour


def test_kernel_6_12_on_mariner_is_not_hwe() -> None:
    f = parse_facts(facts_output("mariner-2.0", "6.12.1-1.cm2", "", {}))
    assert f.kernel_flavour == "default"
    assert kernel_series("6.12.50.2-1.azl3") == (6, 12)
    assert kernel_series("garbage") == (0, 0)


def test_cmdline_values() -> None:
    f = azl3(cmdline=AZL3_CMDLINE + " enforcing=1 quiet")
    assert f.cmdline_value("selinux") == "1"
    assert f.cmdline_value("enforcing") == "1"  # the last one wins, as the kernel does
    assert f.cmdline_value("root") == "PARTUUID=0f3e6b6e-01"
    assert f.cmdline_value("quiet") == ""  # present without a value
    assert f.cmdline_value("ro") == ""
    assert f.cmdline_value("apparmor") is None


def test_prose_version_falls_back_to_version_id() -> None:
    text = '==> /etc/os-release\nID=debian\nVERSION="12 (bookworm)"\nVERSION_ID="12"\n' \
        "==> uname\n6.1.0-18-amd64\nx86_64\n"
    f = parse_facts(text)
    assert (f.version, f.image_key) == ("12", "debian-12")


def test_missing_os_release_gives_unknown_not_a_crash() -> None:
    f = parse_facts("==> uname\n6.6.1\nx86_64\n")
    assert f.os_id == "unknown" and f.image_key == "unknown-unknown"


def test_facts_script_runs_for_real_and_parses() -> None:
    """FACTS_SCRIPT on this machine through the local transport: the real round trip."""
    result = LocalTransport().run(FACTS_SCRIPT, timeout=30)
    assert result.rc == 0
    f = parse_facts(result.stdout)
    expected_id = next(
        line.split("=", 1)[1].strip('"')
        for line in Path("/etc/os-release").read_text().splitlines()
        if line.startswith("ID=")
    )
    assert f.os_id == expected_id
    assert f.kernel == Path("/proc/sys/kernel/osrelease").read_text().strip()
    assert f.cmdline == tuple(Path("/proc/cmdline").read_text().split())


# The AKS labels of an Azure Linux 3.0 node: os-sku as the pool was created, os-sku-effective
# the versioned SKU (AKS reserved labels: learn.microsoft.com/azure/aks/use-labels; the values
# AzureLinux / AzureLinux3 as Azure/karpenter-provider-azure and the AKS OSSku enum name them).
AKS_LABELS = {
    "agentpool": "canary",
    "kubernetes.azure.com/node-image-version": "AKSAzureLinux-V3gen2-202611.08.0",
    "kubernetes.azure.com/os-sku": "AzureLinux",
    "kubernetes.azure.com/os-sku-effective": "AzureLinux3",
    "kubernetes.azure.com/os-sku-requested": "AzureLinux",
}


def test_node_labels_name_the_node_image_and_os_sku() -> None:
    facts = azl3().with_node_labels(AKS_LABELS)
    assert facts.node_image_version == "AKSAzureLinux-V3gen2-202611.08.0"
    assert (facts.os_sku, facts.os_sku_effective, facts.os_sku_requested) == (
        "AzureLinux", "AzureLinux3", "AzureLinux")
    assert facts.image_key == azl3().image_key  # the OS image groups reports, not the node image
    bare = azl3().with_node_labels({"agentpool": "canary"})  # not an AKS node: nothing invented
    assert (bare.node_image_version, bare.os_sku, bare.os_sku_effective) == (None, None, None)

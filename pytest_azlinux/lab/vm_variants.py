"""The VM variants: kernel command line, disk layout and the Azure Linux identity each carries.

Pure data. Every variant boots the same Debian bookworm userland and kernel; what differs is
the kernel command line (which LSM, enforcing or not, ``fips=1``), the disk layout (``verity``
puts /usr on a dm-verity device) and the identity files written into the instance, so facts,
profiles and per-image reports treat the VM as the Azure Linux image it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import AzlError

Layout = Literal["base", "verity"]
AZL_VERSION = "3.0.20251021"


@dataclass(frozen=True)
class VmVariant:
    """One kind of lab VM."""

    name: str
    layout: Layout
    cmdline: tuple[str, ...]
    stands_for: str  # the Azure Linux image this VM imitates (for people)
    variant_id: str | None  # VARIANT_ID in os-release (None: a plain image)
    variant: str | None = None
    profile: str | None = None  # image profile to name in the targets file (None: detect)
    expect: Mapping[str, str] = field(default_factory=dict)  # posture the VM really has

    def identity_files(self) -> dict[str, str]:
        """Identity files (path -> text) as on the Azure Linux image (azure-linux.md)."""
        os_release = [
            'NAME="Microsoft Azure Linux"',
            f'VERSION="{AZL_VERSION}"',
            "ID=azurelinux",
            'VERSION_ID="3.0"',
            'PRETTY_NAME="Microsoft Azure Linux 3.0"',
            'ANSI_COLOR="1;34"',
            'HOME_URL="https://aka.ms/azurelinux"',
            'BUG_REPORT_URL="https://aka.ms/azurelinux"',
            'SUPPORT_URL="https://aka.ms/azurelinux"',
        ]
        if self.variant_id:
            os_release.append(f'VARIANT="{self.variant or self.variant_id}"')
            os_release.append(f'VARIANT_ID="{self.variant_id}"')
        return {
            "etc/os-release": "\n".join(os_release) + "\n",
            "etc/azurelinux-release": f"Azure Linux 3.0\nAZURELINUX_BUILD_NUMBER={AZL_VERSION}\n",
            "etc/lsb-release": (
                'DISTRIB_ID="azurelinux"\n'
                f'DISTRIB_RELEASE="{AZL_VERSION}"\n'
                "DISTRIB_CODENAME=AzureLinux\n"
                'DISTRIB_DESCRIPTION="Azure Linux 3.0"\n'
            ),
        }


_SELINUX = ("security=selinux", "selinux=1")
VARIANTS: dict[str, VmVariant] = {
    v.name: v
    for v in (
        VmVariant(
            name="selinux-enforcing",
            layout="base",
            cmdline=(*_SELINUX, "enforcing=1"),
            stands_for="Azure Linux 3.0 baremetal / OS Guard CI (SELinux enforcing)",
            variant_id="baremetal",
            variant="Baremetal",
            expect={"selinux": "enforcing", "lsm": "selinux", "fips": "0", "verity": "no"},
        ),
        VmVariant(
            name="selinux-permissive",
            layout="base",
            cmdline=(*_SELINUX, "enforcing=0"),
            stands_for="Azure Linux 3.0 core-efi-selinux (SELinux permissive, as FIPS/OS Guard)",
            variant_id="core-efi-selinux",
            expect={"selinux": "permissive", "lsm": "selinux", "fips": "0", "verity": "no"},
        ),
        VmVariant(
            name="apparmor",
            layout="base",
            cmdline=("security=apparmor", "apparmor=1"),
            stands_for="AKS Azure Linux 3.0 node, node image 202511 (AppArmor enabled)",
            variant_id="aks-node",
            variant="AKS node",
            profile="aks-node-3.0",  # AKS profiles are chosen by node label; a VM has none
            expect={"selinux": "disabled", "lsm": "apparmor", "fips": "0", "verity": "no"},
        ),
        VmVariant(
            name="fips",
            layout="base",
            cmdline=(*_SELINUX, "enforcing=0", "fips=1"),
            stands_for="Azure Linux 3.0 marketplace-gen2-fips (fips=1, SELinux permissive)",
            variant_id="fips",
            variant="FIPS",
            expect={"selinux": "permissive", "lsm": "selinux", "fips": "1", "verity": "no"},
        ),
        VmVariant(
            name="verity",
            layout="verity",
            cmdline=(*_SELINUX, "enforcing=0", "fips=1"),
            stands_for="Azure Linux 3.0 OS Guard (dm-verity /usr, fips=1, SELinux permissive)",
            variant_id="osguard",
            variant="OS Guard",
            expect={"selinux": "permissive", "lsm": "selinux", "fips": "1", "verity": "usr"},
        ),
    )
}


def get_variant(name: str) -> VmVariant:
    """The variant called ``name``; a one-line error listing the known ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise AzlError(f"unknown VM variant {name!r} (known: {known})") from None

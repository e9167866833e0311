"""The VM variants: kernel command line, disk layout and the Azure Linux identity each carries.

Pure data. Every variant boots the same Debian bookworm userland and kernel; what differs is
the kernel command line (which LSM, enforcing or not, ``fips=1``), the disk layout (``verity``
puts /usr on a dm-verity device) and the identity files written into the instance, so facts,
profiles and per-image reports treat the VM as the Azure Linux image it stands for.
``VM_TARGET_SUITES`` is what the VM targets file carries for every VM (the allowlist of the
Debian userland's boot-time SELinux denials, each with its reason).
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
    # SELINUX= of /etc/selinux/config as the image it stands for ships it (None: the lab
    # image's own, "enforcing"); SELINUXTYPE stays "default", the name of Debian's policy
    selinux_config: str | None = None

    def identity_files(self) -> dict[str, str]:
        """Files (path -> text) written over the image per instance: the identity files as
        on the Azure Linux image (azure-linux.md § Identity files) and, where the variant
        says so, the SELinux config file."""
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
        files = {
            "etc/os-release": "\n".join(os_release) + "\n",
            "etc/azurelinux-release": f"Azure Linux 3.0\nAZURELINUX_BUILD_NUMBER={AZL_VERSION}\n",
            "etc/lsb-release": (
                'DISTRIB_ID="azurelinux"\n'
                f'DISTRIB_RELEASE="{AZL_VERSION}"\n'
                "DISTRIB_CODENAME=AzureLinux\n"
                'DISTRIB_DESCRIPTION="Azure Linux 3.0"\n'
            ),
        }
        if self.selinux_config:
            files["etc/selinux/config"] = (
                f"SELINUX={self.selinux_config}\nSELINUXTYPE=default\n"
            )
        return files


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
            selinux_config="enforcing",
            expect={"selinux": "enforcing", "lsm": "selinux", "fips": "0", "verity": "no"},
        ),
        VmVariant(
            name="selinux-permissive",
            layout="base",
            cmdline=(*_SELINUX, "enforcing=0"),
            stands_for="Azure Linux 3.0 core-efi-selinux (SELinux permissive, as FIPS/OS Guard)",
            variant_id="core-efi-selinux",
            profile="azl-3.0-core-efi-selinux",  # detection keys on osguard/baremetal only
            selinux_config="permissive",
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
            selinux_config="permissive",
            expect={"selinux": "permissive", "lsm": "selinux", "fips": "1", "verity": "no"},
        ),
        VmVariant(
            name="verity",
            layout="verity",
            cmdline=(*_SELINUX, "enforcing=0", "fips=1"),
            stands_for="Azure Linux 3.0 OS Guard (dm-verity /usr, fips=1, SELinux permissive)",
            variant_id="osguard",
            variant="OS Guard",
            selinux_config="permissive",
            expect={"selinux": "permissive", "lsm": "selinux", "fips": "1", "verity": "usr"},
        ),
    )
}


# Target settings the VM targets file carries (``suites:`` of the ``lab-vm`` target).
# The SELinux suite looks at denials since boot (what a user checking an image wants);
# these are the Debian userland's own boot-time denials, explained so that a fresh VM passes.
VM_TARGET_SUITES: dict[str, dict[str, object]] = {
    "selinux": {
        "allowlist": [
            {
                "stype": "getty_t",
                "ttype": "getty_t",
                "tclass": "capability2",
                "perms": ["checkpoint_restore"],
                "comm": "agetty",
                "reason": (
                    "lab VM boot noise (Debian bookworm userland, not Azure Linux): agetty on "
                    "the serial console asks for CAP_CHECKPOINT_RESTORE in an ioctl at boot, "
                    "which Debian's selinux-policy-default 2:2.20221101 does not grant getty_t; "
                    "the console login works regardless"
                ),
            }
        ]
    }
}


def get_variant(name: str) -> VmVariant:
    """The variant called ``name``; a one-line error listing the known ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise AzlError(f"unknown VM variant {name!r} (known: {known})") from None

"""The VM variants: kernel command line, disk layout and the Azure Linux identity each carries.

Pure data. Every variant boots the same Debian bookworm userland and kernel; what differs is
the kernel command line (which LSM, enforcing or not, ``fips=1``), the disk layout (``verity``
puts /usr on a dm-verity device) and the identity files written into the instance, so facts,
profiles and per-image reports treat the VM as the Azure Linux image it stands for.
``VM_TARGET_SUITES`` is what the VM targets file carries for every VM (the allowlist of the
Debian userland's boot-time SELinux denials, each with its reason). ``hardened`` is
``selinux-permissive`` plus the files of ``HARDENING_FILES`` (sysctl.d, modprobe.d, an sshd
drop-in, fstab, audit rules, tmpfiles modes, login.defs, sudo defaults): the hardening suite
scores it against its unhardened twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import AzlError

Layout = Literal["base", "verity", "trusted"]
AZL_VERSION = "3.0.20251021"


@dataclass(frozen=True)
class TrustedBoot:
    """How a ``trusted``-layout VM boots: UEFI firmware vars, a vTPM or not, which disk.

    ``secure_boot``: the lab's keys enrolled and Secure Boot on (else OVMF's blank vars:
    setup mode, nothing verified); ``disk``: the file of the trusted image to boot
    (``disk.img``, or a twin's qcow2 with another ESP); ``boots``: False where the firmware
    must refuse the boot (the console shows it; there is no sshd to wait for)."""

    secure_boot: bool = True
    tpm: bool = True
    disk: str = "disk.img"
    boots: bool = True


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
    files: Mapping[str, str] = field(default_factory=dict)  # more per-instance files (path -> text)
    selinux_type: str = "default"  # SELINUXTYPE= written with ``selinux_config``
    trusted: TrustedBoot | None = None  # firmware, TPM and disk of a ``trusted``-layout VM
    memory_mib: int | None = None  # None: what start_vms is given

    def identity_files(self) -> dict[str, str]:
        """Files (path -> text) written over the image per instance: the identity files as
        on the Azure Linux image (azure-linux.md § Identity files) and, where the variant
        says so, the SELinux config file and its own ``files``."""
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
                f"SELINUX={self.selinux_config}\nSELINUXTYPE={self.selinux_type}\n"
            )
        files.update(self.files)
        return files


_SELINUX = ("security=selinux", "selinux=1")
_WEAK_MODULES = (
    "cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "udf", "usb-storage", "dccp", "sctp", "rds",
    "tipc",
)  # fmt: skip
# The hardened VM's recipe: files only (the instance config disk writes them 0644; the
# tmpfiles entry sets the modes that must be tighter before sshd and sudo read them).
HARDENING_FILES: dict[str, str] = {
    "etc/sysctl.d/60-azl-hardening.conf": "\n".join([
        "net.ipv4.conf.all.send_redirects = 0", "net.ipv4.conf.default.send_redirects = 0",
        "net.ipv4.conf.all.accept_redirects = 0", "net.ipv4.conf.default.accept_redirects = 0",
        "net.ipv6.conf.all.accept_redirects = 0", "net.ipv6.conf.default.accept_redirects = 0",
        "net.ipv4.conf.all.secure_redirects = 0", "net.ipv4.conf.default.secure_redirects = 0",
        "net.ipv4.conf.all.accept_source_route = 0",
        "net.ipv4.conf.default.accept_source_route = 0",
        "net.ipv6.conf.all.accept_source_route = 0",
        "net.ipv6.conf.default.accept_source_route = 0",
        "net.ipv4.conf.all.rp_filter = 1", "net.ipv4.conf.default.rp_filter = 1",
        "net.ipv4.conf.all.log_martians = 1", "net.ipv4.conf.default.log_martians = 1",
        "net.ipv4.icmp_echo_ignore_broadcasts = 1",
        "net.ipv4.icmp_ignore_bogus_error_responses = 1", "net.ipv4.tcp_syncookies = 1",
        "net.ipv6.conf.all.accept_ra = 0", "net.ipv6.conf.default.accept_ra = 0",
        "kernel.randomize_va_space = 2", "kernel.kptr_restrict = 1", "kernel.dmesg_restrict = 1",
        "kernel.unprivileged_bpf_disabled = 1", "kernel.yama.ptrace_scope = 1",
        "kernel.perf_event_paranoid = 2", "kernel.kexec_load_disabled = 1", "kernel.sysrq = 0",
        "fs.protected_symlinks = 1", "fs.protected_hardlinks = 1", "fs.protected_fifos = 1",
        "fs.protected_regular = 1", "fs.suid_dumpable = 0", "net.core.bpf_jit_harden = 2",
        "vm.mmap_min_addr = 65536", "",
    ]),
    "etc/modprobe.d/azl-hardening.conf": "".join(
        f"install {m} /bin/false\nblacklist {m}\n" for m in _WEAK_MODULES
    ),
    # read before the lab's own drop-in (sshd keeps the first value of a keyword)
    "etc/ssh/sshd_config.d/00-azl-hardening.conf": "\n".join([
        "PermitRootLogin no", "MaxAuthTries 4", "LoginGraceTime 60", "ClientAliveInterval 120",
        "ClientAliveCountMax 3", "MaxStartups 10:30:60", "MaxSessions 10", "LogLevel VERBOSE",
        "X11Forwarding no", "AllowTcpForwarding no", "GSSAPIAuthentication no",
        "Banner /etc/issue.net",
        "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
        "aes256-ctr,aes192-ctr,aes128-ctr",
        "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,"
        "hmac-sha2-256",
        "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
        "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256",
        "",
    ]),
    "etc/issue.net": "Authorised use only. Activity on this system is monitored.\n",
    "etc/fstab": (
        "# root from the kernel command line\n"
        "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,mode=1777 0 0\n"
        "tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0\n"
        "/tmp /var/tmp none rw,bind,nosuid,nodev,noexec 0 0\n"
    ),
    "etc/audit/rules.d/60-azl-hardening.rules": "\n".join([
        "-w /etc/passwd -p wa -k identity", "-w /etc/group -p wa -k identity",
        "-w /etc/shadow -p wa -k identity", "-w /etc/gshadow -p wa -k identity",
        "-w /etc/security/opasswd -p wa -k identity",
        "-w /etc/sudoers -p wa -k scope", "-w /etc/sudoers.d -p wa -k scope",
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
        "-w /etc/localtime -p wa -k time-change",
        "-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules",
        "-w /var/log/lastlog -p wa -k logins", "-w /var/run/faillock -p wa -k logins",
        "-w /var/run/utmp -p wa -k session", "-w /var/log/wtmp -p wa -k session",
        "-w /var/log/btmp -p wa -k session",
        "-w /etc/selinux -p wa -k MAC-policy",
        "-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale",
        "-w /etc/hosts -p wa -k system-locale", "-w /etc/hostname -p wa -k system-locale",
        "",
    ]),
    "etc/audit/rules.d/99-finalize.rules": "-e 2\n",
    "etc/tmpfiles.d/azl-hardening.conf": "\n".join([
        "z /etc/shadow 0000 root root -", "z /etc/gshadow 0000 root root -",
        "z /etc/shadow- 0000 root root -", "z /etc/gshadow- 0000 root root -",
        "z /etc/ssh/sshd_config 0600 root root -",
        "z /etc/ssh/sshd_config.d/*.conf 0600 root root -",
        "z /etc/sudoers.d/azl-hardening 0440 root root -",
        "z /etc/cron.d 0700 root root -", "z /etc/cron.daily 0700 root root -", "",
    ]),
    "etc/sudoers.d/azl-hardening": "Defaults use_pty\nDefaults logfile=/var/log/sudo.log\n",
    # Azure Linux 3.0's login.defs (SPECS/shadow-utils/login-defs) with aging and umask tightened
    "etc/login.defs": "\n".join([
        "MAIL_DIR /var/mail", "ENV_SUPATH PATH=/sbin:/bin:/usr/sbin:/usr/bin",
        "ENV_PATH PATH=/bin:/usr/bin", "TTYGROUP tty", "TTYPERM 0600", "UMASK 027",
        "PASS_MAX_DAYS 365", "PASS_MIN_DAYS 1", "PASS_WARN_AGE 7", "UID_MIN 1000",
        "UID_MAX 60000", "SYS_UID_MIN 101", "SYS_UID_MAX 999", "GID_MIN 1000", "GID_MAX 60000",
        "SYS_GID_MIN 101", "SYS_GID_MAX 999", "LOGIN_RETRIES 5", "LOGIN_TIMEOUT 60",
        "ENCRYPT_METHOD SHA512", "USERGROUPS_ENAB yes", "",
    ]),
}
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
        VmVariant(
            name="hardened",
            layout="base",
            cmdline=(*_SELINUX, "enforcing=0", "audit=1", "audit_backlog_limit=8192"),
            stands_for="selinux-permissive with the hardening baseline applied (sysctls, "
            "modules, sshd, mounts, audit rules, file modes)",
            variant_id="core-efi-selinux-hardened",
            variant="core-efi-selinux, hardened",
            profile="azl-3.0-core-efi-selinux",  # the same profile as its unhardened twin
            selinux_config="permissive",
            expect={"selinux": "permissive", "lsm": "selinux", "fips": "0", "verity": "no"},
            files=HARDENING_FILES,
        ),
    )
}



# Azure Container Linux under Trusted Launch, and its negative twins (one piece off each).
# The command line is inside the signed UKI (vm_trusted.BASE_CMDLINE), not here.
_ACL_EXPECT = {"selinux": "enforcing", "lsm": "selinux", "fips": "0", "verity": "usr"}


# A twin is booted only to show the one check it fails: less memory than a full lab VM.
TWIN_MEMORY_MIB = 640


def _trusted(name: str, stands_for: str, boot: TrustedBoot, verity: bool = True) -> VmVariant:
    return VmVariant(
        memory_mib=None if name == "trusted" else TWIN_MEMORY_MIB,
        name=name, layout="trusted", cmdline=(), stands_for=stands_for,
        variant_id="azurecontainerlinux", variant="Azure Container Linux", profile="acl-3.0",
        selinux_config="enforcing", selinux_type="targeted",
        expect={**_ACL_EXPECT, "verity": "usr" if verity else "no"}, trusted=boot,
    )  # fmt: skip


TRUSTED_VARIANTS: dict[str, VmVariant] = {
    v.name: v
    for v in (
        _trusted("trusted", "Azure Container Linux 3.0 under Trusted Launch (Secure Boot on the "
                 "lab's keys, vTPM, signed UKI via systemd-boot, verity /usr in USR-A, "
                 "containerd sysext, SELinux enforcing)", TrustedBoot()),
        _trusted("trusted-nosb", "trusted with Secure Boot off (no keys enrolled)",
                 TrustedBoot(secure_boot=False)),
        _trusted("trusted-notpm", "trusted without a vTPM", TrustedBoot(tpm=False)),
        _trusted("trusted-noverity", "trusted with verity off (/usr writable; a signed UKI "
                 "without usrhash=)", TrustedBoot(disk="disk-noverity.qcow2"), verity=False),
        _trusted("trusted-unsigned", "trusted with an unsigned UKI (Secure Boot must refuse it)",
                 TrustedBoot(disk="disk-unsigned.qcow2", boots=False)),
    )
}
VARIANTS.update(TRUSTED_VARIANTS)


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
            },
            # Before auditd starts these go to the kernel log only; the boot window merges it.
            {"stype": "systemd_tmpfiles_t", "perms": ["relabelfrom", "relabelto"],
             "reason": "lab VM boot noise (Debian userland): tmpfiles relabels /etc/mtab and "
             "/root"},
            {"stype": "udev_t", "ttype": "*",
             "reason": "lab VM boot noise (Debian userland): udev reads /proc/sys/fs/nr_open "
             "and raises its rlimit at early boot"},
        ]
    }
}


# The cluster test bed's real nodes (``azl lab cluster up --real-nodes N``): AKS node VMs,
# one variant per node so that each has its own address; booted by the bed, not by
# ``azl lab vm up``, and reached through the cluster target, not the VM targets file.
MAX_REAL_NODES = 4
NODE_VARIANTS: dict[str, VmVariant] = {
    f"node{i}": VmVariant(
        name=f"node{i}",
        layout="base",
        cmdline=("security=apparmor", "apparmor=1"),
        stands_for="AKS Azure Linux 3.0 node (kubelet, containerd; AppArmor enabled)",
        variant_id="aks-node",
        variant="AKS node",
        profile="aks-node-3.0",
        expect={"selinux": "disabled", "lsm": "apparmor", "fips": "0", "verity": "no"},
    )
    for i in range(1, MAX_REAL_NODES + 1)
}
# Addresses follow this order: the trusted variants come last, so that no earlier VM moves.
ALL_VARIANTS: dict[str, VmVariant] = {
    **{k: v for k, v in VARIANTS.items() if k not in TRUSTED_VARIANTS},
    **NODE_VARIANTS, **TRUSTED_VARIANTS,
}


def get_variant(name: str) -> VmVariant:
    """The variant called ``name``; a one-line error listing the known ones otherwise."""
    try:
        return ALL_VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise AzlError(f"unknown VM variant {name!r} (known: {known})") from None

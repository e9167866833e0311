"""Reading what the posture checks need from a host.

Every command here is a declared ``Read`` (``READS``, the SELinux owner's ``MODE_READS``
among them): the first gatherer called on a host fetches all of them in one round trip per
privilege and keeps them for the run (``host.reads``), so each image-suite test is then a
pure check. Installed packages come from the host's one package inventory
(``packages.inventory.host_inventory``); the image suite reads its reads and these ahead
while the session prepares the hosts (``posture/fixtures.py``).

Where a host cannot show something at all (no securityfs, no package tool), the gatherers
raise ``ProbeUnavailable`` (an InfraError: reported as ERROR, not as a finding).
"""

from __future__ import annotations

from ..errors import ProbeUnavailable
from ..host import Host
from ..packages import inventory
from ..packages.inventory import Source, host_inventory
from ..profiles.model import IpeMode
from ..reads import Read
from ..selinux.mode import MODE_READS
from ..transport.protocol import CommandResult
from . import boot, module_blacklist, sysext
from .lsm import APPARMOR_PACKAGES, AppArmorEvidence, parse_lsm
from .osguard import ipe_mode as osguard_ipe_mode
from .sshd import LISTENER_CONFIG, parse_sshd_config, parse_sshd_t

LSM_FILE = "/sys/kernel/security/lsm"
_SBIN = "PATH=$PATH:/usr/sbin:/sbin"  # non-root login shells often lack sbin


def _cat(path: str, sudo: bool | None = None) -> Read:
    return Read.file(path, sudo)


def _which(command: str) -> Read:
    return Read.of("command -v", command)


SECURITYFS_MOUNTED = Read("grep -qs ' /sys/kernel/security securityfs ' /proc/self/mounts")
IPE_POLICIES = Read(
    "d=/sys/kernel/security/ipe; [ -d $d ] || exit 3; "
    'for p in $d/policies/*/; do [ -d "$p" ] || continue; '
    'printf \'%s %s\\n\' "$(basename "$p")" "$(cat "$p/active" 2>/dev/null)"; done',
    sudo=True,
)
# The config the running sshd was started with (a lab host's is not /etc/ssh/sshd_config).
SSHD_T = Read(f'{_SBIN}; {LISTENER_CONFIG}\nsshd -T -f "$conf" 2>/dev/null', sudo=True)
SSHD_RUNNING = Read("grep -qsx sshd /proc/[0-9]*/comm")
IPE_ENFORCE = _cat("/sys/kernel/security/ipe/enforce", sudo=True)
VERITY_STATUS = Read(f"{_SBIN} veritysetup status usr 2>&1", sudo=True)
OPENSSL_PROVIDERS = Read("openssl list -providers 2>&1")
FILES = {
    "fips_enabled": _cat("/proc/sys/crypto/fips_enabled"),
    "lsm": _cat(LSM_FILE),
    "apparmor_enabled": _cat("/sys/module/apparmor/parameters/enabled"),
    "apparmor_profiles": _cat("/sys/kernel/security/apparmor/profiles", sudo=True),
    "sshd_config": _cat("/etc/ssh/sshd_config", sudo=True),
}
TOOLS = ("systemctl", "sshd", "veritysetup", "openssl")
SYSTEMCTL = {
    (verb, unit): Read.of("systemctl %s %s 2>&1", verb, unit)
    for verb in ("is-active", "is-enabled") for unit in ("apparmor.service",)
}
# verity_ab's read is not here: it runs dmsetup, which SELinux runs in lvm_t, and lvm_t may
# not write the batch's temporary files (an AVC on an SELinux host, blocked where enforcing).
# It is read only where a profile expects A/B slots (``verity_ab.usr_verity``).
READS: tuple[Read, ...] = (
    SECURITYFS_MOUNTED, *MODE_READS, IPE_POLICIES, SSHD_T, SSHD_RUNNING,
    VERITY_STATUS, OPENSSL_PROVIDERS, *FILES.values(), *(_which(t) for t in TOOLS),
    *SYSTEMCTL.values(), Read.of("test -e", "/usr/sbin/sshd"),
    Read.of("test -e", "/usr/sbin/veritysetup"), IPE_ENFORCE,
    *boot.READS, *sysext.READS, *module_blacklist.READS,
)


def read(host: Host, what: Read) -> CommandResult:
    """A declared read's result; the first read of a host fetches all of ``READS``."""
    if what not in host.reads.results:
        host.reads.fetch(READS)
    return host.reads.get(what)


def which(host: Host, command: str) -> str | None:
    result = read(host, _which(command))
    return (result.stdout.strip() or None) if result.rc == 0 else None


def exists(host: Host, path: str) -> bool:
    return read(host, Read.of("test -e", path)).rc == 0


def read_optional(host: Host, path: str, *, sudo: bool | None = None) -> str | None:
    """The file's text, or None when it does not exist or cannot be read."""
    result = read(host, _cat(path, sudo))
    return result.stdout if result.rc == 0 else None


def active_lsms(host: Host) -> list[str]:
    text = read_optional(host, LSM_FILE)
    if text is None:
        mounted = read(host, SECURITYFS_MOUNTED).rc == 0
        why = "not readable" if mounted else "securityfs is not mounted on /sys/kernel/security"
        raise ProbeUnavailable(f"{host.name}: cannot read {LSM_FILE}: {why}")
    return parse_lsm(text)


def _systemctl(host: Host, verb: str, unit: str) -> str | None:
    """``systemctl is-active|is-enabled unit``, None where systemd does not answer."""
    if not which(host, "systemctl"):
        return None
    result = read(host, SYSTEMCTL.get((verb, unit)) or Read.of("systemctl %s %s 2>&1", verb, unit))
    text = result.stdout.strip().splitlines()
    word = text[-1].strip() if text else ""
    known = {
        "active",
        "inactive",
        "failed",
        "activating",
        "enabled",
        "disabled",
        "static",
        "masked",
        "not-found",
        "unknown",
    }
    if word in known:
        return word
    return None  # "System has not been booted with systemd", no bus, ...


def apparmor(
    host: Host, lsms: list[str] | None, package_source: Source | None = None
) -> AppArmorEvidence:
    enabled = read_optional(host, "/sys/module/apparmor/parameters/enabled")
    profiles = read_optional(host, "/sys/kernel/security/apparmor/profiles", sudo=True)
    packages = host_inventory(host, package_source)
    return AppArmorEvidence(
        module_enabled=enabled.strip() if enabled is not None else None,
        lsm_active=None if lsms is None else "apparmor" in lsms,
        service_active=_systemctl(host, "is-active", "apparmor.service"),
        service_enabled=_systemctl(host, "is-enabled", "apparmor.service"),
        profiles_loaded=len(profiles.splitlines()) if profiles is not None else None,
        packages=packages.versions(APPARMOR_PACKAGES),
        package_source=packages.where,
    )


def ipe_policies(host: Host) -> str | None:
    """``<name> <active>`` per IPE policy, or None without ``<securityfs>/ipe``."""
    result = read(host, IPE_POLICIES)
    return None if result.rc == 3 else result.stdout


def ipe_mode(host: Host) -> tuple[IpeMode, str]:
    """(off | audit | enforce, why): the policies' ``active`` and ipe/enforce."""
    policies = ipe_policies(host)
    if policies is None and read(host, SECURITYFS_MOUNTED).rc != 0:
        raise ProbeUnavailable(f"{host.name}: securityfs is not mounted on /sys/kernel/security:"
                               " cannot tell the IPE mode")
    enforce = read(host, IPE_ENFORCE)
    try:
        return osguard_ipe_mode(policies, enforce.stdout if enforce.rc == 0 else None)
    except ValueError as exc:
        raise ProbeUnavailable(f"{host.name}: {exc}") from None


def sshd_settings(host: Host) -> tuple[dict[str, str], str]:
    """Effective settings from ``sshd -T``, else the first values in /etc/ssh/sshd_config."""
    result = read(host, SSHD_T)
    if result.rc == 0 and result.stdout.strip():
        return parse_sshd_t(result.stdout), "sshd -T"
    text = read_optional(host, "/etc/ssh/sshd_config", sudo=True)
    if text is None:
        raise ProbeUnavailable(f"{host.name}: neither sshd -T nor /etc/ssh/sshd_config readable")
    return parse_sshd_config(text), "/etc/ssh/sshd_config"


def sshd_presence(host: Host) -> tuple[str | None, bool]:
    binary = which(host, "sshd")
    if binary is None and exists(host, "/usr/sbin/sshd"):
        binary = "/usr/sbin/sshd"
    running = read(host, SSHD_RUNNING).rc == 0
    return binary, running


def usr_verity_status(host: Host) -> str:
    if not which(host, "veritysetup") and not exists(host, "/usr/sbin/veritysetup"):
        return "veritysetup not installed"
    result = read(host, VERITY_STATUS)
    return result.stdout


def openssl_providers(host: Host) -> str:
    if not which(host, "openssl"):
        raise ProbeUnavailable(f"{host.name}: openssl not installed")
    return read(host, OPENSSL_PROVIDERS).stdout


def reads_ahead(host: Host) -> list[Read]:
    """What the image suite reads on ``host``: ``READS`` and the package inventory's reads
    (the whole inventory, whatever the profile asks of it)."""
    return [*READS, *inventory.READS]

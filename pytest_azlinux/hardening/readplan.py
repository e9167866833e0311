"""What the hardening checks read from a host, as ONE command.

Every check adds what it reads to a ``ReadPlan`` (fixed sections such as ``sshd`` or
``passwd``, and keyed reads: sysctl keys, file paths, kernel modules). ``gather_script``
turns the plan into one POSIX shell script that prints each read as a ``==> NAME`` section
(the shape ``reads.split_sections`` parses) followed, where the exit status matters, by a
``==> rc:NAME`` section; ``ReadPlan.section_names`` lists what to split on.

The script runs as root (``/etc/shadow``, ``sshd -T``, ``auditctl -l`` need it) and only
reads. Password hashes never leave the host: ``/etc/shadow`` is printed with the hash field
replaced by its kind (``EMPTY``, ``LOCKED``, ``HASH``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from ..posture.sshd import LISTENER_CONFIG

# Where the world-writable scan looks ("system paths"), and what it leaves out: container
# image layers and pod volumes are workload data, not the image's own files.
SYSTEM_PATHS = ("/bin", "/sbin", "/lib", "/lib64", "/usr", "/etc", "/boot", "/opt", "/var")
SCAN_PRUNE = (
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/lib/kubelet/pods",
    "/var/lib/containers",
)
SCAN_LIMIT = 100  # paths listed per kind; the total count is always printed
SCAN_TIMEOUT = 30  # seconds for the find (the whole read has the host's command timeout)
STAT_FORMAT = "'%n|%a|%U|%G|%F'"  # parsed by Evidence._stats

# Fixed sections: name -> shell. Each runs in the script's root shell; none writes anything.
FIXED: dict[str, str] = {
    "mounts": "cat /proc/self/mounts",
    "filesystems": "cat /proc/filesystems",
    "passwd": "cat /etc/passwd",
    "group": "cat /etc/group",
    "shadow": (
        "awk -F: '{h=$2; k=(h==\"\")?\"EMPTY\":((h ~ /^[!*]/)?\"LOCKED\":\"HASH\"); "
        "print $1\":\"k\":\"$3\":\"$4\":\"$5\":\"$6\":\"$7\":\"$8}' /etc/shadow"
    ),
    "login.defs": "grep -Ev '^[[:space:]]*(#|$)' /etc/login.defs",
    "audit.rules": "auditctl -l 2>&1",
    "audit.status": "auditctl -s 2>&1",
    "processes": "cat /proc/[0-9]*/comm 2>/dev/null | sort -u",
    # without /run/systemd/system systemd is not PID 1 (sd_booted): do not ask systemctl
    "units": (
        "if [ -d /run/systemd/system ]; then "
        "for u in auditd chronyd chrony systemd-timesyncd ntpd ntp; do "
        'printf "%s %s %s\\n" "$u" "$(systemctl is-active "$u.service" 2>/dev/null)" '
        '"$(systemctl is-enabled "$u.service" 2>/dev/null)"; done; '
        "systemctl is-system-running 2>&1 | sed 's/^/system /'; "
        "else echo 'system offline'; fi"
    ),
    "pkgconf": (
        "for f in /etc/tdnf/tdnf.conf /etc/dnf/dnf.conf /etc/yum.conf /etc/yum.repos.d/*.repo; do "
        '[ -f "$f" ] || continue; printf "# file %s\\n" "$f"; cat "$f"; echo; done'
    ),
    "openssl": "openssl list -providers 2>&1",
    "lsm": "cat /sys/kernel/security/lsm && echo",
    "sudoers": (
        "grep -hE '^[[:space:]]*Defaults|NOPASSWD|!authenticate' /etc/sudoers "
        "/etc/sudoers.d/* 2>/dev/null"
    ),
    "timesources": (
        "grep -hE '^[[:space:]]*(server|pool|peer|refclock)[[:space:]]' /etc/chrony.conf "
        "/etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources "
        "/etc/ntp.conf 2>/dev/null | sed 's/^/chrony /'; "
        "grep -hE '^[[:space:]]*(NTP|FallbackNTP)=' /etc/systemd/timesyncd.conf "
        "/etc/systemd/timesyncd.conf.d/*.conf 2>/dev/null | sed 's/^/timesyncd /'"
    ),
}
# Sections rendered by ``gather_script`` itself (they share the shell variable ``conf``).
SPECIAL = frozenset({"sshd", "sshd.hostkeys", "scan"})
# Sections whose exit status a check needs (a command that could not run is not a finding).
WITH_RC = frozenset({"sshd", "audit.rules", "audit.status", "openssl", "lsm", "login.defs"})


@dataclass
class ReadPlan:
    """What one run reads from a host; checks add to it, ``gather_script`` renders it."""

    sections: set[str] = field(default_factory=set)
    sysctls: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)  # stat; shell globs allowed
    modules: set[str] = field(default_factory=set)

    def need(self, *sections: str) -> None:
        unknown = [s for s in sections if s not in FIXED and s not in SPECIAL]
        if unknown:
            raise KeyError(f"no such read: {unknown[0]}")
        self.sections.update(sections)

    def merge(self, other: ReadPlan) -> None:
        self.sections |= other.sections
        self.sysctls |= other.sysctls
        self.paths |= other.paths
        self.modules |= other.modules

    def section_names(self) -> list[str]:
        names: list[str] = []
        for name in sorted(self.sections):
            names.append(name)
            if name in WITH_RC:
                names.append(f"rc:{name}")
        if "sshd" in self.sections:
            names.append("sshd.config")
        if self.sysctls:
            names.append("sysctl")
        if self.paths:
            names.append("stat")
        if self.modules:
            names += ["modules.loaded", "modules.builtin", "modules.sysfs"]
            for module in sorted(self.modules):
                names += [f"module:{module}", f"rc:module:{module}"]
        return names


def sysctl_path(key: str) -> str:
    """``net.ipv4.conf.all.rp_filter`` -> ``/proc/sys/net/ipv4/conf/all/rp_filter``."""
    return "/proc/sys/" + key.replace(".", "/")


def _section(name: str, body: str, rc: bool = False) -> str:
    text = f"printf '\\n==> %s\\n' {shlex.quote(name)}\n{{ {body}\n}} 2>/dev/null"
    if rc:
        text += f"\nprintf '\\n==> rc:%s\\n%s\\n' {shlex.quote(name)} $?"
    return text


def _scan_script() -> str:
    """One find over the system paths: world-writable directories without the sticky bit,
    and world-writable files (symlinks are always 0777 and left out). Bounded by
    ``SCAN_TIMEOUT`` so a huge file system costs these two controls, not the whole read;
    ``exit N`` is find's status (124: timed out)."""
    prune = " -o ".join(f"-path {p}" for p in SCAN_PRUNE)
    return (
        f"set --; for p in {' '.join(SYSTEM_PATHS)}; do "
        '[ -d "$p" ] && [ ! -L "$p" ] && set -- "$@" "$p"; done\n'
        f"t=; command -v timeout >/dev/null && t='timeout {SCAN_TIMEOUT}'\n"
        f'{{ $t find "$@" -xdev \\( {prune} \\) -prune -o \\( -perm -0002 ! -type l \\) '
        "\\( -type d ! -perm -1000 -printf 'dir %p\\n' -o -type f -printf 'file %p\\n' \\) "
        '2>/dev/null; echo "exit $?"; } '
        f"| awk '$1 == \"exit\" {{print; next}} {{n[$1]++; if (n[$1] <= {SCAN_LIMIT}) print}} "
        "END {print \"total dir\", n[\"dir\"]+0; print \"total file\", n[\"file\"]+0}'"
    )


def gather_script(plan: ReadPlan) -> str:
    """The one command that prints everything ``plan`` reads (see the module docstring)."""
    parts = ["PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin; export LC_ALL=C"]
    for name in sorted(plan.sections):
        if name == "sshd":
            # the config file of the running listener (-f), else the default; its effective values
            parts.append(_section("sshd", LISTENER_CONFIG + '\nsshd -T -f "$conf" 2>&1', rc=True))
            parts.append(_section("sshd.config", f'echo "$conf"; stat -c {STAT_FORMAT} "$conf"'))
        elif name == "sshd.hostkeys":
            # the effective host keys (sshd -T) and their public halves
            parts.append(_section("sshd.hostkeys", (
                'sshd -T -f "${conf:-/etc/ssh/sshd_config}" 2>/dev/null | '
                "sed -n 's/^hostkey //p' | while read -r k; do "
                f'stat -c {STAT_FORMAT} "$k" "$k.pub"; done'
            )))
        elif name == "scan":
            parts.append(_section("scan", _scan_script()))
        else:
            parts.append(_section(name, FIXED[name], rc=name in WITH_RC))
    if plan.sysctls:
        files = " ".join(sysctl_path(k) for k in sorted(plan.sysctls))
        parts.append(_section("sysctl", f"grep -Hs '' {files}"))
    if plan.paths:
        # unquoted on purpose: globs expand; a pattern that matches nothing fails quietly
        parts.append(_section("stat", f"stat -c {STAT_FORMAT} " + " ".join(sorted(plan.paths))))
    if plan.modules:
        names = sorted(plan.modules)
        alternatives = "|".join(re.escape(m).replace("-", "[-_]") for m in names)
        parts.append(_section("modules.loaded", "cat /proc/modules"))
        parts.append(_section(
            "modules.builtin",
            f"grep -E '/({alternatives})\\.ko' /lib/modules/$(uname -r)/modules.builtin",
        ))
        dirs = " ".join(f"/sys/module/{m.replace('-', '_')}" for m in names)
        parts.append(_section("modules.sysfs", f"ls -d {dirs}"))
        for module in names:
            parts.append(_section(f"module:{module}", f"modprobe -n -v {module} 2>&1", rc=True))
    return "\n".join(parts) + "\n"

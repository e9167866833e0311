"""Sentinels: what every test is checked for on its hosts, without asking.

- ``kernel``  new kernel log records: panic, oops, BUG, WARNING, hung task, soft/hard lockup,
  RCU stall, OOM kill, segfault, I/O error, ext4/XFS/btrfs errors, dm-verity corruption,
  audit backlog overflow;
- ``units``   systemd units that failed since the run started (each reported once);
- ``denials`` SELinux and AppArmor denials (the audit log, and the kernel log where no auditd
  takes them: none installed, or one stopped mid-run with its log left in place).

One round trip per host and check: a POSIX ``sh`` script reads the kernel log, the failed
units (``systemctl``) and the audit log's growth (``tail -c`` from the last size). The
kernel log is read whole once (``dd`` non-blocking on ``/dev/kmsg``, ``awk`` keeping the
records after the last sequence number seen); then a follower (``cat /dev/kmsg`` into a
file it alone holds, unlinked at once, gone when it ends) has every new record, and each
check reads only what it appended since (``tail -c`` on ``/proc/PID/fd/1``): the cost of a
check no longer grows with the kernel's ring buffer. Where the follower is gone (a new
connection, a kill), the whole read comes back and a new follower starts.

The first check on a host (before its first test) probes what the host can
show and takes the baselines; each test's end check reports what is new since the host's
previous check. A sentinel that cannot see anything meaningful on a host is off there, with
the reason (shown once per host in the run's summary): no systemd, a kernel log that needs
root, a kernel that is this machine's (a namespaced lab host: its kernel log is the
machine's and every lab's, not the host's own).

This module holds the pure parts (script, parsing, classification) and the per-host state;
``plugin.py`` decides when checks run and turns findings into test failures.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..host import Host
from ..reads import Read, Section, split_sections
from ..selinux.collect import DEFAULT_AUDIT_LOG
from .settings import SENTINEL_NAMES, SentinelName, SentinelSettings

# Categories of kernel log records, first match wins (lockups before the BUG line they
# print, a BUG before a WARNING...). Searched in the record's message.
KERNEL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rx)) for name, rx in (
        ("panic", r"Kernel panic - not syncing"),
        ("hard lockup", r"hard LOCKUP"),
        ("soft lockup", r"soft lockup - CPU#|BUG: soft lockup"),
        ("RCU stall", r"rcu: INFO: .*detected stalls?|rcu_\w+ (self-)?detected stall"),
        ("hung task", r"INFO: task .* blocked for more than \d+ seconds"),
        ("oops", r"\bOops\b|general protection fault|unable to handle (kernel|page fault)"),
        ("BUG", r"\bBUG: |kernel BUG at "),
        ("WARNING", r"^WARNING: |\bWARNING: CPU: \d+ PID: \d+"),
        ("OOM kill", r"Out of memory: Kill|oom-kill:|Memory cgroup out of memory"
                     r"|invoked oom-killer"),
        ("segfault", r"segfault at [0-9a-f]+ ip |traps: .* general protection"),
        ("I/O error", r"I/O error|critical medium error|blk_update_request: .*error"),
        ("ext4 error", r"EXT4-fs error|EXT4-fs \([^)]*\): (error|Remounting filesystem read-only)"),
        ("XFS error", r"XFS \([^)]*\): (Corruption|.*I/O error|Internal error|"
                      r"Filesystem has been shut down|Metadata corruption)"),
        ("btrfs error", r"BTRFS (error|critical|crit)\b"),
        ("dm-verity corruption", r"verity.*(is corrupted|corruption)"),
        ("audit backlog", r"audit: backlog limit exceeded|audit_backlog=\d+ > audit_backlog_limit"
                          r"|kauditd hold queue overflow|audit_lost="),
    )
)
DENIAL = re.compile(r'avc: +denied|apparmor="DENIED"|type=(?:USER_)?SELINUX_ERR|SELINUX_ERR')
_DENIAL_GREP = r'avc: +denied|apparmor="DENIED"|type=(USER_)?SELINUX_ERR'
_KMSG_AWK = (  # -F,: $2 is a record's sequence number
    '/^[0-9]/ { last = $2 } s >= 0 && $2 + 0 > s { print } END { print "==> kmsg-last " last }'
)
MACHINE_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# The follower: reads the kernel log from its start and then waits for new records, into a
# file only it holds: opened here and unlinked before the follower starts (had the follower
# opened it by name, an unlink before that open would leave a new file behind). It carries
# the shell's AZL_SHELL tag, so closing the connection ends it, and the file with it.
_FOLLOW = (
    'f=$(mktemp "${TMPDIR:-/tmp}/azl-kmsg.XXXXXXXX" 2>/dev/null || '
    "mktemp /dev/shm/azl-kmsg.XXXXXXXX 2>/dev/null) && "
    '{ exec 3>"$f"; rm -f "$f"; cat /dev/kmsg >&3 2>/dev/null </dev/null 3>&- & p=$!; '
    'exec 3>&-; echo "==> kmsg-follower $p"; }'
)


@dataclass(frozen=True)
class KmsgRecord:
    """One kernel log record as ``/dev/kmsg`` gives it."""

    seq: int
    usec: int  # since boot
    facility: int  # 0 = the kernel; 1 = user space writing to /dev/kmsg
    text: str

    def line(self) -> str:
        origin = "" if self.facility == 0 else " (written by user space)"
        return f"[{self.usec / 1e6:12.6f}] {self.text}{origin}"


def parse_kmsg(lines: Iterable[str]) -> list[KmsgRecord]:
    """Records of ``/dev/kmsg`` output (``PRI,SEQ,USEC,FLAGS;TEXT``; dictionary lines that
    start with a space are skipped)."""
    out = []
    for line in lines:
        head, sep, text = line.partition(";")
        parts = head.split(",")
        if not sep or len(parts) < 3 or not all(p.isdigit() for p in parts[:3]):
            continue
        out.append(KmsgRecord(int(parts[1]), int(parts[2]), int(parts[0]) >> 3, text))
    return out


def kernel_category(text: str) -> str | None:
    return next((name for name, rx in KERNEL_PATTERNS if rx.search(text)), None)


def failed_units(lines: Iterable[str]) -> set[str]:
    """Unit names of ``systemctl list-units --state=failed --plain --no-legend`` output."""
    out = set()
    for line in lines:
        words = line.split()
        if words and words[0] not in ("●", "*"):
            out.add(words[0])
        elif len(words) > 1:
            out.add(words[1])
    return out


# -- per host ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """New trouble one sentinel saw on one host: what, and the lines that show it."""

    sentinel: SentinelName
    what: str  # "WARNING", "OOM kill", "2 units failed", "SELinux denials"...
    lines: tuple[str, ...]

    def describe(self, max_lines: int) -> str:
        shown = list(self.lines[:max_lines])
        if len(self.lines) > max_lines:
            shown.append(f"... and {len(self.lines) - max_lines} more line(s)")
        body = "".join(f"\n      {line}" for line in shown)
        return f"  {self.sentinel}: {self.what}{body}"


@dataclass
class Observation:
    """What one check saw that is new since the host's previous check."""

    kernel: list[KmsgRecord] = field(default_factory=list)  # every new record
    denial_lines: list[str] = field(default_factory=list)  # audit log and kernel log
    new_units: list[str] = field(default_factory=list)
    uptime: float | None = None  # host seconds since boot when the check ran


@dataclass
class HostWatch:
    """One host's sentinel state in this process: what is on, and the cursors."""

    host_id: str
    local_access: bool
    probed: bool = False
    off: dict[str, str] = field(default_factory=dict)  # sentinel -> why it is off here
    kmsg_seq: int = -1  # the last kernel log record seen
    kmsg_readable: bool = False
    follower: int | None = None  # pid of the host's ``cat /dev/kmsg``
    follower_offset: int = 0  # bytes of its file read so far (whole records)
    audit_size: int | None = None  # None: no readable audit log
    units_seen: set[str] = field(default_factory=set)  # failed at the start, or reported
    last_window: str = "the start of the run"  # where the next window starts
    announced: bool = False  # the sentinels that are off here were put on a report

    @property
    def active(self) -> bool:
        """Some sentinel is on here (a check is worth its round trip)."""
        return not self.probed or len(self.off) < len(SENTINEL_NAMES)

    def script(self, settings: SentinelSettings) -> str:
        """One round trip: what is new since the previous check (the first one probes)."""
        parts = ['read up _ </proc/uptime; echo "==> up $up"']
        if not self.probed:
            parts.append('read boot </proc/sys/kernel/random/boot_id; echo "==> boot $boot"')
            parts.append('if [ -d /run/systemd/system ]; then echo "==> systemd yes"; fi')
        if self._reads_kmsg(settings):
            parts.append(self._kmsg_script())
        if self._reads_units(settings):
            parts.append(
                'if [ -d /run/systemd/system ]; then echo "==> units"; '
                "systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null; fi"
            )
        if self._reads_audit(settings):
            log = shlex.quote(DEFAULT_AUDIT_LOG)
            known = self.audit_size if self.audit_size is not None else -1
            grep = f"grep -aE {shlex.quote(_DENIAL_GREP)}"
            parts.append(
                f'if [ -r {log} ]; then size=$(wc -c <{log}); echo "==> audit $size"; '
                f"if [ {known} -ge 0 ] && [ $size -gt {known} ]; then "
                f"tail -c +{known + 1} {log} | {grep}; "
                f"elif [ {known} -ge 0 ] && [ $size -lt {known} ]; then {grep} {log}; fi; fi"
            )
        return "\n".join(parts) + "\necho '==> end'\n"

    def _kmsg_script(self) -> str:
        # opened by a regular builtin: a failed redirection on ":" (a special builtin) would
        # end a POSIX shell
        whole = (
            "if { true </dev/kmsg; } 2>/dev/null; then echo '==> kmsg'; "
            # one record per read; written out in large blocks (fewer pipe wake-ups)
            "dd if=/dev/kmsg iflag=nonblock ibs=16384 obs=1M 2>/dev/null | "
            f"awk -F, -v s={self.kmsg_seq if self.probed else -1} {shlex.quote(_KMSG_AWK)}; "
            # no follower for the probe: the kernel sentinel may turn out to be off here
            f"{_FOLLOW + '; ' if self.probed else ''}fi"
        )
        if self.follower is None:
            return whole
        pid = self.follower
        # the pid is still the follower (a cat writing into a file); builtins only
        return (
            f"c=; read -r c </proc/{pid}/comm 2>/dev/null; "
            f'if [ "$c" = cat ] && [ -f /proc/{pid}/fd/1 ]; then '
            f"echo '==> kmsg-tail'; tail -c +{self.follower_offset + 1} /proc/{pid}/fd/1; "
            f"echo; echo '==> kmsg-tail-end'; else {whole}; fi"
        )

    def _reads_kmsg(self, settings: SentinelSettings) -> bool:
        if not self.probed:
            return settings.wants("kernel") or settings.wants("denials")
        return self.kmsg_readable and ("kernel" not in self.off or self._kmsg_denials())

    def _kmsg_denials(self) -> bool:
        return "denials" not in self.off and self.audit_size is None

    def _reads_units(self, settings: SentinelSettings) -> bool:
        return settings.wants("units") and "units" not in self.off

    def _reads_audit(self, settings: SentinelSettings) -> bool:
        if not self.probed:
            return settings.wants("denials")
        return "denials" not in self.off and self.audit_size is not None

    def check(self, host: Host, settings: SentinelSettings) -> Observation:
        """Run one check; the first one only probes and takes the baselines."""
        result = host.reads.fresh(Read(self.script(settings)), timeout=settings.timeout)
        sections = split_sections(result.stdout)
        if "end" not in sections:
            # the script did not run through (no sh, a broken shell): nothing to judge
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            self.off.update({s: f"the check did not run: {detail}" for s in SENTINEL_NAMES
                             if s not in self.off})
            self.probed = True
            return Observation()
        if not self.probed:
            self._probe(sections, settings)
            return Observation(uptime=_uptime(sections))
        return self._observe(sections)

    def _probe(self, sections: Mapping[str, Section],
               settings: SentinelSettings) -> None:
        self.probed = True
        for name in SENTINEL_NAMES:
            if not settings.wants(name):
                self.off[name] = "off in the target's suites.sentinels"
        self.kmsg_readable = "kmsg" in sections
        if "kmsg-last" in sections and sections["kmsg-last"].args.isdigit():
            self.kmsg_seq = int(sections["kmsg-last"].args)
        boot = _args(sections, "boot")
        if "kernel" not in self.off:
            if not self.local_access and boot and boot == _machine_boot_id():
                self.off["kernel"] = (
                    "the host shares this machine's kernel (a namespaced lab host): its kernel "
                    "log is the machine's, not the host's own"
                )
            elif not self.kmsg_readable:
                self.off["kernel"] = (
                    "the kernel log cannot be read (/dev/kmsg needs root where dmesg_restrict "
                    "is set): set sudo: true on the target"
                )
        if "units" not in self.off and "systemd" not in sections:
            self.off["units"] = "no systemd on the host (PID 1 is not systemd)"
        if "units" not in self.off:
            self.units_seen = failed_units(sections["units"].lines if "units" in sections else ())
        if "audit" in sections and sections["audit"].args.isdigit():
            self.audit_size = int(sections["audit"].args)
        if "denials" not in self.off and self.audit_size is None and (
            "kernel" in self.off or not self.kmsg_readable
        ):
            self.off["denials"] = (
                "no readable audit log, and no kernel log of the host's own to find them in"
            )

    def _observe(self, sections: Mapping[str, Section]) -> Observation:
        seen = Observation(uptime=_uptime(sections))
        lines: list[str] | None = None
        last = ""  # the whole read's last sequence number
        if "kmsg-tail" in sections and "kmsg-tail-end" in sections:
            lines = list(sections["kmsg-tail"].lines)
            # the script adds a newline: the last line is empty when the file ended on a
            # whole record, else it is a record being written (read again next time)
            whole = lines[:-1]
            self.follower_offset += sum(len(line.encode()) + 1 for line in whole)
            lines = whole
        elif "kmsg" in sections:
            lines = list(sections["kmsg"].lines)
            last = _args(sections, "kmsg-last")
            self._note_follower(sections)
        if lines is not None:
            records = [r for r in parse_kmsg(lines) if r.seq > self.kmsg_seq]
            seqs = [r.seq for r in records] + ([int(last)] if last.isdigit() else [])
            self.kmsg_seq = max([self.kmsg_seq, *seqs])
            seen.kernel = records
            # also where the audit log is read: with auditd stopped (its log in place, not
            # growing) the kernel prints its records here instead; while auditd runs, none
            if "denials" not in self.off:
                seen.denial_lines += [r.text for r in records if DENIAL.search(r.text)]
        if "units" in sections:
            failed = failed_units(sections["units"].lines)
            seen.new_units = sorted(failed - self.units_seen)
            self.units_seen |= failed
        if "audit" in sections and sections["audit"].args.isdigit():
            self.audit_size = int(sections["audit"].args)
            seen.denial_lines += [ln for ln in sections["audit"].lines if DENIAL.search(ln)]
        return seen

    def _note_follower(self, sections: Mapping[str, Section]) -> None:
        pid = _args(sections, "kmsg-follower")
        self.follower = int(pid) if pid.isdigit() else None
        self.follower_offset = 0


def _args(sections: Mapping[str, Section], name: str) -> str:
    found = sections.get(name)
    return found.args if found is not None else ""


def _uptime(sections: Mapping[str, Section]) -> float | None:
    try:
        return float(sections["up"].args)
    except (KeyError, ValueError):
        return None


def _machine_boot_id() -> str:
    try:
        return MACHINE_BOOT_ID.read_text().strip()
    except OSError:
        return ""


def kernel_findings(records: Sequence[KmsgRecord], since_usec: float | None) -> list[Finding]:
    """Kernel records that match a category, one finding per category; records older than
    ``since_usec`` (host time the test started) are marked as before the test."""
    by_category: dict[str, list[str]] = {}
    for record in records:
        if DENIAL.search(record.text):
            continue  # the denials sentinel's
        category = kernel_category(record.text)
        if category is None:
            continue
        before = since_usec is not None and record.usec < since_usec
        note = "  (before this test started)" if before else ""
        by_category.setdefault(category, []).append(record.line() + note)
    return [Finding("kernel", what, tuple(lines)) for what, lines in by_category.items()]

"""Is the audit log live? Who writes it, since when, and where its older records went.

An audit log is evidence only of the time its daemon was running and writing it: with auditd
stopped (its log left in place), the kernel writes its records to the kernel log instead
(journald takes them from there), and a reader of the log alone sees a quiet host. So every
read of an audit log is paired with this read (one round trip): the audit daemon the kernel
has registered (``auditctl -s``: ``pid``, 0 when none), each ``auditd`` process, whether it
has the log open and when it started, and for the message when it is not live: is auditd
installed, what systemd says of it, and where ``/etc/audit/auditd.conf`` puts its log.

The log covers a window only if its writer has been running since before the window began;
otherwise what the kernel logged meanwhile is in the kernel log (``collect.py`` merges it in,
or stops with an ERROR when there is none to read). Rotation: auditd renames the log to
``audit.log.1`` .. ``audit.log.N`` (``num_logs``) and drops the oldest; ``rotations`` lists the
files a window needs and ``begins`` says whether the oldest of them reaches back to its start.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..reads import Read, split_sections

CONF = "/etc/audit/auditd.conf"
_STAMP = re.compile(r"audit\((\d+(?:\.\d+)?):\d+\)")


def rotations(audit_log: str, start: float | None) -> str:
    """Shell that sets ``"$@"`` to the audit log's files a window from ``start`` needs, oldest
    first: the rotated ``LOG.N`` .. ``LOG.1`` last written at or after ``start`` (all of them
    when None), then the log itself (auditd numbers its rotations without gaps)."""
    log = shlex.quote(audit_log)
    since = "" if start is None else str(int(start))
    return (
        f"set --; i=1; while [ -e {log}.$i ]; do i=$((i + 1)); done; "
        f"while [ $i -gt 1 ]; do i=$((i - 1)); "
        f"if [ -z '{since}' ] || [ \"$(stat -c %Y {log}.$i 2>/dev/null || echo 0)\" -ge "
        f"'{since or 0}' ]; then set -- \"$@\" {log}.$i; fi; done; set -- \"$@\" {log}"
    )


def liveness_read(audit_log: str, start: float | None) -> Read:
    """One read: the kernel's audit pid, each auditd (pid, log open, start), the host's
    clock, what to say when none writes the log, and the first record of the oldest file a
    window from ``start`` reads. Runs as the target says (root: the kernel's audit status
    and other processes' open files are root-only)."""
    log = shlex.quote(audit_log)
    script = (
        f"{rotations(audit_log, start)}; "
        'if [ -r "$1" ]; then echo "==> oldest $# $1"; head -n 1 "$1"; fi; '
        f"log={log}; real=$(readlink -f \"$log\" 2>/dev/null || echo \"$log\"); "
        'echo "==> now $(date +%s.%N)"; read up _ </proc/uptime; echo "==> up $up"; '
        'echo "==> hz $(getconf CLK_TCK 2>/dev/null)"; '
        "kp=; if command -v auditctl >/dev/null 2>&1; then "
        "kp=$(auditctl -s 2>/dev/null | awk '$1 == \"pid\" { print $2 }'); "
        'echo "==> kernel $kp"; fi; '
        "if command -v auditd >/dev/null 2>&1 || [ -x /sbin/auditd ] || [ -x /usr/sbin/auditd ]; "
        'then echo "==> installed"; fi; '
        "if [ -d /run/systemd/system ]; then "
        'echo "==> active $(systemctl is-active auditd 2>/dev/null)"; fi; '
        f"if [ -r {CONF} ]; then echo \"==> conf $(sed -n "
        "'s/^[[:space:]]*log_file[[:space:]]*=[[:space:]]*//p' "
        f"{CONF} | tail -n 1)\"; fi; "
        '[ -e "$log" ] && echo "==> exists"; '
        # the kernel's audit daemon when it is auditd; else every auditd, to say why (a scan
        # of /proc in sh: 0.5 s at 2800 processes, only where the kernel names none)
        'c=; [ -n "$kp" ] && [ "$kp" != 0 ] && read -r c 2>/dev/null </proc/"$kp"/comm; '
        'if [ "$c" = auditd ]; then pids=$kp; '
        "else pids=$(for d in /proc/[0-9]*; do c=; read -r c 2>/dev/null <\"$d/comm\"; "
        '[ "$c" = auditd ] && echo "${d#/proc/}"; done); fi; '
        "for p in $pids; do d=/proc/$p; o=no; "
        'for f in "$d"/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = "$real" ] && o=yes; done; '
        "echo \"==> daemon $p $o $(awk '{ print $22 }' \"$d/stat\" 2>/dev/null)\"; "
        "done; true"
    )
    return Read(script, label=f"whether auditd is running and writing {audit_log}")


@dataclass(frozen=True)
class Daemon:
    """One auditd process: pid, whether it has the log open, when it started (host clock)."""

    pid: int
    writes_log: bool
    started: float | None


@dataclass(frozen=True)
class AuditDaemon:
    """What the liveness read found."""

    audit_log: str
    now: float | None
    kernel_pid: int | None  # auditctl -s's pid (0: none registered); None: not asked
    daemons: tuple[Daemon, ...]
    installed: bool
    systemd_state: str | None  # systemctl is-active auditd; None: no systemd
    conf_log_file: str | None  # auditd.conf's log_file; None: no readable auditd.conf
    log_exists: bool
    files: int = 0  # the log's files the window reads (rotations included)
    oldest: str = ""  # the oldest of them
    oldest_first: str = ""  # its first line (a record)

    @property
    def writer(self) -> Daemon | None:
        """The auditd that writes the log and takes the kernel's records (when the kernel
        could be asked which one it sends them to)."""
        for daemon in self.daemons:
            if daemon.writes_log and self.kernel_pid in (None, daemon.pid):
                return daemon
        return None

    def gap(self, start: float | None) -> str | None:
        """Why the log does not hold every record since ``start`` (None: everything it
        holds), or None when it does: its writer is running and started before ``start``."""
        writer = self.writer
        if writer is None:
            return self.not_live()
        if start is not None and (writer.started is None or writer.started >= start - 1.0):
            # 1 s: the start time is in clock ticks, the uptime it is derived from in 10 ms
            return (f"auditd (pid {writer.pid}) started after the window began: what the "
                    "kernel logged before it went to the kernel log")
        return None

    def not_live(self) -> str:
        """Why nothing writes the log now, in the host's own terms."""
        log = self.audit_log
        writers = [d for d in self.daemons if d.writes_log]
        if writers and self.kernel_pid is not None:
            who = f"pid {self.kernel_pid}" if self.kernel_pid else "none"
            return (f"auditd (pid {writers[0].pid}) writes {log} but is not the audit daemon "
                    f"the kernel sends its records to (auditctl -s: {who})")
        if self.daemons:
            pids = ", ".join(str(d.pid) for d in self.daemons)
            return f"auditd runs (pid {pids}) but does not have {log} open{self._elsewhere()}"
        if not self.installed:
            return f"auditd is not installed, so nothing writes {log}"
        state = f" (systemctl is-active auditd: {self.systemd_state})" if self.systemd_state \
            else ""
        return f"auditd is not running{state}, so nothing writes {log}{self._elsewhere()}"

    def absent(self) -> str:
        """Why the log is not there (the file is missing: not a permission problem)."""
        log = self.audit_log
        if not self.installed:
            return f"no file {log}: auditd is not installed"
        if self.conf_log_file and self.conf_log_file != log:
            return (f"no file {log}: auditd writes its log to {self.conf_log_file} (log_file "
                    f"in {CONF}); set suites.selinux.audit_log to it")
        running = "running" if self.daemons else "not running"
        state = f", systemctl is-active auditd: {self.systemd_state}" if self.systemd_state \
            else ""
        return f"no file {log}: auditd is installed but {running}{state}"

    def missing(self, start: float | None, kernel_log: bool) -> str | None:
        """Records the window from ``start`` may lack: the files left do not reach back to
        its start (the older ones rotated away), unless they begin with the daemon's start
        and the kernel log (what came before it) was read too."""
        if start is None or not self.oldest_first:
            return None
        match = _STAMP.search(self.oldest_first)
        if match is None:
            return None
        first = float(match.group(1))
        if first <= start or (kernel_log and "type=DAEMON_START" in self.oldest_first):
            return None
        return (f"records may be missing: the oldest audit log file left, {self.oldest} "
                f"({self.files} file(s) read), begins at {first:.3f}, {first - start:.0f} s "
                "after the window began (older files rotated away: num_logs in "
                f"{CONF})")

    def _elsewhere(self) -> str:
        if self.conf_log_file and self.conf_log_file != self.audit_log:
            return f"; {CONF} puts its log at {self.conf_log_file}"
        return ""


def parse_liveness(audit_log: str, text: str) -> AuditDaemon:
    sections = split_sections(text)

    def arg(name: str) -> str | None:
        found = sections.get(name)
        return found.args.strip() if found is not None else None

    now, up, hz = (_number(arg(n)) for n in ("now", "up", "hz"))
    daemons = []
    for line in text.splitlines():
        words = line.split()
        if words[:2] != ["==>", "daemon"] or len(words) < 4 or not words[2].isdigit():
            continue
        ticks = _number(words[4]) if len(words) > 4 else None
        started = None
        if None not in (now, up, hz, ticks) and hz:
            started = now - up + ticks / hz  # type: ignore[operator]
        daemons.append(Daemon(int(words[2]), words[3] == "yes", started))
    kernel = arg("kernel")
    oldest = sections.get("oldest")
    files, _, name = oldest.args.partition(" ") if oldest is not None else ("0", "", "")
    return AuditDaemon(
        audit_log=audit_log,
        now=now,
        kernel_pid=int(kernel) if kernel and kernel.isdigit() else None,
        daemons=tuple(daemons),
        installed="installed" in sections,
        systemd_state=arg("active") or None,
        conf_log_file=arg("conf") or None,
        log_exists="exists" in sections,
        files=int(files) if files.isdigit() else 0,
        oldest=name,
        oldest_first=oldest.lines[0] if oldest is not None and oldest.lines else "",
    )


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None

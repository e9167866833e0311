"""Collect SELinux records from a host, wherever they land, for a window of time.

Sources, in the order ``auto`` tries them:

- ``ausearch``  ``ausearch --input-logs`` (reads the audit log and its rotations; exit 1
  with ``<no matches>`` means nothing matched, not an error);
- ``audit-log`` the audit log file itself (hosts with auditd's log but no ausearch);
- ``journal``   ``journalctl _TRANSPORT=audit`` and ``journalctl -k`` (images without auditd:
  journald receives the audit messages);
- ``kmsg``      the kernel ring buffer (``dmesg``), the last resort.

Windows: everything the source holds, since boot, or since a checkpoint. A checkpoint is a
point on the host's own clock (audit timestamps come from that clock); records carry
``audit(SECONDS.MS:SERIAL)``, so a record belongs to a window when its timestamp is at or
after the checkpoint.

Before auditd starts (early boot: systemd-tmpfiles, udev, getty) the kernel writes its
records to the kernel log, not to the audit log: ``collect(..., kernel_log=True)`` (the
``boot`` and ``all`` windows) merges this boot's kernel-log records (``journalctl -b``, the
kernel and audit transports, else ``dmesg``) with the audit records, one per event
(deduplicated by serial, time and content).

An audit log is trusted only while it is live (``auditd.py``): every read of it checks that
auditd runs, writes it and has since the window began; otherwise the kernel log is merged in
for the window too (auditd stopped: the kernel prints its records there), or, with no
kernel log to read, the collection is an ERROR. Rotated files are read (``--input-logs``,
or the files last written inside the window) and a window whose oldest file left begins
after its start says that records may be missing (``Collection.missing``).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from ..analyse.avc import AvcRecord, merge_sources, parse_journal_json, parse_records
from ..errors import CollectorError
from ..host import Host
from ..reads import Read
from .auditd import AuditDaemon, liveness_read, parse_liveness, rotations

CLOCK = Read("date +%s.%N", sudo=False)  # the host's clock, read afresh each time

Source = Literal["ausearch", "audit-log", "journal", "kmsg"]
SOURCES: tuple[Source, ...] = ("ausearch", "audit-log", "journal", "kmsg")
DEFAULT_AUDIT_LOG = "/var/log/audit/audit.log"
MESSAGE_TYPES = "AVC,USER_AVC,SELINUX_ERR,USER_SELINUX_ERR"
_GREP = "type=(AVC|USER_AVC|SELINUX_ERR|USER_SELINUX_ERR|SYSCALL|1400|1107|1401|1122|1300) "
# This boot's kernel log and journald's audit copies, as JSON, only the SELinux records and
# the SYSCALL records of their events (a host with audit rules logs many more SYSCALLs; a
# SYSCALL follows its event's other records); dmesg where there is no journal.
_SELINUX_ENTRY = (
    r'"_AUDIT_TYPE_NAME" *: *"(AVC|USER_AVC|SELINUX_ERR|USER_SELINUX_ERR)"|'
    r"type=(1400|1107|1401|1122) |avc: "
)
_SYSCALL_ENTRY = r'"_AUDIT_TYPE_NAME" *: *"SYSCALL"|type=1300 '
_EVENT_FILTER = (
    "awk '"
    r'{ id = ""; if (match($0, /"_AUDIT_ID" *: *"[0-9]+"/)) { id = substr($0, RSTART, RLENGTH); '
    r'gsub(/[^0-9]/, "", id) } else if (match($0, /audit\([0-9.]+:[0-9]+\)/)) { '
    r'id = substr($0, RSTART, RLENGTH); sub(/.*:/, "", id); sub(/\)/, "", id) } } '
    f"/{_SELINUX_ENTRY}/ {{ if (id != \"\") want[id] = 1; print; next }} "
    f"/{_SYSCALL_ENTRY}/ && (id in want) {{ print }}'"
)
_KERNEL_LOG = (
    "if command -v journalctl >/dev/null 2>&1 && "
    "[ -n \"$(journalctl -q -b -k -n 1 -o cat 2>/dev/null)\" ]; then "
    "echo '##journal'; journalctl --no-pager -q -b -o json _TRANSPORT=kernel + _TRANSPORT=audit"
    f" | {_EVENT_FILTER}; "
    "elif dmesg >/dev/null 2>&1; then "
    f"echo '##dmesg'; dmesg | {_EVENT_FILTER}; "
"else echo '##none'; fi; true"
)



@dataclass(frozen=True)
class Checkpoint:
    """A point on the host's clock (epoch seconds) and what it is (boot, run start, test)."""

    timestamp: float
    label: str = "checkpoint"

    def admits(self, record: AvcRecord) -> bool:
        # records without a time (rare journal shapes) cannot be placed: they are kept out
        return record.timestamp is not None and record.timestamp >= self.timestamp


@dataclass(frozen=True)
class Collection:
    """The records of one window, where they came from and how."""

    host: str
    source: Source
    command: str
    since: Checkpoint | None
    records: list[AvcRecord]
    # the kernel log merged in (boot window): where from, and how many records it added
    kernel_log: str | None = None
    kernel_log_added: int = 0
    # why the audit log alone did not cover the window (auditd stopped, or started inside
    # it): the kernel log was read for what the kernel logged meanwhile
    gap: str | None = None
    # records the window may lack (the audit log's older part rotated away): said, not hidden
    missing: str | None = None

    @property
    def window(self) -> str:
        return "everything recorded" if self.since is None else f"since {self.since.label}"

    def describe_source(self) -> str:
        text = f"{self.source}: {self.command}"
        if self.gap is not None:
            text += f"; {self.gap}"
        if self.kernel_log is not None:
            text += (f"; with this boot's kernel log ({self.kernel_log}): "
                     f"{self.kernel_log_added} record(s) not in the audit log")
        if self.missing is not None:
            text += f"; {self.missing}"
        return text


class DenialCollector:
    """Reads SELinux records from one host. ``source="auto"`` picks the first that works."""

    def __init__(
        self,
        host: Host,
        source: Source | Literal["auto"] = "auto",
        audit_log: str = DEFAULT_AUDIT_LOG,
        timeout: float = 120.0,
    ) -> None:
        if source != "auto" and source not in SOURCES:
            raise ValueError(f"unknown source {source!r} (auto, {', '.join(SOURCES)})")
        self.host = host
        self.requested = source
        self.audit_log = audit_log
        self.timeout = timeout

    # --- clock -------------------------------------------------------------------------

    def now(self) -> float:
        """The host's clock, in epoch seconds."""
        out = self.host.reads.fresh(CLOCK, timeout=self.timeout).stdout.strip()
        try:
            return float(out)
        except ValueError:
            raise CollectorError(f"{self.host.name}: cannot read the clock: {out!r}") from None

    def boot_time(self) -> float:
        out = self.host.reads.fresh(
            Read("date +%s.%N; cut -d' ' -f1 /proc/uptime", sudo=False), timeout=self.timeout
        ).stdout.split()
        try:
            return float(out[0]) - float(out[1])
        except (IndexError, ValueError):
            raise CollectorError(f"{self.host.name}: cannot read uptime: {out!r}") from None

    def checkpoint(self, label: str = "checkpoint") -> Checkpoint:
        return Checkpoint(self.now(), label)

    def since_boot(self) -> Checkpoint:
        return Checkpoint(self.boot_time(), "boot")

    # --- source detection --------------------------------------------------------------

    @cached_property
    def source(self) -> Source:
        if self.requested != "auto":
            return self.requested
        log = shlex.quote(self.audit_log)
        folder = shlex.quote(posixpath.dirname(self.audit_log) or "/")
        script = (
            f"if [ -r {log} ] && [ -s {log} ]; then "
            "  if command -v ausearch >/dev/null 2>&1; then echo ausearch; "
            "  else echo audit-log; fi; "
            # there but hidden: the file, or a directory this user may not search (auditd's
            # /var/log/audit is root-only, so the file itself cannot even be seen)
            f"elif [ ! -r {log} ] && {{ [ -e {log} ] || "
            f"{{ [ -d {folder} ] && ! {{ [ -r {folder} ] && [ -x {folder} ]; }}; }}; }}; then "
            "  echo unreadable; "
            "elif command -v journalctl >/dev/null 2>&1 && "
            "  [ -n \"$(journalctl -q -n 1 -o cat 2>/dev/null)\" ]; then echo journal; "
            "elif command -v dmesg >/dev/null 2>&1 && dmesg >/dev/null 2>&1; then echo kmsg; "
            f"elif [ -r {log} ]; then "  # an empty audit log, and nothing else to read
            "  if command -v ausearch >/dev/null 2>&1; then echo ausearch; "
            "  else echo audit-log; fi; "
            "else echo none; fi"
        )
        found = self.host.reads.fresh(Read(script), timeout=self.timeout).stdout.strip()
        if found == "unreadable":
            raise CollectorError(
                f"{self.host.name}: {self.audit_log} is not readable as "
                f"{self._who()}{self._sudo_hint('audit logs are root-only')}"
            )
        if found not in SOURCES:
            daemon = self.audit_daemon()
            why = daemon.absent() if not daemon.log_exists else f"no readable {self.audit_log}"
            raise CollectorError(
                f"{self.host.name}: no SELinux record source readable as {self._who()}: "
                f"{why}; no journal entries; dmesg not readable"
                f"{self._sudo_hint('these are root-only on most hosts')}"
            )
        return found

    def _who(self) -> str:
        user = self.host.spec.user or "this user"
        return f"root (sudo, as {user})" if self.host.spec.sudo else user

    def _sudo_hint(self, why: str) -> str:
        if self.host.spec.sudo:
            return f" ({why}; sudo is on, so the file's permissions or the LSM deny it)"
        return (f" ({why}): set `sudo: true` for target {self.host.spec.target!r} in the "
                "targets file (the host's defaults or the host entry; a `kind: lab` target "
                "takes it too)")

    # --- collection --------------------------------------------------------------------

    def audit_daemon(self, start: float | None = None) -> AuditDaemon:
        """Whether auditd runs and writes the audit log now, and since when (read afresh)."""
        read = liveness_read(self.audit_log, start)
        return parse_liveness(self.audit_log, self.host.reads.fresh(read, timeout=self.timeout)
                              .stdout)

    def collect(self, since: Checkpoint | None = None, *, kernel_log: bool = False) -> Collection:
        """Records of the window that starts at ``since`` (None: everything).

        ``kernel_log``: also this boot's kernel-log records (what the kernel logged before
        auditd started), for the audit-log sources; every one of them is from this boot, so
        a window that starts at boot (or ``since=None``) takes them all.

        An audit log is trusted only while it is live: read at each collection, auditd must
        be running, writing it, and have been since before the window began. Otherwise the
        kernel logged the records meanwhile to the kernel log, which is read too (or, when
        there is none to read, the collection is an ERROR saying why).
        """
        source = self.source
        start = since.timestamp if since is not None else None
        gap: str | None = None
        daemon: AuditDaemon | None = None
        if source in ("ausearch", "audit-log"):
            daemon = self.audit_daemon(start)
            gap = daemon.gap(start)
        if source == "ausearch":
            command, records = self._ausearch(since, daemon)
        elif source == "audit-log":
            command, records = self._grep_log(since, daemon)
        elif source == "journal":
            command, records = self._journal(since)
        else:
            command = "dmesg"
            records = parse_records(self._read(command))
        if since is not None:
            records = [r for r in records if since.admits(r)]
        if daemon is None:
            return Collection(self.host.name, source, command, since, records)
        if kernel_log and daemon.writer is not None:
            gap = None  # auditd runs: the boot and all windows read the kernel log anyway
        kernel_log = kernel_log or gap is not None
        missing = daemon.missing(start, kernel_log)
        if not kernel_log:
            return Collection(self.host.name, source, command, since, records, missing=missing)
        where, early = self._kernel_log()
        if gap is not None and not where:
            raise CollectorError(
                f"{self.host.name}: {gap}, and no kernel log is readable to find what the "
                "kernel logged meanwhile (no journal entries, dmesg not readable): the "
                "window's records cannot be read"
            )
        if since is not None and since.label != "boot":
            early = [r for r in early if since.admits(r)]
        merged = merge_sources(records, early)
        return Collection(self.host.name, source, command, since, merged, where or "none readable",
                          len(merged) - len(records), gap, missing)

    def _kernel_log(self) -> tuple[str, list[AvcRecord]]:
        """This boot's records in the kernel log (and journald's audit copies)."""
        out = self._read(_KERNEL_LOG)
        head, _, body = out.partition("\n")
        if head == "##journal":
            return "journalctl -b, kernel and audit transports", parse_journal_json(body)
        if head == "##dmesg":
            return "dmesg", parse_records(body)
        return "", []  # none readable

    def _read(self, command: str, ok: Sequence[int] = (0,)) -> str:
        result = self.host.reads.fresh(Read(command), timeout=self.timeout)
        if result.rc not in ok:
            raise self._failed(command, result.rc, result.stderr)
        return result.stdout

    def _failed(self, command: str, rc: int, stderr: str) -> CollectorError:
        text = stderr.strip()
        denied = any(w in text for w in ("cannot read", "Permission denied", "not permitted"))
        hint = self._sudo_hint("the record sources are root-only") if denied else ""
        return CollectorError(f"{self.host.name}: {command} exited {rc}: {text[:300]}{hint}")

    def _log_check(self) -> str:
        """Shell that stops with exit 3 when the audit log is not there (its directory is
        searchable, or missing), exit 2 when it is there but cannot be read."""
        log = shlex.quote(self.audit_log)
        folder = shlex.quote(posixpath.dirname(self.audit_log) or "/")
        return (f"if [ ! -e {log} ] && {{ [ -x {folder} ] || [ ! -e {folder} ]; }}; then "
                f"echo 'no such file '{log} >&2; exit 3; fi; "
                f"[ -r {log} ] || {{ echo 'cannot read '{log} >&2; exit 2; }}; ")

    def _read_log(self, command: str, script: str, daemon: AuditDaemon | None) -> str:
        """Run a read of the audit log (``script``, after the log check); exit 1 with nothing
        or ``<no matches>`` on stderr is "nothing matched"."""
        result = self.host.reads.fresh(Read(self._log_check() + script), timeout=self.timeout)
        if result.rc == 3 and daemon is not None:
            raise CollectorError(f"{self.host.name}: {daemon.absent()}")
        if result.rc == 1 and result.stderr.strip() in ("", "<no matches>"):
            return ""
        if result.rc != 0:
            raise self._failed(command, result.rc, result.stderr)
        return result.stdout

    def _rotated(self, daemon: AuditDaemon | None) -> str:
        n = daemon.files - 1 if daemon is not None else 0
        return f" (and {n} rotated file(s), {self.audit_log}.{n}..1, oldest first)" if n > 0 \
            else ""

    def _ausearch(self, since: Checkpoint | None,
                  daemon: AuditDaemon | None = None) -> tuple[str, list[AvcRecord]]:
        search = f"-m {MESSAGE_TYPES} --raw"
        if since is not None:
            # -ts takes the host's locale date and time; the date is formatted on the host
            # (seconds resolution: the client-side filter then applies the exact time)
            sec = int(since.timestamp)
            search += f' -ts "$(date -d @{sec} +%x)" "$(date -d @{sec} +%T)"'
        if self.audit_log == DEFAULT_AUDIT_LOG:
            # auditd.conf's log and its rotations (--input-logs: stdin is no terminal here)
            command = f"ausearch --input-logs {search}"
            script = command
        else:
            # -if reads one file: with rotations, they and the log go in through stdin
            command = f"ausearch -if {shlex.quote(self.audit_log)} {search}"
            start = since.timestamp if since is not None else None
            script = (f"{rotations(self.audit_log, start)}; if [ $# -gt 1 ]; then "
                      f'cat "$@" | ausearch {search}; else {command}; fi')
            command += self._rotated(daemon)
        return command, parse_records(self._read_log(command, script, daemon))

    def _grep_log(self, since: Checkpoint | None,
                  daemon: AuditDaemon | None = None) -> tuple[str, list[AvcRecord]]:
        command = f"grep -E {shlex.quote(_GREP)} {shlex.quote(self.audit_log)}"
        start = since.timestamp if since is not None else None
        script = f'{rotations(self.audit_log, start)}; grep -hE {shlex.quote(_GREP)} "$@"'
        return command + self._rotated(daemon), parse_records(
            self._read_log(command, script, daemon))

    def _journal(self, since: Checkpoint | None) -> tuple[str, list[AvcRecord]]:
        window = f" --since @{int(since.timestamp)}" if since is not None else ""
        commands = [
            f"journalctl --no-pager -q -o json _TRANSPORT=audit{window}",
            f"journalctl --no-pager -q -o json -k{window}",
        ]
        audit, kernel = (parse_journal_json(self._read(c, ok=(0, 1))) for c in commands)
        return " ; ".join(commands), merge_sources(audit, kernel)

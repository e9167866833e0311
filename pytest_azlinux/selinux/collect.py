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
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from ..analyse.avc import AvcRecord, dedupe, parse_journal_json, parse_records
from ..errors import (
    CollectorError,
    )
from ..host import Host

Source = Literal["ausearch", "audit-log", "journal", "kmsg"]
SOURCES: tuple[Source, ...] = ("ausearch", "audit-log", "journal", "kmsg")
DEFAULT_AUDIT_LOG = "/var/log/audit/audit.log"
MESSAGE_TYPES = "AVC,USER_AVC,SELINUX_ERR,USER_SELINUX_ERR"
_GREP = "type=(AVC|USER_AVC|SELINUX_ERR|USER_SELINUX_ERR|SYSCALL|1400|1107|1401|1122) "



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

    @property
    def window(self) -> str:
        return "everything recorded" if self.since is None else f"since {self.since.label}"


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
        out = self.host.run("date +%s.%N", sudo=False, timeout=self.timeout).stdout.strip()
        try:
            return float(out)
        except ValueError:
            raise CollectorError(f"{self.host.name}: cannot read the clock: {out!r}") from None

    def boot_time(self) -> float:
        out = self.host.run(
            "date +%s.%N; cut -d' ' -f1 /proc/uptime", sudo=False, timeout=self.timeout
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
        script = (
            f"if [ -s {log} ] && [ -r {log} ]; then "
            "  if command -v ausearch >/dev/null 2>&1; then echo ausearch; "
            "  else echo audit-log; fi; "
            "elif command -v journalctl >/dev/null 2>&1 && "
            "  [ -n \"$(journalctl -q -n 1 -o cat 2>/dev/null)\" ]; then echo journal; "
            "elif command -v dmesg >/dev/null 2>&1 && dmesg >/dev/null 2>&1; then echo kmsg; "
            f"elif [ -e {log} ]; then echo unreadable; "
            "else echo none; fi"
        )
        found = self.host.run(script, timeout=self.timeout).stdout.strip()
        if found == "unreadable":
            raise CollectorError(
                f"{self.host.name}: {self.audit_log} exists but is not readable as "
                f"{self.host.spec.user or 'this user'} (audit logs are root-only: set sudo: true "
                "for the host in the targets file)"
            )
        if found not in SOURCES:
            raise CollectorError(
                f"{self.host.name}: no SELinux record source: no readable {self.audit_log}, "
                "no journal entries, dmesg not readable"
            )
        return found

    # --- collection --------------------------------------------------------------------

    def collect(self, since: Checkpoint | None = None) -> Collection:
        """Records of the window that starts at ``since`` (None: everything)."""
        source = self.source
        if source == "ausearch":
            command, records = self._ausearch(since)
        elif source == "audit-log":
            command = f"grep -E {shlex.quote(_GREP)} {shlex.quote(self.audit_log)}"
            records = parse_records(self._read(command, ok=(0, 1)))
        elif source == "journal":
            command, records = self._journal(since)
        else:
            command = "dmesg"
            records = parse_records(self._read(command))
        if since is not None:
            records = [r for r in records if since.admits(r)]
        return Collection(self.host.name, source, command, since, records)

    def _read(self, command: str, ok: Sequence[int] = (0,)) -> str:
        result = self.host.run(command, timeout=self.timeout)
        if result.rc not in ok:
            raise CollectorError(
                f"{self.host.name}: {command} exited {result.rc}: {result.stderr.strip()[:300]}"
            )
        return result.stdout

    def _ausearch(self, since: Checkpoint | None) -> tuple[str, list[AvcRecord]]:
        inputs = (
            "--input-logs" if self.audit_log == DEFAULT_AUDIT_LOG
            else f"-if {shlex.quote(self.audit_log)}"
        )
        command = f"ausearch {inputs} -m {MESSAGE_TYPES} --raw"
        if since is not None:
            # -ts takes the host's locale date and time; the date is formatted on the host
            # (seconds resolution: the client-side filter then applies the exact time)
            sec = int(since.timestamp)
            command += f' -ts "$(date -d @{sec} +%x)" "$(date -d @{sec} +%T)"'
        # ausearch -if is silent about a missing file: check it first (exit 2, a message)
        log = shlex.quote(self.audit_log)
        script = f"[ -r {log} ] || {{ echo 'cannot read '{log} >&2; exit 2; }}; {command}"
        result = self.host.run(script, timeout=self.timeout)
        # exit 1 is "nothing matched": "<no matches>" on stderr, or nothing for an empty log
        if result.rc == 1 and result.stderr.strip() in ("", "<no matches>"):
            return command, []
        if result.rc != 0:
            raise CollectorError(
                f"{self.host.name}: {command} exited {result.rc}: {result.stderr.strip()[:300]}"
            )
        return command, parse_records(result.stdout)

    def _journal(self, since: Checkpoint | None) -> tuple[str, list[AvcRecord]]:
        window = f" --since @{int(since.timestamp)}" if since is not None else ""
        commands = [
            f"journalctl --no-pager -q -o json _TRANSPORT=audit{window}",
            f"journalctl --no-pager -q -o json -k{window}",
        ]
        records: list[AvcRecord] = []
        for command in commands:
            records.extend(parse_journal_json(self._read(command, ok=(0, 1))))
        return " ; ".join(commands), dedupe(records)

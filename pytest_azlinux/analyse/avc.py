"""SELinux AVC, USER_AVC and SELINUX_ERR records: parse every shape they come in (grouping
them for a reader: ``avc_groups``).

Pure functions over text. Shapes understood (one or more records per line):

- raw audit: ``type=AVC msg=audit(1163772866.369:8084): avc:  denied  { read } for ...``
  (also ``node=NAME`` / ``host=NAME`` prefixes, several records on one line, single
  spaces, fields in any order, ``ausearch -i`` stamps such as ``audit(04/25/2023 21:22:49.431:7)``);
- syslog / audisp prefixes: ``Sep 12 08:26:43 host kernel: audit(...): avc: ...``;
- kernel log: ``audit: type=1400 audit(1690227161.760:5): avc: ...`` (dmesg, ``journalctl -k``);
- journal audit transport: ``host audit[293]: AVC avc:  denied ...`` or, with ``-o cat``,
  ``AVC avc:  denied ...`` (no stamp: ``parse_journal_json`` takes it from the entry);
- journalctl's text formats: a line that starts with the journal's own time
  (``-o short-unix``: ``1700000000.123456 host ...``; ``-o short-iso``/``short-iso-precise``:
  ``2025-01-31T12:00:00.123456+0000 host ...``) gives that time to records without an
  ``audit(...)`` stamp; ``-o short`` (``Jan 31 12:00:00 host ...``) has no year or zone, so
  such records stay without a time (windows cannot place them: use json or short-unix);
- a bare ``avc:  denied { ... } for ...`` message.

``SYSCALL`` records of the same event (same node and stamp) supply ``exe`` and ``comm`` when
the record has none (an AVC carries no ``exe``; a SELINUX_ERR neither ``exe`` nor ``comm``),
for every source alike: the journal's entries are given their event's stamp first.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

RecordType = Literal["AVC", "USER_AVC", "SELINUX_ERR", "USER_SELINUX_ERR"]
SELINUX_TYPES: tuple[RecordType, ...] = ("AVC", "USER_AVC", "SELINUX_ERR", "USER_SELINUX_ERR")
_NUMERIC_TYPES = {
    "1400": "AVC", "1107": "USER_AVC", "1401": "SELINUX_ERR", "1122": "USER_SELINUX_ERR",
    "1300": "SYSCALL",
}

# Start of one record: optional node=/host= prefix, type=NAME or type=NUMBER, msg=audit(...)
# or the kernel-log form "audit(...):" with an optional "type=1400 " before it.
_RECORD_START = re.compile(
    r"(?:(?:node|host)=(?P<node>\S+)\s+)?"
    r"(?:type=(?P<type>\w+)\s+msg=audit\((?P<stamp>[^)]*)\)"
    r"|(?:type=(?P<ktype>\d+)\s+)?audit\((?P<kstamp>[^)]*)\))"
    r"\s*:\s*"
)
# journald's audit transport: "audit[PID]: AVC avc: ...", "audit: SELINUX_ERR op=..." or
# (with -o cat) "AVC avc: ..." at the start of the line.
_JOURNAL = re.compile(
    r"(?:^|\baudit(?:\[\d+\])?:\s+)(?P<type>AVC|USER_AVC|SELINUX_ERR|USER_SELINUX_ERR|SYSCALL)\s+"
)
# The journal's own time at the start of a text line: -o short-unix, or -o short-iso(-precise)
_SHORT_UNIX = re.compile(r"^\s*(?P<epoch>\d{9,}\.\d+)\s")
_SHORT_ISO = re.compile(
    r"^\s*(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d))\s"
)
_AVC = re.compile(r"avc:\s+(?P<verdict>denied|granted)\s+\{(?P<perms>[^}]*)\}\s*(?:for\b)?")
_FIELD = re.compile(r"(?<![\w.-])(?P<key>[a-z_][a-z0-9_]*)=(?P<value>\"[^\"]*\"|'[^']*'|\S*)")
_STAMP = re.compile(r"^(?P<body>.*?):(?P<serial>\d+)$")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


@dataclass(frozen=True)
class Context:
    """A security context ``user:role:type:level`` (level may hold ':' and be empty)."""

    user: str
    role: str
    type: str
    level: str = ""

    @classmethod
    def parse(cls, text: str) -> Context:
        parts = text.split(":", 3)
        if len(parts) < 3:  # e.g. "kernel" or "unlabeled": keep it as the type
            return cls("", "", text, "")
        return cls(parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else "")

    def __str__(self) -> str:
        if not self.user and not self.role:
            return self.type
        return ":".join(p for p in (self.user, self.role, self.type, self.level) if p or p == "")


@dataclass(frozen=True)
class AvcRecord:
    """One AVC / USER_AVC / SELINUX_ERR record.

    ``verdict`` is ``denied`` or ``granted`` for access decisions and None for errors and
    notices (e.g. a USER_AVC ``received policyload notice``). ``permissive`` is None when
    the record has no ``permissive=`` field (kernels before 4.17, most user-space managers).
    """

    rtype: RecordType
    timestamp: float | None
    serial: int | None
    node: str | None
    verdict: Literal["denied", "granted"] | None
    perms: tuple[str, ...]
    scontext: Context | None
    tcontext: Context | None
    tclass: str | None
    permissive: bool | None
    comm: str | None
    exe: str | None
    path: str | None
    name: str | None
    pid: int | None
    fields: Mapping[str, str]
    text: str

    @property
    def is_denial(self) -> bool:
        return self.verdict == "denied"

    @property
    def is_error(self) -> bool:
        return self.rtype in ("SELINUX_ERR", "USER_SELINUX_ERR")

    @property
    def stype(self) -> str | None:
        return self.scontext.type if self.scontext else None

    @property
    def ttype(self) -> str | None:
        return self.tcontext.type if self.tcontext else None

    @property
    def key(self) -> tuple[float, int]:
        """Ordering key (timestamp, serial) used by checkpoints."""
        return (self.timestamp or 0.0, self.serial or 0)

    @property
    def error(self) -> str | None:
        """For SELINUX_ERR: what went wrong (``invalid context X``, ``reason=bounds``...)."""
        if not self.is_error:
            return None
        m = re.search(r"invalid context (\S+)", self.text)  # security_compute_sid: ... for
        invalid = m.group(1) if m else _untrusted(self.fields.get("invalid_context"))
        parts = [f"{k}={self.fields[k]}" for k in ("op", "reason", "seresult") if k in self.fields]
        if invalid:
            parts.append(f"invalid context {invalid}")
        return " ".join(parts) or self.text.split(" for ")[0].strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.rstrip(",)")


def _untrusted(value: str | None) -> str | None:
    """Audit hex-encodes untrusted strings that hold spaces or quotes: decode those."""
    if value is None or not _HEX.match(value):
        return value
    try:
        decoded = bytes.fromhex(value).decode("utf-8")
    except ValueError:
        return value
    return decoded if decoded.isprintable() else value


def parse_fields(text: str) -> dict[str, str]:
    """``key=value`` pairs of a record body (first occurrence wins, quotes stripped)."""
    out: dict[str, str] = {}
    for m in _FIELD.finditer(text):
        out.setdefault(m["key"], _unquote(m["value"]))
    return out


def _parse_stamp(stamp: str | None) -> tuple[float | None, int | None]:
    if not stamp:
        return None, None
    m = _STAMP.match(stamp.strip())
    if not m:
        return None, None
    try:
        ts: float | None = float(m["body"])
    except ValueError:  # ausearch -i prints a local date: no portable epoch
        ts = None
    return ts, int(m["serial"])


def _build(
    rtype: str, body: str, stamp: str | None, node: str | None
) -> AvcRecord | None:
    """One record from its type and body (the text after ``audit(...):``)."""
    if rtype not in SELINUX_TYPES:
        return None
    timestamp, serial = _parse_stamp(stamp)
    inner = body
    outer: dict[str, str] = {}
    if rtype.startswith("USER_"):
        # user-space managers wrap the decision in msg='...'; the outer fields name the sender
        m = re.search(r"msg='(?P<inner>.*?)'?\s*$", body)
        if m:
            outer = parse_fields(body[: m.start()])
            inner = m["inner"]
    avc = _AVC.search(inner)
    verdict: Literal["denied", "granted"] | None = None
    perms: tuple[str, ...] = ()
    rest = inner
    if avc:
        verdict = "denied" if avc["verdict"] == "denied" else "granted"
        perms = tuple(avc["perms"].split())
        rest = inner[avc.end():]
    fields = {**outer, **parse_fields(rest)}
    if not perms and "perms" in fields:  # SELINUX_ERR op=security_compute_av ... perms=a,b
        perms = tuple(p for p in re.split(r"[,\s]+", fields["perms"]) if p)
    scontext = fields.get("scontext") or fields.get("oldcontext")
    tcontext = fields.get("tcontext") or fields.get("newcontext")
    permissive = fields.get("permissive")
    pid = fields.get("pid") or fields.get("spid")
    return AvcRecord(
        rtype=rtype,
        timestamp=timestamp,
        serial=serial,
        node=node,
        verdict=verdict,
        perms=perms,
        scontext=Context.parse(scontext) if scontext else None,
        tcontext=Context.parse(tcontext) if tcontext else None,
        tclass=fields.get("tclass"),
        permissive=None if permissive is None else permissive == "1",
        comm=_untrusted(fields.get("comm")),
        exe=_untrusted(fields.get("exe")),
        path=_untrusted(fields.get("path")),
        name=_untrusted(fields.get("name")),
        pid=int(pid) if pid and pid.isdigit() else None,
        fields=fields,
        text=body.strip(),
    )


@dataclass(frozen=True)
class _Raw:
    rtype: str
    body: str
    stamp: str | None
    node: str | None


def _split_line(line: str) -> list[_Raw]:
    """The records of one line (a line may hold several, or none)."""
    starts = list(_RECORD_START.finditer(line))
    out: list[_Raw] = []
    if starts:
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(line)
            body = line[m.end():end]
            rtype = m["type"] or _NUMERIC_TYPES.get(m["ktype"] or "", "")
            if not rtype:  # "kernel: audit(...): avc: ..." carries no type: infer it
                rtype = "AVC" if _AVC.match(body.lstrip()) else (
                    "SELINUX_ERR" if "security_compute" in body else "")
            rtype = _NUMERIC_TYPES.get(rtype, rtype)
            out.append(_Raw(rtype, body, m["stamp"] or m["kstamp"], m["node"]))
        return out
    j = _JOURNAL.search(line)
    if j:
        return [_Raw(j["type"], line[j.end():], None, None)]
    bare = _AVC.search(line)
    if bare:  # a bare "avc:  denied ..." message (old syslog, kernel ring buffer)
        return [_Raw("AVC", line[bare.start():], None, None)]
    return []


def line_time(line: str) -> float | None:
    """The journal's time at the start of a ``-o short-unix`` / ``short-iso`` line."""
    m = _SHORT_UNIX.match(line)
    if m:
        return float(m["epoch"])
    m = _SHORT_ISO.match(line)
    if m:
        text = m["iso"].replace(",", ".")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return dt.datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    return None


_PROCESS_FIELDS = ("exe", "comm")


def parse_records(text: str | Iterable[str]) -> list[AvcRecord]:
    """Every AVC, USER_AVC, SELINUX_ERR and USER_SELINUX_ERR record in ``text``, in order.

    ``exe`` and ``comm`` come from the event's SYSCALL record when the record itself has
    none; a record without an ``audit(...)`` stamp takes the time a journalctl text line
    starts with, if any.
    """
    lines = text.splitlines() if isinstance(text, str) else list(text)
    return _parse_lines(lines, lambda i: line_time(lines[i]))


def _parse_lines(
    lines: Sequence[str], time_of: Callable[[int], float | None]
) -> list[AvcRecord]:
    """Records of ``lines``; ``time_of(i)`` is the time of line i for records without one."""
    found: list[tuple[AvcRecord, str | None]] = []
    process: dict[tuple[str | None, str], dict[str, str]] = {}
    for index, line in enumerate(lines):
        for raw in _split_line(line):
            if raw.rtype == "SYSCALL":
                fields = parse_fields(raw.body)
                known = {k: _untrusted(fields[k]) or fields[k]
                         for k in _PROCESS_FIELDS if fields.get(k) not in (None, "", "?")}
                if raw.stamp and known:
                    process.setdefault((raw.node, raw.stamp), {}).update(known)
                continue
            record = _build(raw.rtype, raw.body, raw.stamp, raw.node)
            if record is None:
                continue
            if record.timestamp is None and (when := time_of(index)) is not None:
                record = replace(record, timestamp=when)
            found.append((record, raw.stamp))
    out = []
    for record, stamp in found:
        known = process.get((record.node, stamp), {}) if stamp is not None else {}
        exe = record.exe or known.get("exe")
        comm = record.comm if record.comm not in (None, "", "?") else known.get("comm", record.comm)
        changed = exe != record.exe or comm != record.comm
        out.append(replace(record, exe=exe, comm=comm) if changed else record)
    return out


def _entry_stamp(usec: int | None, audit_id: object) -> str | None:
    """``SECONDS.MILLIS:SERIAL`` of a journal audit entry (journald keeps both)."""
    if usec is None or not str(audit_id or "").isdigit():
        return None
    return f"{usec // 1_000_000}.{usec // 1000 % 1000:03d}:{audit_id}"


def parse_journal_json(text: str) -> list[AvcRecord]:
    """Records from ``journalctl -o json`` output (one JSON object per line).

    Journal audit entries carry the record in MESSAGE without its ``audit(...)`` stamp;
    journald keeps the event's serial in ``_AUDIT_ID`` and its time in
    ``_SOURCE_REALTIME_TIMESTAMP``. The stamp is put back in front of the message, so the
    entries go through the same parser as audit.log lines: same fields, same time, and the
    event's SYSCALL entry supplies ``exe`` and ``comm``. A record with no stamp at all takes
    its entry's time.
    """
    lines: list[str] = []
    times: list[float | None] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald stores non-UTF-8 messages as byte arrays
            message = bytes(int(b) for b in message).decode("utf-8", "replace")
        if not isinstance(message, str):
            continue
        raw_usec = entry.get("_SOURCE_REALTIME_TIMESTAMP") or entry.get("__REALTIME_TIMESTAMP")
        usec = int(raw_usec) if raw_usec is not None and str(raw_usec).isdigit() else None
        if _RECORD_START.search(message) is None:  # the audit transport: no stamp
            type_name = entry.get("_AUDIT_TYPE_NAME")
            j = _JOURNAL.match(message)
            if j:
                type_name, message = j["type"], message[j.end():]
            stamp = _entry_stamp(usec, entry.get("_AUDIT_ID"))
            if type_name and stamp:
                message = f"type={type_name} msg=audit({stamp}): {message}"
            elif type_name:
                message = f"{type_name} {message}"
        lines.append(message)
        times.append(usec / 1e6 if usec is not None else None)
    return _parse_lines(lines, lambda i: times[i])


def _identity(r: AvcRecord) -> tuple[object, ...]:
    """One record of one event: its serial, its time to the millisecond, its text (the
    kernel prints the same text to its log as it sends auditd, and journald keeps it)."""
    ts = round(r.timestamp, 3) if r.timestamp is not None else None
    return (r.rtype, r.serial, ts, " ".join(r.text.split()))


def dedupe(records: Iterable[AvcRecord]) -> list[AvcRecord]:
    """One record per event and text, seen through two sources (audit log and kernel log,
    journal audit transport and ``journalctl -k``): same serial, same time to the
    millisecond, same text."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for r in records:
        key = _identity(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def merge_sources(primary: Sequence[AvcRecord], extra: Iterable[AvcRecord]) -> list[AvcRecord]:
    """Every record of ``primary``, then those of ``extra`` that ``primary`` does not hold
    (deduplicated by serial, time and text): e.g. the audit log, then what the kernel
    logged before auditd started."""
    held = {_identity(r) for r in primary}
    return [*primary, *(r for r in dedupe(extra) if _identity(r) not in held)]

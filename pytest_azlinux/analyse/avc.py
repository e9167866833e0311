"""SELinux AVC, USER_AVC and SELINUX_ERR records: parse every shape they come in, group them.

Pure functions over text. Shapes understood (one or more records per line):

- raw audit: ``type=AVC msg=audit(1163772866.369:8084): avc:  denied  { read } for ...``
  (also ``node=NAME`` / ``host=NAME`` prefixes, several records on one line, single
  spaces, fields in any order, ``ausearch -i`` stamps such as ``audit(04/25/2023 21:22:49.431:7)``);
- syslog / audisp prefixes: ``Sep 12 08:26:43 host kernel: audit(...): avc: ...``;
- kernel log: ``audit: type=1400 audit(1690227161.760:5): avc: ...`` (dmesg, ``journalctl -k``);
- journal audit transport: ``host audit[293]: AVC avc:  denied ...`` or, with ``-o cat``,
  ``AVC avc:  denied ...`` (no stamp: ``parse_journal_json`` takes it from the entry);
- a bare ``avc:  denied { ... } for ...`` message.

``SYSCALL`` records of the same event (same node and stamp) supply ``exe`` when the AVC
record has none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    r"(?:^|\baudit(?:\[\d+\])?:\s+)(?P<type>AVC|USER_AVC|SELINUX_ERR|USER_SELINUX_ERR)\s+"
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
        m = re.search(r"invalid context (\S+)", self.text)
        if m:
            return f"invalid context {m.group(1)}"
        parts = [f"{k}={self.fields[k]}" for k in ("op", "reason", "seresult") if k in self.fields]
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


def parse_records(text: str | Iterable[str]) -> list[AvcRecord]:
    """Every AVC, USER_AVC, SELINUX_ERR and USER_SELINUX_ERR record in ``text``, in order.

    ``exe`` is filled from the event's SYSCALL record when the record itself has none.
    """
    lines = text.splitlines() if isinstance(text, str) else text
    found: list[tuple[AvcRecord, str | None]] = []
    exes: dict[tuple[str | None, str], str] = {}
    for line in lines:
        for raw in _split_line(line):
            if raw.rtype == "SYSCALL" and raw.stamp:
                exe = parse_fields(raw.body).get("exe")
                if exe:
                    exes[(raw.node, raw.stamp)] = _untrusted(exe) or exe
                continue
            record = _build(raw.rtype, raw.body, raw.stamp, raw.node)
            if record is not None:
                found.append((record, raw.stamp))
    out = []
    for record, stamp in found:
        if record.exe is None and stamp is not None and (record.node, stamp) in exes:
            record = replace(record, exe=exes[(record.node, stamp)])
        out.append(record)
    return out


def parse_journal_json(text: str) -> list[AvcRecord]:
    """Records from ``journalctl -o json`` output (one JSON object per line).

    Journal audit entries carry the record in MESSAGE without its ``audit(...)`` stamp:
    the serial comes from ``_AUDIT_ID`` and the time from ``_SOURCE_REALTIME_TIMESTAMP``
    (or ``__REALTIME_TIMESTAMP``), both set by journald.
    """
    out: list[AvcRecord] = []
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
        type_name = entry.get("_AUDIT_TYPE_NAME")
        if type_name and not _JOURNAL.match(message) and not _RECORD_START.search(message):
            message = f"{type_name} {message}"
        usec = entry.get("_SOURCE_REALTIME_TIMESTAMP") or entry.get("__REALTIME_TIMESTAMP")
        audit_id = entry.get("_AUDIT_ID")
        for record in parse_records([message]):
            if record.timestamp is None and usec is not None:
                record = replace(record, timestamp=int(usec) / 1e6)
            if record.serial is None and audit_id is not None and str(audit_id).isdigit():
                record = replace(record, serial=int(audit_id))
            out.append(record)
    return out


def dedupe(records: Iterable[AvcRecord]) -> list[AvcRecord]:
    """Drop repeats of one record seen through two sources (journal audit + kernel log)."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for r in records:
        ts = round(r.timestamp, 3) if r.timestamp is not None else None
        key = (r.rtype, ts, r.serial, r.verdict, r.perms, r.scontext, r.tcontext, r.tclass)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


# --- grouping --------------------------------------------------------------------------

GroupKey = tuple[str, str, str, str, tuple[str, ...], str]


@dataclass
class DenialGroup:
    """Records that share (kind, source type, target type, class, perms, comm)."""

    kind: Literal["denial", "error"]
    stype: str
    ttype: str
    tclass: str
    perms: tuple[str, ...]
    comm: str
    count: int = 0
    first: float | None = None
    last: float | None = None
    permissive: set[bool | None] = field(default_factory=set)
    exes: set[str] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)
    rtypes: set[str] = field(default_factory=set)
    error: str | None = None

    def add(self, r: AvcRecord) -> None:
        self.count += 1
        self.rtypes.add(r.rtype)
        self.permissive.add(r.permissive)
        if r.exe:
            self.exes.add(r.exe)
        where = r.path or r.name
        if where and where not in self.paths and len(self.paths) < 3:
            self.paths.append(where)
        if r.timestamp is not None:
            self.first = r.timestamp if self.first is None else min(self.first, r.timestamp)
            self.last = r.timestamp if self.last is None else max(self.last, r.timestamp)
        if self.error is None:
            self.error = r.error

    @property
    def hint(self) -> str:
        """An audit2allow-style rule that would allow it (or the error, for SELINUX_ERR)."""
        if self.kind == "error":
            return f"# SELINUX_ERR {self.error or ''} ({self.stype} -> {self.ttype}:{self.tclass})"
        target = "self" if self.ttype == self.stype else self.ttype
        return f"allow {self.stype} {target}:{self.tclass} {{ {' '.join(self.perms)} }};"

    @property
    def blocked(self) -> bool | None:
        """True when some record was enforced (permissive=0), None when nobody said."""
        if False in self.permissive:
            return True
        if True in self.permissive and None not in self.permissive:
            return False
        return None

    def summary(self) -> str:
        mode = {True: "blocked", False: "permissive", None: "mode unknown"}[self.blocked]
        extra = f" exe={','.join(sorted(self.exes))}" if self.exes else ""
        where = f" e.g. {', '.join(self.paths)}" if self.paths else ""
        perms = " ".join(self.perms) or "-"
        return (
            f"{self.count:>5} x {self.kind} comm={self.comm or '?'}{extra} "
            f"{self.stype} -> {self.ttype}:{self.tclass} {{ {perms} }} [{mode}]{where}\n"
            f"        {self.hint}"
        )


def group_key(r: AvcRecord) -> GroupKey:
    kind = "error" if r.is_error else "denial"
    # user-space managers (dbus, systemd) log no comm: their exe names the command
    comm = r.comm or (r.exe.rsplit("/", 1)[-1] if r.exe else "")
    return (kind, r.stype or "?", r.ttype or "?", r.tclass or "?", tuple(sorted(r.perms)), comm)


def group_denials(records: Iterable[AvcRecord]) -> list[DenialGroup]:
    """Denials and SELinux errors grouped, most frequent first (granted/notices dropped)."""
    groups: dict[GroupKey, DenialGroup] = {}
    for r in records:
        if not (r.is_denial or r.is_error):
            continue
        key = group_key(r)
        g = groups.get(key)
        if g is None:
            g = groups[key] = DenialGroup(key[0], *key[1:])  # type: ignore[arg-type]
        g.add(r)
    return sorted(groups.values(), key=lambda g: (-g.count, g.stype, g.ttype, g.tclass, g.perms))


def count_types(records: Sequence[AvcRecord]) -> dict[str, int]:
    """Records per type, plus ``<TYPE>:denied`` counts."""
    out: dict[str, int] = {}
    for r in records:
        out[r.rtype] = out.get(r.rtype, 0) + 1
        if r.is_denial:
            out[f"{r.rtype}:denied"] = out.get(f"{r.rtype}:denied", 0) + 1
    return out


def format_groups(groups: Sequence[DenialGroup], limit: int = 10) -> str:
    lines = [g.summary() for g in groups[:limit]]
    if len(groups) > limit:
        rest = sum(g.count for g in groups[limit:])
        lines.append(f"  ... and {len(groups) - limit} more groups ({rest} records)")
    return "\n".join(lines)

"""Services: running daemons, time sources, audit state and rules, package signatures."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ..base import Strict, Verdict
from ..evidence import Evidence
from ..readplan import ReadPlan, SectionRead
from .common import first_line, shorten, unavailable

_SYSTEMD_UP = ("running", "degraded", "starting", "initializing", "maintenance", "stopping")


@dataclass(frozen=True)
class UnitStates:
    """unit (without .service) -> (is-active, is-enabled); whether systemd answers at all
    (``is-system-running`` prints a state, not an error)."""

    units: dict[str, tuple[str, str]]
    systemd_running: bool


def parse_units(text: str) -> UnitStates:
    units: dict[str, tuple[str, str]] = {}
    running = False
    for line in text.splitlines():
        words = line.split()
        if line.startswith("system "):
            running = running or line.removeprefix("system ").strip() in _SYSTEMD_UP
        elif words and words[0] != "system":
            units[words[0]] = (
                words[1] if len(words) > 1 else "", words[2] if len(words) > 2 else ""
            )
    return UnitStates(units, running)


def parse_audit_rules(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "No rules"]


def parse_audit_status(text: str) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2:
            out[words[0]] = words[1]
    return out or None


def parse_time_sources(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        daemon, _, rest = line.partition(" ")
        if rest.strip():
            out.append((daemon, rest.strip()))
    return out


def parse_package_configs(text: str) -> dict[str, str]:
    """path -> text of tdnf/dnf/yum configuration and repo files."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# file "):
            current = out.setdefault(line.removeprefix("# file ").strip(), [])
        elif current is not None:
            current.append(line)
    return {path: "\n".join(lines) for path, lines in out.items()}


# without /run/systemd/system systemd is not PID 1 (sd_booted): do not ask systemctl
UNITS = SectionRead(
    "units",
    "if [ -d /run/systemd/system ]; then "
    "for u in auditd chronyd chrony systemd-timesyncd ntpd ntp; do "
    'printf "%s %s %s\\n" "$u" "$(systemctl is-active "$u.service" 2>/dev/null)" '
    '"$(systemctl is-enabled "$u.service" 2>/dev/null)"; done; '
    "systemctl is-system-running 2>&1 | sed 's/^/system /'; "
    "else echo 'system offline'; fi",
    parse_units,
)
PROCESSES = SectionRead(
    "processes", "cat /proc/[0-9]*/comm 2>/dev/null | sort -u",
    lambda text: {ln.strip() for ln in text.splitlines()},
)
AUDIT_RULES = SectionRead("audit.rules", "auditctl -l 2>&1", parse_audit_rules, rc_ok=(0,))
AUDIT_STATUS = SectionRead("audit.status", "auditctl -s 2>&1", parse_audit_status, rc_ok=(0,))
TIMESOURCES = SectionRead(
    "timesources",
    "grep -hE '^[[:space:]]*(server|pool|peer|refclock)[[:space:]]' /etc/chrony.conf "
    "/etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources "
    "/etc/ntp.conf 2>/dev/null | sed 's/^/chrony /'; "
    "grep -hE '^[[:space:]]*(NTP|FallbackNTP)=' /etc/systemd/timesyncd.conf "
    "/etc/systemd/timesyncd.conf.d/*.conf 2>/dev/null | sed 's/^/timesyncd /'",
    parse_time_sources,
)
PKGCONF = SectionRead(
    "pkgconf",
    "for f in /etc/tdnf/tdnf.conf /etc/dnf/dnf.conf /etc/yum.conf /etc/yum.repos.d/*.repo; do "
    '[ -f "$f" ] || continue; printf "# file %s\\n" "$f"; cat "$f"; echo; done',
    parse_package_configs,
)


class ServiceCheck(Strict):
    """One of the named services runs: systemd's view, or the process list without systemd."""

    kind: Literal["service"]
    any_of: list[str] = Field(min_length=1)  # unit names without .service
    processes: list[str] = Field(min_length=1)  # their /proc/*/comm names

    def plan(self, plan: ReadPlan) -> None:
        plan.need(UNITS, PROCESSES)

    def reads(self) -> str:
        return "`systemctl is-active` of " + ", ".join(f"{u}.service" for u in self.any_of) + (
            " (the process list where systemd does not run)"
        )

    def expects(self) -> str:
        return "one of " + ", ".join(self.any_of) + " running"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        units = ev.get(UNITS)
        if units is not None and units.systemd_running:
            states = {u: units.units.get(u, ("unknown", ""))[0] for u in self.any_of}
            ok = any(s == "active" for s in states.values())
            shown = ", ".join(f"{u} {s or 'unknown'}" for u, s in states.items())
            return Verdict.judged(ok, shown, expected)
        running = sorted(p for p in self.processes if p in (ev.get(PROCESSES) or set()))
        return Verdict.judged(
            bool(running),
            "systemd is not running; processes: "
            + (", ".join(running) if running else f"none of {', '.join(self.processes)}"),
            expected,
        )


class TimeSourceCheck(Strict):
    """The time daemon's configuration names a source (server, pool, refclock, NTP=)."""

    kind: Literal["time_source"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(TIMESOURCES)

    def reads(self) -> str:
        return "chrony.conf (and its conf.d/sources.d), ntp.conf, timesyncd.conf `NTP=`"

    def expects(self) -> str:
        return "at least one configured time source"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        sources = ev.get(TIMESOURCES) or []
        shown = shorten([f"{d}: {s}" for d, s in sources], 4)
        return Verdict.judged(bool(sources), shown or "no source configured", expected)


class Watch(Strict):
    path: str = Field(pattern=r"^/")
    perms: str = Field(pattern=r"^[rwxa]+$")


class AuditCheck(Strict):
    """The kernel audit state (``auditctl -s``) or the loaded rules (``auditctl -l``)."""

    kind: Literal["audit"]
    rule: Literal["enabled", "immutable", "watches", "syscalls"]
    watches: list[Watch] = Field(default_factory=list)
    syscalls: list[str] = Field(default_factory=list)

    def plan(self, plan: ReadPlan) -> None:
        plan.need(AUDIT_STATUS if self.rule in ("enabled", "immutable") else AUDIT_RULES)
        plan.packages = True  # without auditctl: is the audit package installed at all?

    def reads(self) -> str:
        return "`auditctl -s`" if self.rule in ("enabled", "immutable") else "`auditctl -l`"

    def expects(self) -> str:
        if self.rule == "enabled":
            return "auditing enabled (`enabled 1` or `2`)"
        if self.rule == "immutable":
            return "rules locked until reboot (`enabled 2`, `-e 2`)"
        if self.rule == "watches":
            return "watches on " + ", ".join(f"{w.path} ({w.perms})" for w in self.watches)
        return "rules on the syscalls " + ", ".join(self.syscalls)

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        section = "audit.status" if self.rule in ("enabled", "immutable") else "audit.rules"
        text = ev.text(section)
        rc = ev.rc(section)
        if text is None:
            return unavailable(f"{section} was not read", expected)
        if rc == 127:
            return _auditctl_missing(ev, expected)
        if rc != 0:
            return unavailable(f"auditctl failed (rc {rc}): {first_line(text)}", expected)
        if self.rule in ("enabled", "immutable"):
            status = ev.get(AUDIT_STATUS) or {}
            enabled = status.get("enabled", "?")
            want = ("1", "2") if self.rule == "enabled" else ("2",)
            return Verdict.judged(enabled in want, f"enabled {enabled}", expected)
        rules = ev.get(AUDIT_RULES) or []
        if self.rule == "watches":
            missing = [
                f"{w.path} ({w.perms})" for w in self.watches if not _has_watch(rules, w)
            ]
        else:
            covered = _audited_syscalls(rules)
            missing = [s for s in self.syscalls if s not in covered]
        found = f"{len(rules)} rules loaded"
        if missing:
            found += f"; missing {', '.join(missing)}"
        return Verdict.judged(not missing, found, expected)


AUDIT_PACKAGES = ("audit", "auditd")  # Azure Linux (rpm), Debian: where auditctl comes from


def _auditctl_missing(ev: Evidence, expected: str) -> Verdict:
    """No auditctl: a finding where the package list says audit is not installed; where it
    says it is, the check cannot look (the tool is missing from an installed package)."""
    inventory = ev.inventory
    if inventory is None:
        why = f" ({ev.inventory_problem})" if ev.inventory_problem else ""
        return Verdict(
            "failed", f"auditctl not found: the audit package is not installed{why}", expected
        )
    installed = inventory.versions(AUDIT_PACKAGES)
    if installed:
        shown = ", ".join(f"{n} {v}" for n, v in installed.items())
        return unavailable(
            f"auditctl not found although {shown} is installed ({inventory.where})", expected
        )
    return Verdict(
        "failed",
        f"auditctl not found: no {' or '.join(AUDIT_PACKAGES)} package ({inventory.where})",
        expected,
    )


def _rule_fields(rule: str) -> tuple[list[str], dict[str, list[str]]]:
    """The ``-F name=value`` fields and other options of one ``auditctl -l`` line."""
    tokens = rule.split()
    fields: dict[str, list[str]] = {}
    for i, token in enumerate(tokens[:-1]):
        if token in ("-F", "-S", "-w", "-p", "-a"):
            value = tokens[i + 1]
            if token == "-F":
                name, _, val = value.partition("=")
                fields.setdefault(name, []).append(val)
            else:
                fields.setdefault(token, []).append(value)
    return tokens, fields


def _has_watch(rules: list[str], watch: Watch) -> bool:
    """A ``-w PATH -p PERMS`` watch, or its syscall form ``-F path=|dir= -F perm=``."""
    want = watch.path.rstrip("/") or "/"
    for rule in rules:
        _, f = _rule_fields(rule)
        paths = f.get("-w", []) + f.get("path", []) + f.get("dir", [])
        perms = "".join(f.get("-p", []) + f.get("perm", []))
        if any((p.rstrip("/") or "/") == want for p in paths) and set(watch.perms) <= set(perms):
            return True
    return False


def _audited_syscalls(rules: list[str]) -> set[str]:
    """Syscalls of ``-a always,exit`` rules for the 64-bit ABI (or any ABI)."""
    out: set[str] = set()
    for rule in rules:
        _, f = _rule_fields(rule)
        actions = ",".join(f.get("-a", []))
        if "always" not in actions or "exit" not in actions:
            continue
        arches = f.get("arch", [])
        if arches and not any(a in ("b64", "x86_64", "aarch64") for a in arches):
            continue
        for value in f.get("-S", []):
            out.update(s for s in value.split(",") if s)
    return out


class GpgCheck(Strict):
    """Package signature checking in tdnf/dnf: globally, per repository, repository metadata."""

    kind: Literal["gpgcheck"]
    what: Literal["main", "repos", "repo_metadata"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(PKGCONF)
        plan.packages = True  # an image without a package tool keeps SPDX manifests instead

    def reads(self) -> str:
        if self.what == "main":
            return "`[main]` of /etc/tdnf/tdnf.conf (and of /etc/dnf/dnf.conf, /etc/yum.conf)"
        return "every enabled repository in /etc/yum.repos.d/*.repo"

    def expects(self) -> str:
        return {
            "main": "`gpgcheck=1` in `[main]` of every package tool's configuration",
            "repos": "no enabled repository with `gpgcheck=0`",
            "repo_metadata": "`repo_gpgcheck=1` on every enabled repository",
        }[self.what]

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        configs = ev.get(PKGCONF) or {}
        mains = {p: t for p, t in configs.items() if not p.endswith(".repo")}
        repos = {p: t for p, t in configs.items() if p.endswith(".repo")}
        if not mains:
            return _no_package_tool(ev, expected)
        if self.what == "main":
            values = {p: _ini(t).get("main", {}).get("gpgcheck") for p, t in mains.items()}
            off = [f"{p}: gpgcheck={v if v is not None else '(unset)'}" for p, v in values.items()
                   if not _true(v)]  # fmt: skip
            on = [f"{p}: gpgcheck={v}" for p, v in values.items() if _true(v)]
            return Verdict.judged(not off, shorten(off or on), expected)
        if not repos:
            return unavailable("no repository files in /etc/yum.repos.d", expected)
        key = "gpgcheck" if self.what == "repos" else "repo_gpgcheck"
        enabled: list[str] = []
        bad: list[str] = []
        for path, text in repos.items():
            for name, options in _ini(text).items():
                if name == "main" or not _true(options.get("enabled", "1")):
                    continue
                enabled.append(name)
                value = options.get(key)
                if (self.what == "repos" and value is not None and not _true(value)) or (
                    self.what == "repo_metadata" and not _true(value)
                ):
                    shown = value if value is not None else "(unset)"
                    bad.append(f"{name} ({path}): {key}={shown}")
        if not enabled:
            return Verdict("not_applicable", "no enabled repository", expected)
        if bad:
            found = shorten(bad)
        elif self.what == "repo_metadata":
            found = f"{len(enabled)} enabled repositories, all with {key}=1"
        else:
            found = f"{len(enabled)} enabled repositories, none with {key}=0"
        return Verdict.judged(not bad, found, expected)


def _no_package_tool(ev: Evidence, expected: str) -> Verdict:
    """No tdnf/dnf/yum configuration. An image whose packages are listed in SPDX manifests
    (ACL) installs nothing at run time: nothing to judge on the host. Anywhere else the
    check cannot look (an ERROR), as before."""
    none = "no /etc/tdnf/tdnf.conf, /etc/dnf/dnf.conf or /etc/yum.conf"
    inventory = ev.inventory
    if inventory is not None and inventory.source == "spdx":
        return Verdict(
            "not_applicable",
            f"{none}: the image has no package tool; its packages are listed in "
            f"{inventory.where} and change only with the image build, where signatures "
            "are checked",
            expected,
        )
    if inventory is not None:
        return unavailable(f"{none}: no RPM package tool (packages: {inventory.where})", expected)
    return unavailable(f"{none}: no RPM package tool", expected)


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "yes", "true", "on")


def _ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    return {s: dict(parser.items(s)) for s in parser.sections()}

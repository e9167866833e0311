"""Accounts: /etc/passwd and /etc/shadow rules, login.defs, sudoers."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ..base import Compare, Strict, Verdict
from ..evidence import Evidence, to_int
from ..readplan import ReadPlan, SectionRead
from .common import shorten, unavailable


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class ShadowEntry:
    """One /etc/shadow line with the hash replaced by its kind (EMPTY, LOCKED, HASH)."""

    name: str
    kind: str
    max_days: int | None


def _rows(text: str, fields: int) -> list[list[str]] | None:
    """The colon-separated lines with at least ``fields`` fields (None: nothing printed)."""
    if not text:
        return None
    return [parts for parts in (line.split(":") for line in text.splitlines())
            if len(parts) >= fields]


def parse_passwd(text: str) -> list[PasswdEntry] | None:
    rows = _rows(text, 7)
    if rows is None:
        return None
    return [PasswdEntry(p[0], p[1], int(p[2]), int(p[3]), p[5], p[6]) for p in rows
            if to_int(p[2]) is not None and to_int(p[3]) is not None]


def parse_shadow(text: str) -> list[ShadowEntry] | None:
    rows = _rows(text, 5)
    if rows is None:
        return None
    return [ShadowEntry(p[0], p[1], to_int(p[4])) for p in rows
            if p[1] in ("EMPTY", "LOCKED", "HASH")]


def parse_login_defs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2:
            out[words[0]] = words[1]
    return out


PASSWD = SectionRead("passwd", "cat /etc/passwd", parse_passwd)
SHADOW = SectionRead(
    "shadow",
    "awk -F: '{h=$2; k=(h==\"\")?\"EMPTY\":((h ~ /^[!*]/)?\"LOCKED\":\"HASH\"); "
    "print $1\":\"k\":\"$3\":\"$4\":\"$5\":\"$6\":\"$7\":\"$8}' /etc/shadow",
    parse_shadow,
)
LOGIN_DEFS = SectionRead(  # grep: 1 = no lines
    "login.defs", "grep -Ev '^[[:space:]]*(#|$)' /etc/login.defs", parse_login_defs,
    rc_ok=(0, 1),
)
SUDOERS = SectionRead(
    "sudoers",
    "grep -hE '^[[:space:]]*Defaults|NOPASSWD|!authenticate' /etc/sudoers "
    "/etc/sudoers.d/* 2>/dev/null",
    lambda text: [ln.strip() for ln in text.splitlines() if ln.strip()],
)

AccountRule = Literal[
    "no_empty_passwords",
    "shadowed_passwords",
    "uid0_only_root",
    "root_gid0",
    "unique_uids",
    "unique_names",
    "system_accounts_no_login",
    "password_max_days",
]
# Accounts whose shell is a command, not a login (the CaC rule no_shelllogin_for_systemaccounts)
_SPECIAL_SHELLS = {"sync": "/bin/sync", "shutdown": "/sbin/shutdown", "halt": "/sbin/halt"}
_NO_LOGIN = re.compile(r"(^|/)(nologin|false)$")


class AccountsCheck(Strict):
    """A rule over /etc/passwd and /etc/shadow (hashes never leave the host)."""

    kind: Literal["accounts"]
    rule: AccountRule
    max_days: int | None = None  # password_max_days

    def plan(self, plan: ReadPlan) -> None:
        plan.need(PASSWD)
        if self.rule in ("no_empty_passwords", "password_max_days"):
            plan.need(SHADOW)
        if self.rule == "system_accounts_no_login":
            plan.need(LOGIN_DEFS)

    def reads(self) -> str:
        if self.rule in ("no_empty_passwords", "password_max_days"):
            return "/etc/passwd, /etc/shadow (each hash reduced on the host to empty/locked/set)"
        if self.rule == "system_accounts_no_login":
            return "/etc/passwd and `UID_MIN` of /etc/login.defs"
        return "/etc/passwd"

    def expects(self) -> str:
        return {
            "no_empty_passwords": "no account with an empty password field",
            "shadowed_passwords": "every account's password field in /etc/passwd is `x`",
            "uid0_only_root": "root is the only account with UID 0",
            "root_gid0": "root's primary group is GID 0",
            "unique_uids": "no two accounts share a UID",
            "unique_names": "no two accounts share a name",
            "system_accounts_no_login": "accounts below UID_MIN (except root, sync, shutdown, "
            "halt) have nologin or false as shell",
            "password_max_days": f"every account with a password must change it within "
            f"{self.max_days} days",
        }[self.rule]

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        users = ev.get(PASSWD)
        if users is None:
            return unavailable("cannot read /etc/passwd", expected)
        if self.rule == "no_empty_passwords":
            shadow = ev.get(SHADOW)
            if shadow is None:
                return unavailable("cannot read /etc/shadow", expected)
            empty = [s.name for s in shadow if s.kind == "EMPTY"]
            empty += [u.name for u in users if u.password == ""]
            found = f"empty password: {shorten(empty)}" if empty else (
                f"{len(shadow)} accounts, none with an empty password"
            )
            return Verdict.judged(not empty, found, expected)
        if self.rule == "shadowed_passwords":
            bad = [u.name for u in users if u.password != "x"]
            return Verdict.judged(
                not bad,
                f"password field not x: {shorten(bad)}" if bad else f"{len(users)} accounts, all x",
                expected,
            )
        if self.rule == "uid0_only_root":
            zero = [u.name for u in users if u.uid == 0]
            return Verdict.judged(zero == ["root"], f"UID 0: {', '.join(zero) or 'none'}", expected)
        if self.rule == "root_gid0":
            root = next((u for u in users if u.name == "root"), None)
            if root is None:
                return Verdict("failed", "no root account in /etc/passwd", expected)
            return Verdict.judged(root.gid == 0, f"root has GID {root.gid}", expected)
        if self.rule in ("unique_uids", "unique_names"):
            key = "uid" if self.rule == "unique_uids" else "name"
            counts = Counter(str(getattr(u, key)) for u in users)
            dup = sorted(k for k, n in counts.items() if n > 1)
            found = f"{len(users)} accounts, no shared {key}"
            if dup:
                found = f"shared {key}s: {shorten(dup)}"
            return Verdict.judged(not dup, found, expected)
        if self.rule == "system_accounts_no_login":
            defs = ev.get(LOGIN_DEFS) or {}
            uid_text = defs.get("UID_MIN", "")
            uid_min = int(uid_text) if uid_text.isdigit() else 1000
            bad = [
                f"{u.name} ({u.uid}, {u.shell})" for u in users
                if u.uid < uid_min and u.name != "root"
                and _SPECIAL_SHELLS.get(u.name) != u.shell and not _NO_LOGIN.search(u.shell)
            ]  # fmt: skip
            found = f"login shells: {shorten(bad)}" if bad else f"none below UID {uid_min}"
            return Verdict.judged(not bad, found, expected)
        # password_max_days: only accounts that have a password at all
        shadow = ev.get(SHADOW)
        if shadow is None:
            return unavailable("cannot read /etc/shadow", expected)
        with_password = [s for s in shadow if s.kind == "HASH"]
        if not with_password:
            return Verdict(
                "not_applicable", "no account has a password (key-based logins only)", expected
            )
        limit = self.max_days or 0
        bad = [
            f"{s.name} ({'never' if s.max_days is None or s.max_days >= 99999 else s.max_days})"
            for s in with_password
            if s.max_days is None or s.max_days > limit
        ]
        found = f"maximum age over {limit} days: {shorten(bad)}" if bad else (
            f"every account with a password ({len(with_password)}) within {limit} days"
        )
        return Verdict.judged(not bad, found, expected)


class LoginDefsCheck(Strict):
    """A setting of /etc/login.defs (defaults for new accounts and password aging)."""

    kind: Literal["login_defs"]
    key: str = Field(pattern=r"^[A-Z_]+$")
    expect: Compare

    def plan(self, plan: ReadPlan) -> None:
        plan.need(LOGIN_DEFS)

    def reads(self) -> str:
        return f"`{self.key}` in /etc/login.defs"

    def expects(self) -> str:
        return f"`{self.key}` {self.expect.describe()}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        defs = ev.get(LOGIN_DEFS)
        if defs is None:
            return unavailable("cannot read /etc/login.defs", expected)
        value = defs.get(self.key)
        if value is None:
            return Verdict("failed", f"{self.key} not set in /etc/login.defs", expected)
        return Verdict.judged(self.expect.matches(value), f"{self.key} {value}", expected)


class SudoersCheck(Strict):
    """A rule over /etc/sudoers and /etc/sudoers.d (Defaults lines and NOPASSWD grants)."""

    kind: Literal["sudoers"]
    rule: Literal["use_pty", "logfile", "no_nopasswd"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(SUDOERS)

    def reads(self) -> str:
        return "`Defaults` and `NOPASSWD` lines of /etc/sudoers and /etc/sudoers.d/*"

    def expects(self) -> str:
        return {
            "use_pty": "`Defaults use_pty`",
            "logfile": "`Defaults logfile=...`",
            "no_nopasswd": "no NOPASSWD or !authenticate grants",
        }[self.rule]

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        lines = ev.get(SUDOERS)
        if lines is None:
            return unavailable("cannot read /etc/sudoers", expected)
        defaults = [ln for ln in lines if ln.startswith("Defaults")]
        if self.rule == "use_pty":
            ok = any(re.search(r"(?<![!\w])use_pty\b", ln) for ln in defaults)
            return Verdict.judged(ok, "Defaults: " + (shorten(defaults) or "none"), expected)
        if self.rule == "logfile":
            ok = any(re.search(r"\blogfile\s*=", ln) for ln in defaults)
            return Verdict.judged(ok, "Defaults: " + (shorten(defaults) or "none"), expected)
        grants = [ln for ln in lines if "NOPASSWD" in ln or "!authenticate" in ln]
        return Verdict.judged(
            not grants, "grants: " + (shorten(grants) or "none without a password"), expected
        )

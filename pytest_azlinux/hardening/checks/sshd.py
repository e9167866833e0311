"""sshd: effective settings (``sshd -T``), its config file and host keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...posture.sshd import LISTENER_CONFIG, parse_sshd_t
from ..base import Compare, Strict, Verdict
from ..evidence import Evidence, FileStat, parse_stats
from ..readplan import STAT_FORMAT, ReadPlan, SectionRead
from .common import Ownership, describe_stat, first_line, shorten, unavailable

DEFAULT_CONFIG = "/etc/ssh/sshd_config"


def _config(text: str) -> tuple[str, FileStat | None]:
    lines = text.splitlines()
    path = lines[0].strip() if lines else DEFAULT_CONFIG
    return path, parse_stats(text).get(path)


# the config file of the running listener (-f), else the default; its effective values
SSHD = SectionRead(
    "sshd", LISTENER_CONFIG + '\nsshd -T -f "$conf" 2>&1', lambda t: parse_sshd_t(t) or None,
    rc_ok=(0,),
)
# that config file and its stat (``conf`` is set by SSHD, which runs first)
SSHD_CONFIG = SectionRead(
    "sshd.config", f'echo "$conf"; stat -c {STAT_FORMAT} "$conf"', _config
)
# the effective host keys (sshd -T) and their public halves
SSHD_HOSTKEYS = SectionRead(
    "sshd.hostkeys",
    'sshd -T -f "${conf:-/etc/ssh/sshd_config}" 2>/dev/null | '
    "sed -n 's/^hostkey //p' | while read -r k; do "
    f'stat -c {STAT_FORMAT} "$k" "$k.pub"; done',
    parse_stats,
)


def config_of(ev: Evidence) -> tuple[str, FileStat | None]:
    """The config file of the running sshd (its ``-f``, else the default) and its stat."""
    return ev.get(SSHD_CONFIG) or (DEFAULT_CONFIG, None)


class SshdCheck(Strict):
    """One effective sshd setting, as ``sshd -T`` prints it for the running sshd's config."""

    kind: Literal["sshd"]
    key: str = Field(pattern=r"^[a-z0-9]+$")  # lower-case, as sshd -T prints it
    expect: Compare

    def plan(self, plan: ReadPlan) -> None:
        plan.need(SSHD, SSHD_CONFIG)

    def reads(self) -> str:
        return f"`{self.key}` from `sshd -T` (effective values of the running sshd's config)"

    def expects(self) -> str:
        return f"`{self.key}` {self.expect.describe()}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        settings = ev.get(SSHD)
        if settings is None:
            return unavailable(f"sshd -T failed: {first_line(ev.text('sshd'))}", expected)
        value = settings.get(self.key)
        if value is None:
            return unavailable(f"sshd -T prints no {self.key}", expected)
        where = f"(sshd -T -f {config_of(ev)[0]})"
        if self.expect.none_of is not None:
            bad = self.expect.offending(value)
            found = f"{self.key} {value}"
            if bad and "," in value:
                found += f": {', '.join(bad)} not allowed"
            return Verdict.judged(not bad, f"{found} {where}", expected)
        return Verdict.judged(self.expect.matches(value), f"{self.key} {value} {where}", expected)


class SshdConfigFileCheck(Ownership):
    """Mode and ownership of the config file the running sshd was started with."""

    kind: Literal["sshd_config_file"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(SSHD, SSHD_CONFIG)

    def reads(self) -> str:
        return "`stat` of the running sshd's config file (its `-f`, else /etc/ssh/sshd_config)"

    def expects(self) -> str:
        return self._expected("the sshd config file")

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        path, st = config_of(ev)
        if st is None:
            return unavailable(f"cannot stat {path}", expected)
        bad = self._offending([st])
        return Verdict.judged(not bad, describe_stat(st), expected)


class SshdHostKeysCheck(Ownership):
    """Mode and ownership of the host keys the running sshd uses (``HostKey`` of ``sshd -T``)."""

    kind: Literal["sshd_host_keys"]
    part: Literal["private", "public"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(SSHD, SSHD_CONFIG, SSHD_HOSTKEYS)

    def reads(self) -> str:
        return f"`stat` of every `HostKey` in `sshd -T` ({self.part} halves)"

    def expects(self) -> str:
        return self._expected(f"{self.part} host keys")

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        if ev.get(SSHD) is None:
            return unavailable(f"sshd -T failed: {first_line(ev.text('sshd'))}", expected)
        keys = [
            st for path, st in (ev.get(SSHD_HOSTKEYS) or {}).items()
            if path.endswith(".pub") == (self.part == "public")
        ]  # fmt: skip
        if not keys:
            return unavailable(f"no {self.part} host key files found from sshd -T", expected)
        bad = self._offending(keys)
        found = shorten(bad) if bad else shorten([describe_stat(k) for k in keys])
        return Verdict.judged(not bad, found, expected)

"""sshd: effective settings (``sshd -T``), its config file and host keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import Compare, Strict, Verdict
from ..evidence import Evidence
from ..readplan import ReadPlan
from .common import Ownership, describe_stat, first_line, shorten, unavailable


class SshdCheck(Strict):
    """One effective sshd setting, as ``sshd -T`` prints it for the running sshd's config."""

    kind: Literal["sshd"]
    key: str = Field(pattern=r"^[a-z0-9]+$")  # lower-case, as sshd -T prints it
    expect: Compare

    def plan(self, plan: ReadPlan) -> None:
        plan.need("sshd")

    def reads(self) -> str:
        return f"`{self.key}` from `sshd -T` (effective values of the running sshd's config)"

    def expects(self) -> str:
        return f"`{self.key}` {self.expect.describe()}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        settings = ev.sshd
        if settings is None:
            return unavailable(f"sshd -T failed: {first_line(ev.text('sshd'))}", expected)
        value = settings.get(self.key)
        if value is None:
            return unavailable(f"sshd -T prints no {self.key}", expected)
        where = f"(sshd -T -f {ev.sshd_config})"
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
        plan.need("sshd")

    def reads(self) -> str:
        return "`stat` of the running sshd's config file (its `-f`, else /etc/ssh/sshd_config)"

    def expects(self) -> str:
        return self._expected("the sshd config file")

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        st = ev.sshd_config_stat
        if st is None:
            return unavailable(f"cannot stat {ev.sshd_config}", expected)
        bad = self._offending([st])
        return Verdict.judged(not bad, describe_stat(st), expected)


class SshdHostKeysCheck(Ownership):
    """Mode and ownership of the host keys the running sshd uses (``HostKey`` of ``sshd -T``)."""

    kind: Literal["sshd_host_keys"]
    part: Literal["private", "public"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need("sshd", "sshd.hostkeys")

    def reads(self) -> str:
        return f"`stat` of every `HostKey` in `sshd -T` ({self.part} halves)"

    def expects(self) -> str:
        return self._expected(f"{self.part} host keys")

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        if ev.sshd is None:
            return unavailable(f"sshd -T failed: {first_line(ev.text('sshd'))}", expected)
        keys = [
            st for path, st in ev.sshd_host_keys.items()
            if path.endswith(".pub") == (self.part == "public")
        ]  # fmt: skip
        if not keys:
            return unavailable(f"no {self.part} host key files found from sshd -T", expected)
        bad = self._offending(keys)
        found = shorten(bad) if bad else shorten([describe_stat(k) for k in keys])
        return Verdict.judged(not bad, found, expected)

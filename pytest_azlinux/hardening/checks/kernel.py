"""The kernel: sysctls, modules, the command line, LSMs, the OpenSSL FIPS provider."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from ...posture.fips import Provider, parse_providers
from ...posture.lsm import parse_lsm
from ..base import Compare, Strict, Verdict
from ..evidence import Evidence
from ..readplan import ReadPlan, SectionRead, sysctl_path
from .common import IfAbsent, first_line, unavailable


def _filesystems(text: str) -> set[str]:
    return {line.split()[-1] for line in text.splitlines() if line.split()}


FILESYSTEMS = SectionRead("filesystems", "cat /proc/filesystems", _filesystems)
LSM = SectionRead("lsm", "cat /sys/kernel/security/lsm && echo", parse_lsm, rc_ok=(0,))
OPENSSL = SectionRead("openssl", "openssl list -providers 2>&1", parse_providers, rc_ok=(0,))


@dataclass(frozen=True)
class ModuleEvidence:
    """What a host shows about one kernel module."""

    name: str
    modprobe: str  # ``modprobe -n -v`` output
    modprobe_rc: int | None
    loaded: bool
    builtin: bool
    module_support: bool  # /proc/modules exists (CONFIG_MODULES)
    filesystem_registered: bool  # listed in /proc/filesystems (a filesystem built in or loaded)


def module_evidence(ev: Evidence, name: str) -> ModuleEvidence | None:
    """The keyed module reads of ``name`` (None: not read)."""
    section = f"module:{name}"
    if section not in ev.sections:
        return None
    underscored = name.replace("-", "_")
    loaded_text = ev.sections.get("modules.loaded", "")
    loaded = any(line.split(" ", 1)[0] == underscored for line in loaded_text.splitlines())
    builtin = any(
        re.search(rf"/{re.escape(name).replace('-', '[-_]')}\.ko", line)
        for line in ev.sections.get("modules.builtin", "").splitlines()
    )
    return ModuleEvidence(
        name=name,
        modprobe=ev.sections[section].strip(),
        modprobe_rc=ev.rc(section),
        loaded=loaded,
        builtin=builtin,
        module_support=bool(loaded_text.strip()),
        filesystem_registered=name in (ev.get(FILESYSTEMS) or set()),
    )


class SysctlCheck(Strict):
    """A kernel parameter under /proc/sys (the running value, not the config files)."""

    kind: Literal["sysctl"]
    key: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")
    expect: Compare
    if_absent: IfAbsent = "fail"
    absent_means: str = ""  # why a missing key is not applicable (with if_absent: skip)

    @field_validator("absent_means")
    @classmethod
    def _reason(cls, value: str) -> str:
        return value.strip()

    def plan(self, plan: ReadPlan) -> None:
        plan.sysctls.add(self.key)

    def reads(self) -> str:
        return f"`{sysctl_path(self.key)}`"

    def expects(self) -> str:
        return f"`{self.key}` {self.expect.describe()}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        if not ev.has("sysctl"):
            return unavailable("the sysctl values were not read", expected)
        value = ev.sysctl.get(self.key)
        if value is None:
            found = f"{sysctl_path(self.key)} does not exist"
            if self.if_absent == "skip":
                return Verdict("not_applicable", f"{found}: {self.absent_means}", expected)
            return Verdict("failed", found, expected)
        return Verdict.judged(self.expect.matches(value), f"{self.key} = {value}", expected)


_INSTALL_FALSE = re.compile(r"^install\s+(/usr)?/s?bin/(false|true)\b", re.MULTILINE)


class ModuleCheck(Strict):
    """A kernel module that must not load: absent from the kernel, or stopped by an
    ``install NAME /bin/false`` directive (``blacklist`` alone does not stop ``modprobe NAME``)."""

    kind: Literal["kernel_module"]
    module: str = Field(pattern=r"^[a-z0-9_-]+$")

    def plan(self, plan: ReadPlan) -> None:
        plan.modules.add(self.module)
        plan.need(FILESYSTEMS)

    def reads(self) -> str:
        return (
            f"`modprobe -n -v {self.module}`, /proc/modules, modules.builtin, "
            "/proc/filesystems, /sys/module"
        )

    def expects(self) -> str:
        return f"{self.module} not loaded, not built in, refused by modprobe (or no such module)"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        m = module_evidence(ev, self.module)
        if m is None:
            return unavailable(f"module {self.module} was not read", expected)
        sysfs = f"/sys/module/{self.module.replace('-', '_')}"
        in_sysfs = any(
            line.strip() == sysfs for line in (ev.text("modules.sysfs") or "").splitlines()
        )
        if m.loaded:
            return Verdict("failed", f"{self.module} is loaded (/proc/modules)", expected)
        if m.builtin or m.modprobe.startswith("builtin "):
            return Verdict(
                "failed",
                f"{self.module} is built into the kernel (modules.builtin): modprobe settings "
                "cannot keep it out",
                expected,
            )
        if m.filesystem_registered or in_sysfs:
            where = "/proc/filesystems" if m.filesystem_registered else sysfs
            return Verdict("failed", f"{self.module} is in the running kernel ({where})", expected)
        refused = _INSTALL_FALSE.search(m.modprobe)
        if refused:  # modprobe may list the module's dependencies before the directive
            return Verdict("passed", f"modprobe {self.module}: {refused.group(0)}", expected)
        if "insmod " in m.modprobe:
            return Verdict(
                "failed",
                f"{self.module} is loadable: modprobe would run {first_line(m.modprobe)}",
                expected,
            )
        if "not found" in m.modprobe and m.modprobe_rc != 0:
            detail = (
                "the kernel has no loadable module support (no /proc/modules)"
                if not m.module_support
                else "no module file"
            )
            return Verdict(
                "passed", f"{self.module} is not in this kernel: {detail}, not built in", expected
            )
        if m.modprobe_rc == 127 or "not found" in m.modprobe:
            return unavailable(f"modprobe: {first_line(m.modprobe)}", expected)
        return unavailable(
            f"modprobe -n -v {self.module} (rc {m.modprobe_rc}): {first_line(m.modprobe)}",
            expected,
        )


class CmdlineCheck(Strict):
    """A ``key=value`` on the kernel command line (the last one wins, as in the kernel)."""

    kind: Literal["cmdline"]
    key: str
    expect: Compare

    def plan(self, plan: ReadPlan) -> None:
        """The command line comes with the host's facts (read once per host anyway)."""

    def reads(self) -> str:
        return "`/proc/cmdline` (from the host's image facts)"

    def expects(self) -> str:
        return f"`{self.key}=` {self.expect.describe()}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        if ev.facts is None:
            return unavailable("the kernel command line was not read", expected)
        value = ev.facts.cmdline_value(self.key)
        if value is None:
            return Verdict("failed", f"no {self.key}= on the kernel command line", expected)
        return Verdict.judged(self.expect.matches(value), f"{self.key}={value}", expected)


class LsmCheck(Strict):
    """One of the named Linux security modules is active."""

    kind: Literal["lsm"]
    any_of: list[str] = Field(min_length=1)

    def plan(self, plan: ReadPlan) -> None:
        plan.need(LSM)

    def reads(self) -> str:
        return "`/sys/kernel/security/lsm`"

    def expects(self) -> str:
        return f"an active LSM among {', '.join(self.any_of)}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        active = ev.get(LSM)
        if active is None:
            return unavailable(
                "cannot read /sys/kernel/security/lsm (securityfs not mounted?)", expected
            )
        ok = any(name in active for name in self.any_of)
        return Verdict.judged(ok, "active LSMs: " + (",".join(active) or "none"), expected)


class OpensslFipsCheck(Strict):
    """An active fips or SymCrypt OpenSSL provider (as AgentBaker's e2e validates)."""

    kind: Literal["openssl_fips_provider"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(OPENSSL)

    def reads(self) -> str:
        return "`openssl list -providers`"

    def expects(self) -> str:
        return "an active fips or symcrypt provider"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        text = ev.text("openssl")
        rc = ev.rc("openssl")
        if text is None or rc == 127:
            return unavailable("openssl is not installed", expected)
        if rc != 0:
            return unavailable(f"openssl list -providers failed: {first_line(text)}", expected)
        providers: list[Provider] = ev.get(OPENSSL) or []
        ok = any(p.is_fips and p.status == "active" for p in providers)
        found = ", ".join(f"{p.id} ({p.status or 'no status'})" for p in providers)
        return Verdict.judged(ok, f"providers: {found or 'none'}", expected)

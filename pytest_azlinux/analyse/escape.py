"""Container-escape probe output -> findings with severities -> a verdict per profile.

Pure: no I/O. The probe (``pytest_azlinux/probes/escape.sh``) reports *observations*
(``found`` true/false/null per check); this module decides what each means for a container
that is supposed to run at a given security profile:

- ``restricted``  a Pod Security Standards *restricted* workload (non-root, no capabilities,
  no_new_privs, RuntimeDefault seccomp, no host namespaces or paths);
- ``baseline``    a default container (root, the runtime's default capability set, the
  runtime's default seccomp profile);
- ``privileged``  a privileged node-debug container (all capabilities, host namespaces, host
  ``/`` mounted): its access is expected and reported as such, never as a failure.

The same functions serve containers started by runc on a host and Kubernetes pods: hand
:func:`verdict_for` the probe's output lines and the profile name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Literal

from ..errors import (
    ProbeOutputError,
)

Profile = Literal["restricted", "baseline", "privileged"]
PROFILES: tuple[Profile, ...] = ("restricted", "baseline", "privileged")



class Severity(StrEnum):
    """How much a finding matters for the profile, most severe first."""

    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    EXPECTED = "expected"  # access that the profile grants on purpose (privileged)
    OK = "ok"  # the risky condition is absent
    SKIPPED = "skipped"  # the probe could not tell (reason in the detail)

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Observation:
    """One line of probe output."""

    check: str
    found: bool | None
    detail: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """An observation judged for a profile."""

    check: str
    severity: Severity
    found: bool | None
    detail: str
    why: str = ""

    def line(self) -> str:
        why = f" [{self.why}]" if self.why else ""
        return f"{self.severity.value.upper():8} {self.check}: {self.detail}{why}"


@dataclass(frozen=True)
class Verdict:
    """The outcome for one container at one profile."""

    profile: Profile
    outcome: Literal["pass", "warn", "fail"]
    findings: tuple[Finding, ...]
    elapsed_ms: int | None = None

    def with_severity(self, *severities: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity in severities]

    @property
    def failures(self) -> list[Finding]:
        return self.with_severity(Severity.FAIL)

    def finding(self, check: str) -> Finding:
        for f in self.findings:
            if f.check == check:
                return f
        raise KeyError(check)

    def summary(self) -> str:
        """A message listing what was found (FAIL and WARN first, then the rest)."""
        counts = ", ".join(
            f"{n} {s.value}" for s in Severity
            if (n := sum(1 for f in self.findings if f.severity is s))
        )
        head = f"{self.profile} container: {self.outcome.upper()} ({counts})"
        ordered = sorted(self.findings, key=lambda f: f.severity.rank)
        shown = [f.line() for f in ordered if f.severity in (Severity.FAIL, Severity.WARN)]
        if self.profile == "privileged":
            shown += [f.line() for f in ordered if f.severity is Severity.EXPECTED]
        return "\n".join([head, *("  " + s for s in shown)])


# Severity when the risky condition is found, per profile (the catalog's columns; baseline
# follows the Pod Security Standards baseline level). Privileged is EXPECTED unless listed.
F, W, N, E = Severity.FAIL, Severity.WARN, Severity.INFO, Severity.EXPECTED  # N: note
RULES: dict[str, tuple[Severity, Severity, Severity]] = {
    #                     restricted baseline privileged
    "caps.full": (F, F, E),
    "caps.dangerous": (F, F, E),  # baseline: the runtime's default caps are allowed, below
    "caps.bounding": (F, N, E),
    "nnp": (F, N, E),
    "seccomp": (F, W, E),
    "lsm.label": (W, W, E),
    "uid.root": (F, N, E),
    "userns.host": (N, N, E),
    "userns.create": (F, W, E),
    "ns.host_pid": (F, F, E),
    "ns.host_ipc": (F, F, E),
    "ns.host_uts": (F, F, E),
    "ns.host_net": (F, F, E),
    "sock.runtime": (F, F, E),
    "mount.hostpath": (F, F, E),  # only sensitive paths fail; others warn, below
    "procfs.writable": (F, F, E),
    "sysfs.writable": (F, F, E),
    "cgroup.escape": (F, F, E),
    "dev.block": (F, F, E),
    "dev.mem": (F, F, E),
    "dev.mknod": (F, N, E),
    "kmod": (F, F, E),
    "ptrace.host": (F, F, E),
    "syscalls.sensitive": (F, W, E),
    # the runtime's default seccomp profile blocks all three keyring syscalls: FAIL at baseline
    "keyring.host": (F, F, E),
    "sa.token": (W, W, N),
    "imds": (W, W, E),
    "wireserver": (F, F, E),
    "kubelet.api": (F, F, N),
    "sysctl.localnet": (W, W, N),
    "kernel.cves": (N, N, N),
}
REQUIRED_CHECKS = frozenset(RULES)
_CAP_TEXT = (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable "
    "net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio "
    "sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time "
    "sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog "
    "wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore"
)
CAP_NAMES: tuple[str, ...] = tuple(_CAP_TEXT.split())
# containerd pkg/oci/spec.go (defaultUnixCaps; Docker's and CRI-O's defaults are the same
# set): what a baseline container gets
RUNTIME_DEFAULT_CAPS = (
    "chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid",
    "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write",
)
# What each profile may hold: restricted none (Pod Security Standards: drop ALL), baseline
# the runtime's default set, privileged everything.
ALLOWED_CAPS: Mapping[Profile, frozenset[str]] = {
    "restricted": frozenset(),
    "baseline": frozenset(RUNTIME_DEFAULT_CAPS),
    "privileged": frozenset(CAP_NAMES),
}
# The catalog's dangerous capabilities (reference container-escape.md): an extra one FAILs
DANGEROUS_CAPS = frozenset({
    "sys_admin", "sys_ptrace", "sys_module", "dac_read_search", "dac_override", "sys_rawio",
    "mknod", "net_admin", "net_raw", "bpf", "perfmon", "sys_boot", "sys_time",
})
# Capabilities that matter together with a namespace shared with the host: (capability,
# the namespace check, the checks the note goes on, what the two allow together)
COMBINATIONS = (
    ("net_admin", "ns.host_net", ("caps.dangerous", "ns.host_net"),
     "CAP_NET_ADMIN with the host network namespace: can reconfigure the node's interfaces, "
     "routes and firewall"),
    ("sys_ptrace", "ns.host_pid", ("caps.dangerous", "ns.host_pid", "ptrace.host"),
     "CAP_SYS_PTRACE with the host PID namespace: can attach to every host process, read its "
     "memory and reach its files"),
)


def probe_script() -> str:
    """The probe shipped in the package (also what a Kubernetes pod runs)."""
    return resources.files("pytest_azlinux").joinpath("probes", "escape.sh").read_text()


def decode_caps(mask: str | int) -> list[str]:
    """Capability names of a ``CapEff``-style hex mask (unknown bits as ``cap_N``)."""
    value = int(mask, 16) if isinstance(mask, str) else mask
    return [
        CAP_NAMES[i] if i < len(CAP_NAMES) else f"cap_{i}"
        for i in range(value.bit_length()) if value >> i & 1
    ]


def full_cap_mask(cap_last_cap: int) -> int:
    """The full set on this kernel: ``2^(cap_last_cap+1)-1`` (not a fixed ``3fffffffff``)."""
    return (1 << (cap_last_cap + 1)) - 1


def parse_probe_output(lines: str | Iterable[str]) -> list[Observation]:
    """Observations from the probe's stdout; lines that are not JSON objects are errors."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    out: list[Observation] = []
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProbeOutputError(
                f"escape probe output line {number} is not JSON ({exc.msg}): {text[:120]!r}"
            ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("check"), str):
            raise ProbeOutputError(
                f"escape probe output line {number} has no 'check': {text[:120]!r}"
            )
        found = obj.get("found")
        if found is not None and not isinstance(found, bool):
            raise ProbeOutputError(
                f"escape probe output line {number}: 'found' must be a boolean or null"
            )
        data = obj.get("data") or {}
        out.append(Observation(
            check=obj["check"], found=found, detail=str(obj.get("detail", "")),
            data={str(k): str(v) for k, v in data.items()},
        ))
    checks = {o.check for o in out}
    if "probe.done" not in checks:
        raise ProbeOutputError(
            f"escape probe output is incomplete (no probe.done line; {len(out)} checks read)"
        )
    missing = sorted(REQUIRED_CHECKS - checks)
    if missing:
        raise ProbeOutputError(f"escape probe output lacks check(s): {', '.join(missing)}")
    return out


# --- kernel CVEs: indicative only (vendor kernels carry backports) ---------------------------


@dataclass(frozen=True)
class KernelCve:
    cve: str
    what: str
    introduced: tuple[int, int, int]
    mainline_fix: tuple[int, int, int]
    stable_fixes: Mapping[tuple[int, int], int]  # (major, minor) -> first fixed patch level


KERNEL_CVES = (
    KernelCve("CVE-2022-0185", "fsconfig heap overflow (user namespaces)", (5, 1, 0), (5, 17, 0),
              {(5, 16): 2, (5, 15): 16, (5, 10): 93, (5, 4): 173}),
    KernelCve("CVE-2022-0492", "cgroup v1 release_agent without a capability check",
              (2, 6, 24), (5, 17, 0), {}),
    KernelCve("CVE-2022-0847", "Dirty Pipe (page cache overwrite)", (5, 8, 0), (5, 17, 0),
              {(5, 16): 11, (5, 15): 25, (5, 10): 102}),
    KernelCve("CVE-2024-1086", "nf_tables use-after-free (local root)", (3, 15, 0), (6, 8, 0),
              {(6, 7): 3, (6, 6): 15, (6, 1): 76, (5, 15): 149, (5, 10): 209}),
)
RUNC_CVES = (("CVE-2024-21626", "runc working-directory fd leak", (1, 1, 12)),)


def _version(text: str) -> tuple[int, int, int] | None:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def kernel_cves(release: str) -> list[str]:
    """CVEs of the table a kernel release may be exposed to, going by its version alone."""
    version = _version(release)
    if version is None:
        return []
    hits = []
    for c in KERNEL_CVES:
        if version < c.introduced or version >= c.mainline_fix:
            continue
        fixed_patch = c.stable_fixes.get(version[:2])
        if fixed_patch is not None and version[2] >= fixed_patch:
            continue
        hits.append(f"{c.cve} ({c.what}; mainline fix {'.'.join(map(str, c.mainline_fix[:2]))})")
    return hits


def runtime_cves(runtime_version: str | None) -> list[str]:
    version = _version(runtime_version or "")
    if version is None:
        return []
    return [f"{cve} ({what}; fixed in runc {'.'.join(map(str, fix))})"
            for cve, what, fix in RUNC_CVES if version < fix]


# --- judging -------------------------------------------------------------------------------


def _judge(
    obs: Observation, profile: Profile, runtime_version: str | None,
    seen: Mapping[str, Observation],
) -> Finding:
    column = PROFILES.index(profile)
    if obs.check == "kernel.cves":
        hits = kernel_cves(obs.data.get("release", "")) + runtime_cves(runtime_version)
        detail = obs.detail + (
            "; by version only (vendor kernels carry backports): " + "; ".join(hits)
            if hits else "; no CVE of the table by version"
        )
        return Finding(obs.check, Severity.INFO, bool(hits), detail)
    detail = "; ".join([obs.detail, *combination_notes(obs.check, seen)])
    if obs.check == "caps.dangerous":
        return _judge_caps(obs, detail, profile, seen)
    if obs.found is None:
        return Finding(obs.check, Severity.SKIPPED, None, detail)
    if not obs.found:
        return Finding(obs.check, Severity.OK, False, detail)
    rule = RULES.get(obs.check)
    if rule is None:  # a check this analyser does not know (a newer probe)
        return Finding(obs.check, Severity.INFO, True, detail, "unknown check")
    severity = rule[column]
    why = ""
    if profile != "privileged" and obs.check == "mount.hostpath" and not obs.data.get("sensitive"):
        severity, why = Severity.WARN, "no sensitive host path"
    return Finding(obs.check, severity, True, detail, why)


def effective_caps(seen: Mapping[str, Observation]) -> set[str]:
    caps = seen.get("caps.dangerous")
    return set(caps.data.get("effective", "").split()) if caps else set()


def combination_notes(check: str, seen: Mapping[str, Observation]) -> list[str]:
    """``combination: ...`` for each capability held together with the host namespace that
    makes it matter, on the checks concerned."""
    effective = effective_caps(seen)
    notes = []
    for cap, namespace, on, text in COMBINATIONS:
        shared = seen.get(namespace)
        if check in on and cap in effective and shared is not None and shared.found is True:
            notes.append(f"combination: {text}")
    return notes


def capability_findings(
    effective: Iterable[str], profile: Profile, *, uid: str, no_new_privs: str,
    setuid_files: Sequence[str],
) -> tuple[Severity, list[str], list[str]]:
    """Judge effective capabilities against what ``profile`` allows.

    Returns the severity, the capabilities beyond the allowance, and the reasons. Every
    extra capability is flagged (WARN); a catalog-dangerous one FAILs; for a non-root
    process the ones that give root FAIL: CAP_SETUID always (``setresuid(0)`` needs nothing
    else), CAP_SETGID and CAP_SETFCAP when a setuid/setgid-root file is honoured there or
    no_new_privs is off (set-id bits and file capabilities then apply on exec).
    """
    extra = sorted(set(effective) - ALLOWED_CAPS[profile], key=_cap_order)
    if not extra:
        return Severity.OK, [], []
    severity = Severity.WARN
    reasons: list[str] = []
    dangerous = [c for c in extra if c in DANGEROUS_CAPS]
    if dangerous:
        severity = Severity.FAIL
        reasons.append("dangerous: " + " ".join(dangerous))
    if uid != "0":
        how = (f"setuid/setgid-root files honoured ({' '.join(setuid_files[:3])})"
               if setuid_files else "no_new_privs off" if no_new_privs != "1" else "")
        if "setuid" in extra:
            severity = Severity.FAIL
            reasons.append(f"gives root: CAP_SETUID lets uid {uid} call setresuid(0)")
        for cap in ("setgid", "setfcap"):
            if cap in extra and how:
                severity = Severity.FAIL
                reasons.append(f"gives root: CAP_{cap.upper()} with {how}")
    return severity, extra, reasons


def _cap_order(name: str) -> int:
    return CAP_NAMES.index(name) if name in CAP_NAMES else len(CAP_NAMES)


def _judge_caps(
    obs: Observation, detail: str, profile: Profile, seen: Mapping[str, Observation]
) -> Finding:
    effective = obs.data.get("effective", "").split()
    # probe version 1 put uid and no_new_privs only on their own checks
    uid_line = seen["uid.root"].data.get("uid", "") if "uid.root" in seen else ""
    uid = obs.data.get("uid") or (uid_line.split()[1:2] or ["?"])[0]
    nnp = obs.data.get("no_new_privs") or (
        seen["nnp"].data.get("no_new_privs", "") if "nnp" in seen else "")
    severity, extra, reasons = capability_findings(
        effective, profile, uid=uid, no_new_privs=nnp,
        setuid_files=obs.data.get("setuid_files", "").split())
    if profile == "privileged":
        return Finding(obs.check, Severity.EXPECTED if effective else Severity.OK,
                       bool(effective), detail)
    allowed = "none" if profile == "restricted" else "the runtime's default set"
    if not extra:
        if not effective:
            return Finding(obs.check, Severity.OK, False, detail)
        return Finding(obs.check, Severity.INFO, True, detail,
                       f"only capabilities {profile} allows ({allowed})")
    why = f"beyond what {profile} allows ({allowed}): {' '.join(extra)}"
    return Finding(obs.check, severity, True, detail, "; ".join([why, *reasons]))


def analyse(
    observations: Iterable[Observation], profile: Profile, *, runtime_version: str | None = None
) -> Verdict:
    """Judge probe observations for a profile: FAIL if any finding fails, WARN if any warns."""
    if profile not in PROFILES:
        raise ValueError(f"unknown container profile {profile!r} (expected {', '.join(PROFILES)})")
    findings: list[Finding] = []
    elapsed: int | None = None
    observations = list(observations)
    seen = {o.check: o for o in observations}
    for obs in observations:
        if obs.check == "probe.done":
            ms = obs.data.get("elapsed_ms", "")
            elapsed = int(ms) if ms.isdigit() else None
            continue
        findings.append(_judge(obs, profile, runtime_version, seen))
    severities = {f.severity for f in findings}
    outcome: Literal["pass", "warn", "fail"] = (
        "fail" if Severity.FAIL in severities else "warn" if Severity.WARN in severities else "pass"
    )
    return Verdict(profile, outcome, tuple(findings), elapsed)


def verdict_for(
    lines: str | Iterable[str], profile: str, *, runtime_version: str | None = None
) -> Verdict:
    """The seam for every run mode (runc on a host, a Kubernetes pod): probe output -> verdict."""
    if profile not in PROFILES:
        raise ValueError(f"unknown container profile {profile!r} (expected {', '.join(PROFILES)})")
    return analyse(parse_probe_output(lines), profile, runtime_version=runtime_version)

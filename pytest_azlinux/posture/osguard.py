"""OS Guard: dm-verity on /usr (veritysetup status), /usr mounted read-only, IPE policy active,
and the IPE mode (off / audit / enforce)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..profiles.model import IpeMode, Profile
from .findings import Finding

IPE_ENFORCE_PATH = "/sys/kernel/security/ipe/enforce"


@dataclass(frozen=True)
class VerityStatus:
    device: str
    active: bool
    in_use: bool
    fields: dict[str, str] = field(default_factory=dict)


def parse_veritysetup_status(text: str) -> VerityStatus:
    """``veritysetup status usr``: ``/dev/mapper/usr is active and is in use.`` + key: value."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = lines[0].strip() if lines else ""
    device = head.split(" is ", 1)[0] if " is " in head else ""
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    active = " is active" in head
    return VerityStatus(device, active, active and "in use" in head, fields)


def check_verity(status_output: str, profile: Profile) -> list[Finding]:
    status = parse_veritysetup_status(status_output)
    src = profile.source("verity_usr")
    if not status.active:
        first = status_output.strip().splitlines()[0] if status_output.strip() else "no output"
        return [
            Finding("verity.usr", "/dev/mapper/usr active (veritysetup status usr)", first, src)
        ]
    out = []
    want = {"type": "VERITY", "status": "verified", "mode": "readonly"}
    for key, value in want.items():
        if status.fields.get(key) != value:
            out.append(Finding(f"verity.usr.{key}", value, status.fields.get(key, "missing"), src))
    return out


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mounts(text: str) -> list[Mount]:
    """``/proc/self/mounts`` lines (octal escapes such as ``\\040`` decoded)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        out.append(
            Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2], tuple(parts[3].split(",")))
        )
    return out


def check_usr_readonly(mounts_text: str, profile: Profile) -> list[Finding]:
    src = profile.source("verity_usr")
    usr = [m for m in parse_mounts(mounts_text) if m.mountpoint == "/usr"]
    if not usr:
        return [
            Finding(
                "usr.mount",
                "/usr a separate read-only mount of /dev/mapper/usr",
                "no /usr mount (part of /)",
                src,
            )
        ]
    top = usr[-1]  # the last mount on /usr is the visible one
    out = []
    if "ro" not in top.options:
        out.append(
            Finding(
                "usr.mount", "/usr mounted ro", f"{top.device} options {','.join(top.options)}", src
            )
        )
    if not (top.device == "/dev/mapper/usr" or top.device.startswith("/dev/dm-")):
        out.append(Finding("usr.device", "/dev/mapper/usr (dm-verity)", top.device, src))
    return out


def parse_ipe_policies(text: str) -> dict[str, bool]:
    """Lines ``<policy name> <active 0|1>`` (gathered from <securityfs>/ipe/policies/*)."""
    out: dict[str, bool] = {}
    for line in text.splitlines():
        name, _, active = line.strip().partition(" ")
        if name:
            out[name] = active.strip() == "1"
    return out


def check_ipe(policies_text: str | None, profile: Profile) -> list[Finding]:
    src = profile.source("ipe")
    if policies_text is None:
        return [Finding("ipe", "an active IPE policy", "no <securityfs>/ipe (IPE not active)", src)]
    policies = parse_ipe_policies(policies_text)
    if any(policies.values()):
        return []
    found = ", ".join(f"{n} (inactive)" for n in policies) or "no policies"
    return [Finding("ipe", "an active IPE policy", found, src)]


def ipe_mode(policies_text: str | None, enforce_text: str | None) -> tuple[IpeMode, str]:
    """(off | audit | enforce, why) from ``parse_ipe_policies`` input and ipe/enforce.

    IPE decides nothing without an active policy (off, whatever ``enforce`` says); with
    one, ``enforce`` 1 denies and 0 only logs (audit). No ``<securityfs>/ipe`` (None): IPE is
    not an active LSM (off). Raises ValueError when ``enforce`` is needed and is not 0 or 1.
    Source: the kernel's Documentation/admin-guide/LSM/ipe.rst (securityfs interface).
    """
    if policies_text is None:
        return "off", "no /sys/kernel/security/ipe (IPE not an active LSM)"
    policies = parse_ipe_policies(policies_text)
    active = [n for n, on in policies.items() if on]
    if not active:
        listed = ", ".join(policies) or "none"
        return "off", f"no active IPE policy (policies: {listed})"
    value = (enforce_text or "").strip()
    if value not in ("0", "1"):
        raise ValueError(f"{IPE_ENFORCE_PATH}: {value[:20]!r} is not 0 or 1")
    mode: IpeMode = "enforce" if value == "1" else "audit"
    return mode, f"active policy {', '.join(active)}, {IPE_ENFORCE_PATH}={value}"


def check_ipe_mode(mode: tuple[IpeMode, str], profile: Profile) -> list[Finding]:
    want = profile.ipe_mode
    if want is None or mode[0] == want:
        return []
    return [Finding("ipe.mode", want, f"{mode[0]}: {mode[1]}", profile.source("ipe_mode"))]

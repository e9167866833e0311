"""System extensions (systemd-sysext): which are merged, and where /usr/bin/containerd is from.

``systemd-sysext status --json=short`` lists per hierarchy the merged extensions (a list of
names, or the string ``"none"``); ``systemd-sysext list --json=short`` the images found
(merged or not), which the failure message shows. An extension named ``NAME`` is merged
when ``NAME`` or a versioned ``NAME_<version>``/``NAME-<digits...>`` is in the list.

Where a file under /usr comes from is visible in ``stat``'s device number: overlayfs reports
a regular file's device as the one of the layer that holds it (kernel
Documentation/filesystems/overlayfs.rst, "Inode properties", without ``xino``). So
/usr/bin/containerd is the extension's when its device is the one of
/usr/lib/extension-release.d/extension-release.NAME (a file only that extension ships) and not
the one of /usr/lib/os-release (the base image's). Where all three share one device, the
overlay does not say: that is reported as unknown, never as a pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from ..errors import ProbeUnavailable
from ..host import Host
from ..profiles.model import Profile
from ..reads import Read, split_sections
from .findings import Finding

OS_RELEASE = "/usr/lib/os-release"
CONTAINERD = "/usr/bin/containerd"
EXT_RELEASE_DIR = "/usr/lib/extension-release.d"
# exit 3: no systemd-sysext on the host
SYSEXT = Read(
    "command -v systemd-sysext >/dev/null 2>&1 || exit 3\n"
    "printf '==> status\\n'; systemd-sysext status --json=short 2>&1; "
    "printf '\\n==> status-rc %s\\n' $?\n"
    "printf '==> list\\n'; systemd-sysext list --json=short 2>&1; "
    "printf '\\n==> list-rc %s\\n' $?\n"
    f"printf '==> stat\\n'; stat -c '%d %n' {OS_RELEASE} {CONTAINERD} "
    f"{EXT_RELEASE_DIR}/extension-release.* 2>/dev/null\n"
    "exit 0"
)
READS = (SYSEXT,)


@dataclass(frozen=True)
class Sysexts:
    merged: dict[str, tuple[str, ...]]  # hierarchy -> merged extension names
    available: tuple[str, ...]  # every image systemd-sysext list found
    devices: dict[str, int]  # path -> st_dev (of those that exist)

    def merged_names(self) -> set[str]:
        return {name for names in self.merged.values() for name in names}


def _json(section: str, text: str, rc: str) -> object:
    if rc != "0":
        raise ValueError(f"systemd-sysext {section} --json=short failed (exit {rc}): "
                         f"{text.strip()[:200]}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"systemd-sysext {section} --json=short: not JSON ({exc.msg}): "
                         f"{text.strip()[:120]!r}") from None


def parse_status(data: object) -> dict[str, tuple[str, ...]]:
    """``[{"hierarchy": "/usr", "extensions": ["containerd"] | "none", ...}]``."""
    if not isinstance(data, list):
        raise ValueError("systemd-sysext status: expected a JSON list of hierarchies")
    out: dict[str, tuple[str, ...]] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("hierarchy"), str):
            raise ValueError(f"systemd-sysext status: unexpected entry {entry!r:.120}")
        ext = entry.get("extensions")
        if ext == "none" or ext is None:
            names: tuple[str, ...] = ()
        elif isinstance(ext, list) and all(isinstance(n, str) for n in ext):
            names = tuple(ext)
        else:
            raise ValueError(f"systemd-sysext status: extensions of {entry['hierarchy']}: "
                             f"{ext!r:.120}")
        out[entry["hierarchy"]] = names
    return out


def parse_list(data: object) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in data
    ):
        raise ValueError("systemd-sysext list: expected a JSON list of {name: ...}")
    return tuple(e["name"] for e in data)


def parse_stat(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        dev, _, path = line.strip().partition(" ")
        if not line.strip():
            continue
        if not dev.isdigit() or not path:
            raise ValueError(f"stat -c '%d %n': unexpected line {line[:100]!r}")
        out[path] = int(dev)
    return out


def parse_sysext(text: str) -> Sysexts:
    sections = split_sections(text, ("status", "status-rc", "list", "list-rc", "stat"))
    missing = [n for n in ("status", "status-rc", "list", "list-rc", "stat") if n not in sections]
    if missing:
        raise ValueError(f"the systemd-sysext read is cut short (no {', '.join(missing)})")
    status = _json("status", sections["status"].text, sections["status-rc"].args)
    listed = _json("list", sections["list"].text, sections["list-rc"].args)
    return Sysexts(parse_status(status), parse_list(listed), parse_stat(sections["stat"].text))


def sysexts(host: Host) -> Sysexts:
    result = host.reads.get(SYSEXT)
    if result.rc == 3:
        raise ProbeUnavailable(f"{host.name}: systemd-sysext not found: cannot tell which "
                               "system extensions are merged")
    if result.rc != 0:
        raise ProbeUnavailable(f"{host.name}: the systemd-sysext read failed (exit {result.rc})"
                               f": {result.stderr.strip()[:200]}")
    try:
        return parse_sysext(result.stdout)
    except ValueError as exc:
        raise ProbeUnavailable(f"{host.name}: {exc}") from None


def matches(expected: str, name: str) -> bool:
    """``containerd`` matches ``containerd``, ``containerd_2.1.4``, ``containerd-2.1.4``."""
    return name == expected or re.fullmatch(re.escape(expected) + r"(_.+|-\d.*)", name) is not None


def check_sysexts(found: Sysexts, profile: Profile) -> list[Finding]:
    merged = found.merged_names()
    out = []
    for want in profile.sysexts or ():
        if any(matches(want, name) for name in merged):
            continue
        images = [n for n in found.available if matches(want, n)]
        where = (f"found but not merged: {', '.join(images)}" if images else "no such image")
        shown = ", ".join(f"{h}: {', '.join(n) or 'none'}" for h, n in found.merged.items())
        out.append(Finding(f"sysext.{want}", f"extension {want} merged",
                           f"{where}; merged: {shown or 'nothing'}", profile.source("sysexts")))
    return out


Origin = Literal["extension", "base", "unknown", "absent"]


def file_origin(found: Sysexts, path: str, extension: str) -> tuple[Origin, str]:
    """Whether ``path`` comes from the merged ``extension`` or the base /usr, and why."""
    dev = found.devices.get(path)
    if dev is None:
        return "absent", f"{path} does not exist"
    base = found.devices.get(OS_RELEASE)
    marks = {p: d for p, d in found.devices.items()
             if p.startswith(f"{EXT_RELEASE_DIR}/extension-release.")
             and matches(extension, p.rsplit("extension-release.", 1)[1])}
    ext_dev = next(iter(marks.values()), None)
    detail = (f"device of {path} {dev}, of {OS_RELEASE} {base}, "
              f"of {next(iter(marks), f'{EXT_RELEASE_DIR}/extension-release.{extension}')} "
              f"{ext_dev}")
    if ext_dev is not None and dev == ext_dev and dev != base:
        return "extension", detail
    if base is not None and dev == base and dev != ext_dev:
        return "base", detail
    return "unknown", detail


def check_containerd_origin(found: Sysexts, extension: str, profile: Profile) -> list[Finding]:
    origin, detail = file_origin(found, CONTAINERD, extension)
    if origin == "extension":
        return []
    if origin == "unknown":
        raise ProbeUnavailable(f"cannot tell which layer {CONTAINERD} comes from: {detail}")
    return [Finding("sysext.containerd", f"{CONTAINERD} from the extension {extension}",
                    "from the base /usr" if origin == "base" else detail,
                    profile.source("sysexts"))]

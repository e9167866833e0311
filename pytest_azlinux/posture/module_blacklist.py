"""The image's kernel-module blacklist for the 2026 local privilege escalations.

AKS blocks algif_aead (CVE-2026-31431, "Copy Fail"), esp4, esp6 and rxrpc ("DirtyFrag") on
some node images with ``install MOD /bin/false`` + ``blacklist MOD`` in /etc/modprobe.d, and
must not on others: Azure Linux 3.0 kernels from 6.6.139.1-1.azl3 carry the fix and customer
workloads need the modules, so standard Azure Linux 3.0 images must ship no such entry, while
OS Guard (and ACL, which AgentBaker does not exempt) must keep every module blocked.

This encodes AgentBaker's own validator (Azure/AgentBaker e2e/validators.go,
``ValidateVulnerableKernelModulesDisabled`` and ``kernelModuleFullBlockValidationScript``, at
commit 275d0e8af9ff99f38f850ebfa456c3b07b3d2b3a; Azure/AKS issue #5753) with the same files and
patterns, read-only: "required" means each module has an ``^install MOD /bin/false`` line in
/etc/modprobe.d/*.conf and is not loaded (/proc/modules); "forbidden" means no
``^(install MOD /bin/false|blacklist MOD)`` line remains. (AgentBaker also runs ``modprobe MOD``
to see it refused; that loads a module where it is not blocked, so it is not done here.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ProbeUnavailable
from ..host import Host
from ..profiles.model import Profile
from ..reads import Read, split_sections
from .findings import Finding

MODULES = ("algif_aead", "esp4", "esp6", "rxrpc")
MODPROBE_DIR = "/etc/modprobe.d"
# the matching lines with their file; grep exit 1 (no line) is an answer, 2 is not
BLACKLIST = Read(
    f"printf '==> lines\\n'; set -- {MODPROBE_DIR}/*.conf\n"
    "if [ -e \"$1\" ]; then grep -HE '^(install|blacklist)[[:space:]]' \"$@\"; r=$?; "
    "else r=1; fi\n"
    "printf '==> grep-rc %s\\n' \"$r\"\n"
    # no /proc/modules: a kernel without loadable modules (nothing can be loaded)
    "printf '==> modules\\n'; [ ! -e /proc/modules ] || cat /proc/modules || "
    "printf '==> modules-unreadable\\n'\n"
    "exit 0",
    sudo=True,
)
READS = (BLACKLIST,)


@dataclass(frozen=True)
class ModprobeLines:
    lines: tuple[tuple[str, str], ...]  # (file, line) of every install/blacklist directive
    loaded: frozenset[str]  # modules in /proc/modules

    def installs_false(self, module: str) -> list[str]:
        pattern = re.compile(rf"^install {re.escape(module)} /bin/false")
        return [f"{f}: {ln}" for f, ln in self.lines if pattern.match(ln)]

    def entries(self, module: str) -> list[str]:
        mod = re.escape(module)
        pattern = re.compile(rf"^(install {mod} /bin/false|blacklist {mod})")
        return [f"{f}: {ln}" for f, ln in self.lines if pattern.match(ln)]


def parse_blacklist(text: str) -> ModprobeLines:
    """The sections of ``BLACKLIST``; ValueError when grep or /proc/modules could not read."""
    names = ("lines", "grep-rc", "modules", "modules-unreadable")
    sections = split_sections(text, names)
    rc = sections.get("grep-rc")
    if rc is None or "modules" not in sections:
        raise ValueError(f"the {MODPROBE_DIR} read is cut short")
    if rc.args not in ("0", "1"):
        raise ValueError(f"grep over {MODPROBE_DIR}/*.conf failed (exit {rc.args}): "
                         "a file there cannot be read")
    if "modules-unreadable" in sections:
        raise ValueError("/proc/modules cannot be read")
    lines = []
    for line in sections["lines"].lines if "lines" in sections else ():
        path, sep, directive = line.partition(":")
        if not sep or not path.startswith(f"{MODPROBE_DIR}/"):
            raise ValueError(f"unexpected grep line {line[:100]!r}")
        lines.append((path, directive))
    loaded = frozenset(ln.split()[0] for ln in sections["modules"].lines if ln.strip())
    return ModprobeLines(tuple(lines), loaded)


def modprobe_lines(host: Host) -> ModprobeLines:
    result = host.reads.get(BLACKLIST)
    try:
        return parse_blacklist(result.stdout)
    except ValueError as exc:
        raise ProbeUnavailable(f"{host.name}: {exc}") from None


def check_module_blacklist(found: ModprobeLines, profile: Profile) -> list[Finding]:
    want = profile.module_blacklist
    src = profile.source("module_blacklist")
    out: list[Finding] = []
    for module in MODULES:
        if want == "required":
            if not found.installs_false(module):
                out.append(Finding(f"module_blacklist.{module}",
                                   f"install {module} /bin/false in {MODPROBE_DIR}/*.conf",
                                   "no such line", src))
            if module in found.loaded:
                out.append(Finding(f"module_blacklist.{module}", f"{module} not loaded",
                                   f"{module} is in /proc/modules", src))
        elif want == "forbidden":
            present = found.entries(module)
            if present:
                out.append(Finding(f"module_blacklist.{module}",
                                   f"no install/blacklist entry for {module}",
                                   "; ".join(present), src))
    return out

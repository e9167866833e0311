"""What the hardening checks read from a host, as ONE command.

Every check adds what it reads to a ``ReadPlan``: fixed sections (``SectionRead`` values,
each declared next to the check kinds that read it, with its shell and its parser) and
keyed reads (sysctl keys, file paths, kernel modules). ``gather_script`` turns the plan into
one POSIX shell script that prints each read as a ``==> NAME`` section (the shape
``reads.split_sections`` parses) followed, where the exit status matters, by a
``==> rc:NAME`` section; ``ReadPlan.section_names`` lists what to split on.

The script runs as root (``/etc/shadow``, ``sshd -T``, ``auditctl -l`` need it) and only
reads. Password hashes never leave the host: ``/etc/shadow`` is printed with the hash field
replaced by its kind (``EMPTY``, ``LOCKED``, ``HASH``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

STAT_FORMAT = "'%n|%a|%U|%G|%F'"  # parsed by evidence.parse_stats

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class SectionRead(Generic[T]):
    """One fixed section of the hardening read, declared next to the check kinds that read
    it: its shell (run in the read's root shell, read-only), whether its exit status is
    printed (``rc_ok``: the statuses whose output is judged), and the parser of what it
    printed (``Evidence.get`` gives None where it was not read or its status is not ok)."""

    name: str
    shell: str
    parse: Callable[[str], T]
    rc_ok: tuple[int, ...] | None = None


@dataclass
class ReadPlan:
    """What one run reads from a host; checks add to it, ``gather_script`` renders it.

    Fixed sections are ``SectionRead`` values (``need``); keyed reads (sysctl keys, paths to
    stat, kernel modules) are merged across checks into one command each. ``packages``: a
    check judges by the installed packages, which come from the host's one package inventory
    (``packages.inventory.host_inventory``), not from a section of this script."""

    sections: set[SectionRead[Any]] = field(default_factory=set)
    sysctls: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)  # stat; shell globs allowed
    modules: set[str] = field(default_factory=set)
    packages: bool = False  # the host's package inventory (read beside the script, not in it)

    def need(self, *sections: SectionRead[Any]) -> None:
        for section in sections:
            other = next((s for s in self.sections if s.name == section.name), section)
            if other is not section:
                raise ValueError(f"two reads named {section.name!r}: {other} and {section}")
            self.sections.add(section)

    def ordered(self) -> list[SectionRead[Any]]:
        return sorted(self.sections, key=lambda s: s.name)

    def section_names(self) -> list[str]:
        names: list[str] = []
        for section in self.ordered():
            names.append(section.name)
            if section.rc_ok is not None:
                names.append(f"rc:{section.name}")
        if self.sysctls:
            names.append("sysctl")
        if self.paths:
            names.append("stat")
        if self.modules:
            names += ["modules.loaded", "modules.builtin", "modules.sysfs"]
            for module in sorted(self.modules):
                names += [f"module:{module}", f"rc:module:{module}"]
        return names


def sysctl_path(key: str) -> str:
    """``net.ipv4.conf.all.rp_filter`` -> ``/proc/sys/net/ipv4/conf/all/rp_filter``."""
    return "/proc/sys/" + key.replace(".", "/")


def _section(name: str, body: str, rc: bool = False) -> str:
    text = f"printf '\\n==> %s\\n' {shlex.quote(name)}\n{{ {body}\n}} 2>/dev/null"
    if rc:
        text += f"\nprintf '\\n==> rc:%s\\n%s\\n' {shlex.quote(name)} $?"
    return text


def gather_script(plan: ReadPlan) -> str:
    """The one command that prints everything ``plan`` reads (see the module docstring)."""
    parts = ["PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin; export LC_ALL=C"]
    for section in plan.ordered():
        parts.append(_section(section.name, section.shell, rc=section.rc_ok is not None))
    if plan.sysctls:
        files = " ".join(sysctl_path(k) for k in sorted(plan.sysctls))
        parts.append(_section("sysctl", f"grep -Hs '' {files}"))
    if plan.paths:
        # unquoted on purpose: globs expand; a pattern that matches nothing fails quietly
        parts.append(_section("stat", f"stat -c {STAT_FORMAT} " + " ".join(sorted(plan.paths))))
    if plan.modules:
        names = sorted(plan.modules)
        alternatives = "|".join(re.escape(m).replace("-", "[-_]") for m in names)
        parts.append(_section("modules.loaded", "cat /proc/modules"))
        parts.append(_section(
            "modules.builtin",
            f"grep -E '/({alternatives})\\.ko' /lib/modules/$(uname -r)/modules.builtin",
        ))
        dirs = " ".join(f"/sys/module/{m.replace('-', '_')}" for m in names)
        parts.append(_section("modules.sysfs", f"ls -d {dirs}"))
        for module in names:
            parts.append(_section(f"module:{module}", f"modprobe -n -v {module} 2>&1", rc=True))
    return "\n".join(parts) + "\n"

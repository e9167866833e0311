"""The sections one gathering printed for a host, with parsed views for the checks.

A view returns None where its section is missing or its command could not run; checks turn
that into "cannot read" (an ERROR), never into a finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from ..facts import ImageFacts
from ..posture.sshd import parse_sshd_t
from ..reads import split_sections
from .readplan import ReadPlan

# -- parsed views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    path: str
    mode: int
    owner: str
    group: str
    kind: str  # "regular file", "directory", ...


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: tuple[str, ...]


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


@dataclass(frozen=True)
class ScanResult:
    dirs: tuple[str, ...]
    files: tuple[str, ...]
    total_dirs: int
    total_files: int


def _unescape_mount(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class Evidence:
    """The sections one gather printed for one host, with parsed views.

    A view returns None where its section is missing or its command could not run; checks
    turn that into "cannot read" (ERROR), never into a finding.
    """

    def __init__(
        self, host: str, sections: Mapping[str, str], facts: ImageFacts | None = None
    ) -> None:
        self.host = host
        self.sections = dict(sections)
        self.facts = facts  # the host's image facts: the kernel command line comes from there

    @classmethod
    def parse(
        cls, host: str, text: str, plan: ReadPlan, facts: ImageFacts | None = None
    ) -> Evidence:
        sections = split_sections(text, plan.section_names())
        return cls(host, {name: s.text for name, s in sections.items()}, facts)

    def has(self, name: str) -> bool:
        return name in self.sections

    def text(self, name: str) -> str | None:
        return self.sections.get(name)

    def rc(self, name: str) -> int | None:
        value = self.sections.get(f"rc:{name}")
        return _int(value.strip()) if value is not None else None

    # -- sshd ---------------------------------------------------------------------------------
    @cached_property
    def sshd(self) -> dict[str, str] | None:
        """Effective sshd settings (``sshd -T``), keys lower-case; None if it could not run."""
        text = self.sections.get("sshd")
        if text is None or self.rc("sshd") != 0:
            return None
        values = parse_sshd_t(text)
        return values or None

    @property
    def sshd_config(self) -> str:
        """The config file of the running sshd (its ``-f``), else the default one."""
        lines = (self.sections.get("sshd.config") or "").splitlines()
        return lines[0].strip() if lines else "/etc/ssh/sshd_config"

    @cached_property
    def sshd_config_stat(self) -> FileStat | None:
        return self._stats(self.sections.get("sshd.config", "")).get(self.sshd_config)

    @cached_property
    def sshd_host_keys(self) -> dict[str, FileStat]:
        return self._stats(self.sections.get("sshd.hostkeys", ""))

    # -- kernel ---------------------------------------------------------------------------------
    @cached_property
    def sysctl(self) -> dict[str, str]:
        """Readable sysctls: key -> value (absent keys are missing from the mapping)."""
        out: dict[str, str] = {}
        for line in (self.sections.get("sysctl") or "").splitlines():
            path, sep, value = line.partition(":")
            if sep and path.startswith("/proc/sys/"):
                out[path.removeprefix("/proc/sys/").replace("/", ".")] = value.strip()
        return out

    def module(self, name: str) -> ModuleEvidence | None:
        section = f"module:{name}"
        if section not in self.sections:
            return None
        underscored = name.replace("-", "_")
        loaded_text = self.sections.get("modules.loaded", "")
        loaded = any(line.split(" ", 1)[0] == underscored for line in loaded_text.splitlines())
        builtin = any(
            re.search(rf"/{re.escape(name).replace('-', '[-_]')}\.ko", line)
            for line in self.sections.get("modules.builtin", "").splitlines()
        )
        filesystems = self.filesystems or set()
        return ModuleEvidence(
            name=name,
            modprobe=self.sections[section].strip(),
            modprobe_rc=self.rc(section),
            loaded=loaded,
            builtin=builtin,
            module_support=bool(loaded_text.strip()),
            filesystem_registered=name in filesystems,
        )

    @cached_property
    def filesystems(self) -> set[str] | None:
        text = self.sections.get("filesystems")
        if text is None:
            return None
        return {line.split()[-1] for line in text.splitlines() if line.split()}

    @cached_property
    def lsms(self) -> list[str] | None:
        from ..posture.lsm import parse_lsm

        text = self.sections.get("lsm")
        if text is None or self.rc("lsm") != 0:
            return None
        return parse_lsm(text)

    # -- files and mounts ---------------------------------------------------------------------
    @staticmethod
    def _stats(text: str) -> dict[str, FileStat]:
        out: dict[str, FileStat] = {}
        for line in text.splitlines():
            parts = line.split("|")
            if len(parts) != 5:
                continue
            mode = int(parts[1], 8) if re.fullmatch(r"[0-7]+", parts[1]) else None
            if mode is None:
                continue
            out[parts[0]] = FileStat(parts[0], mode, parts[2], parts[3], parts[4])
        return out

    @cached_property
    def stats(self) -> dict[str, FileStat]:
        return self._stats(self.sections.get("stat", ""))

    @cached_property
    def mounts(self) -> list[Mount] | None:
        text = self.sections.get("mounts")
        if not text:
            return None
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                out.append(Mount(
                    _unescape_mount(parts[0]), _unescape_mount(parts[1]), parts[2],
                    tuple(parts[3].split(",")),
                ))  # fmt: skip
        return out

    def mount_of(self, path: str) -> Mount | None:
        """The mount that holds ``path``: the longest mount point above it, the last one
        mounted there when several are stacked."""
        best: Mount | None = None
        for m in self.mounts or []:
            target = m.target.rstrip("/") or "/"
            inside = path == target or path.startswith(target.rstrip("/") + "/")
            if inside and (best is None or len(target) >= len(best.target.rstrip("/") or "/")):
                best = m
        return best

    @cached_property
    def scan(self) -> ScanResult | None:
        text = self.sections.get("scan")
        if text is None:
            return None
        dirs: list[str] = []
        files: list[str] = []
        totals = {"dir": 0, "file": 0}
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "exit" and rest.strip() in ("124", "137", "143"):
                return None  # find was stopped by its time limit
            if kind == "total":
                what, _, count = rest.partition(" ")
                totals[what] = _int(count) or 0
            elif kind == "dir":
                dirs.append(rest)
            elif kind == "file":
                files.append(rest)
        if "total dir" not in text:
            return None  # the scan did not finish
        return ScanResult(tuple(dirs), tuple(files), totals["dir"], totals["file"])

    # -- accounts -------------------------------------------------------------------------------
    @cached_property
    def passwd(self) -> list[PasswdEntry] | None:
        text = self.sections.get("passwd")
        if not text:
            return None
        out = []
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) < 7 or _int(parts[2]) is None or _int(parts[3]) is None:
                continue
            out.append(PasswdEntry(parts[0], parts[1], int(parts[2]), int(parts[3]),
                                   parts[5], parts[6]))  # fmt: skip
        return out

    @cached_property
    def shadow(self) -> list[ShadowEntry] | None:
        text = self.sections.get("shadow")
        if not text:
            return None
        out = []
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) < 5 or parts[1] not in ("EMPTY", "LOCKED", "HASH"):
                continue
            out.append(ShadowEntry(parts[0], parts[1], _int(parts[4])))
        return out

    @cached_property
    def login_defs(self) -> dict[str, str] | None:
        text = self.sections.get("login.defs")
        if text is None or self.rc("login.defs") not in (0, 1):  # grep: 1 = no lines
            return None
        out: dict[str, str] = {}
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2:
                out[words[0]] = words[1]
        return out

    @cached_property
    def sudoers(self) -> list[str] | None:
        text = self.sections.get("sudoers")
        return None if text is None else [ln.strip() for ln in text.splitlines() if ln.strip()]

    # -- services -------------------------------------------------------------------------------
    @cached_property
    def units(self) -> dict[str, tuple[str, str]]:
        """unit (without .service) -> (is-active, is-enabled); empty without systemd."""
        out: dict[str, tuple[str, str]] = {}
        for line in (self.sections.get("units") or "").splitlines():
            words = line.split()
            if words and words[0] != "system":
                out[words[0]] = (
                    words[1] if len(words) > 1 else "", words[2] if len(words) > 2 else ""
                )
        return out

    @property
    def systemd_running(self) -> bool:
        """systemd answers (``is-system-running`` prints a state, not an error)."""
        states = ("running", "degraded", "starting", "initializing", "maintenance", "stopping")
        for line in (self.sections.get("units") or "").splitlines():
            if line.startswith("system "):
                return line.removeprefix("system ").strip() in states
        return False

    @cached_property
    def processes(self) -> set[str]:
        return {ln.strip() for ln in (self.sections.get("processes") or "").splitlines()}

    @cached_property
    def audit_rules(self) -> list[str] | None:
        text = self.sections.get("audit.rules")
        if text is None or self.rc("audit.rules") != 0:
            return None
        return [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "No rules"]

    @cached_property
    def audit_status(self) -> dict[str, str] | None:
        text = self.sections.get("audit.status")
        if text is None or self.rc("audit.status") != 0:
            return None
        out: dict[str, str] = {}
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2:
                out[words[0]] = words[1]
        return out or None

    @cached_property
    def time_sources(self) -> list[tuple[str, str]]:
        out = []
        for line in (self.sections.get("timesources") or "").splitlines():
            daemon, _, rest = line.partition(" ")
            if rest.strip():
                out.append((daemon, rest.strip()))
        return out

    @cached_property
    def package_configs(self) -> dict[str, str]:
        """path -> text of tdnf/dnf/yum configuration and repo files."""
        out: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in (self.sections.get("pkgconf") or "").splitlines():
            if line.startswith("# file "):
                current = out.setdefault(line.removeprefix("# file ").strip(), [])
            elif current is not None:
                current.append(line)
        return {path: "\n".join(lines) for path, lines in out.items()}

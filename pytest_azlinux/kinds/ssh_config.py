"""``kind: ssh`` with ``ssh_config:``: hosts named by alias (or glob) in an OpenSSH client config.

paramiko's ``SSHConfig`` does the lookups (Host and Match blocks, the first value of a keyword
wins, ``%h`` tokens). This module adds what it lacks: ``Include`` (inlined, as ssh reads it),
the file and line of an unparsable line, the aliases a glob picks from, and jump hosts looked
up in the same config, as ssh does for ``ProxyJump bastion``.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from ..errors import TargetsError
from ..targets import (
    AnyTarget,
    HostSpec,
    JumpHost,
    SshConfigTarget,
    SshSettings,
    is_host_name,
    merge_ssh_spec,
)
from . import openssh
from .protocol import Resolved

MAX_INCLUDE_DEPTH = 16  # as ssh's READCONF_MAX_DEPTH
_SETTING = re.compile(r"(\w+)(?:\s*=\s*|\s+)(.+)")  # paramiko's SETTINGS_REGEX
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SshConfigFile:
    """A parsed ssh_config: paramiko's lookups and the patterns of every ``Host`` line."""

    path: Path
    config: paramiko.SSHConfig
    host_patterns: tuple[tuple[str, ...], ...]

    def aliases(self) -> list[str]:
        """Names the ``Host`` lines spell out (no wildcards, no negations), in file order."""
        out: list[str] = []
        for patterns in self.host_patterns:
            for p in patterns:
                if not p.startswith("!") and not _GLOB.search(p) and p not in out:
                    out.append(p)
        return out

    def names(self, host: str) -> bool:
        """Whether a ``Host`` line other than the catch-all ``Host *`` matches ``host``."""
        for patterns in self.host_patterns:
            positive = [p for p in patterns if not p.startswith("!") and p != "*"]
            negative = [p[1:] for p in patterns if p.startswith("!")]
            if any(fnmatch.fnmatchcase(host, p) for p in positive) and not any(
                fnmatch.fnmatchcase(host, p) for p in negative
            ):
                return True
        return False

    def lookup(self, host: str, where: str) -> dict[str, Any]:
        try:
            return dict(self.config.lookup(host))
        except Exception as exc:  # Match exec, hostname canonicalisation: anything
            raise TargetsError(f"{where}: ssh_config lookup failed: {exc}") from None


def read_ssh_config(path: Path, where: str) -> SshConfigFile:
    """Read ``path`` (and what it includes); errors name ``where``, the file and the line."""
    lines: list[str] = []
    patterns: list[tuple[str, ...]] = []
    _read_into(path, where, 0, None, lines, patterns)
    try:
        config = paramiko.SSHConfig.from_text("\n".join(lines))
    except paramiko.ConfigParseError as exc:
        raise TargetsError(f"{where}: {path}: {exc}") from None
    return SshConfigFile(path, config, tuple(patterns))


def _read_into(
    path: Path, where: str, depth: int, header: str | None,
    lines: list[str], patterns: list[tuple[str, ...]],
) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetsError(f"{where}: cannot read ssh_config {path}: "
                           f"{exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TargetsError(f"{where}: {path}: not UTF-8 text") from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SETTING.fullmatch(line)
        if not m:
            raise TargetsError(f"{where}: {path}: line {number}: unparsable line: {line!r}")
        key, value = m[1].lower(), m[2]
        if key == "include":
            if depth >= MAX_INCLUDE_DEPTH:
                raise TargetsError(f"{where}: {path}: line {number}: Include nested more than "
                                   f"{MAX_INCLUDE_DEPTH} deep")
            for included in _included(value):
                _read_into(included, where, depth + 1, header, lines, patterns)
            if header is not None:  # ssh resumes the enclosing block after an Include
                lines.append(header)
            continue
        if key in ("host", "match"):
            header = line
            if key == "host":
                try:
                    patterns.append(tuple(shlex.split(value)))
                except ValueError as exc:
                    raise TargetsError(
                        f"{where}: {path}: line {number}: unparsable Host line: {exc}"
                    ) from None
        lines.append(line)


def _included(value: str) -> list[Path]:
    """The files an ``Include`` names: globs, relative to ~/.ssh (as for a user config);
    a pattern that matches nothing includes nothing, as in ssh."""
    out: list[Path] = []
    for item in shlex.split(value):
        item = os.path.expanduser(item)
        if not os.path.isabs(item):
            item = os.path.join(os.path.expanduser("~/.ssh"), item)
        out.extend(Path(p) for p in sorted(glob.glob(item)) if os.path.isfile(p))
    return out


def select(file: SshConfigFile, wanted: Sequence[str], where: str) -> list[str]:
    """The aliases ``wanted`` names: a glob picks from the aliases the ``Host`` lines spell
    out; a plain name must be matched by some ``Host`` line other than ``Host *``."""
    aliases = file.aliases()
    out: list[str] = []
    for item in wanted:
        if _GLOB.search(item):
            picked = [a for a in aliases if fnmatch.fnmatchcase(a, item)]
            if not picked:
                raise TargetsError(
                    f"{where}: hosts: {item!r} matches no Host alias in {file.path} "
                    f"(aliases: {', '.join(aliases) or 'none'})"
                )
        elif item in aliases or file.names(item):
            picked = [item]
        else:
            raise TargetsError(f"{where}: hosts: {item!r} is not named by any Host line in "
                               f"{file.path} (aliases: {', '.join(aliases) or 'none'})")
        out.extend(a for a in picked if a not in out)
    for alias in out:
        if not is_host_name(alias):
            raise TargetsError(f"{where}: host {alias!r}: a host name may hold only letters, "
                               "digits, '.', '_', '-'")
    return out


def host_spec(file: SshConfigFile, alias: str, target: str, config: SshConfigTarget,
              where: str) -> HostSpec:
    """One alias as the transports see it: the config's values first, then the target's
    ``defaults`` for what the config leaves unset."""
    host_where = f"{where}: host {alias!r}"

    def field(keyword: str) -> str:
        return f"{host_where}: field {keyword!r}"

    opts = file.lookup(alias, host_where)
    typed = openssh.typed(opts, field, policy_fallback=config.defaults.host_key_policy is not None)
    jump: list[JumpHost] | None = None
    if typed.jump is not None:
        jump = _jump_hosts(file, typed.jump, field("ProxyJump"), seen=(alias,))
    layer = SshSettings(
        user=typed.user, port=typed.port,
        identity_file=openssh.pick_key(typed.identity_files, field("IdentityFile")),
        known_hosts=typed.known_hosts, host_key_policy=typed.host_key_policy, jump=jump,
        connect_timeout=typed.connect_timeout,
    )
    return merge_ssh_spec(name=alias, address=str(opts.get("hostname") or alias), target=target,
                          layers=(layer, config.defaults), profile=config.profile)


def _jump_hosts(file: SshConfigFile, hops: Sequence[openssh.Hop], where: str,
                seen: tuple[str, ...]) -> list[JumpHost]:
    """Each hop looked up in the config (its HostName, User, Port, IdentityFile); the first
    hop's own ProxyJump comes before it, as when ssh connects to it."""
    out: list[JumpHost] = []
    for index, hop in enumerate(hops):
        hop_where = f"{where}: jump host {hop.host!r}"
        if hop.host in seen:
            raise TargetsError(f"{hop_where}: ProxyJump loop ({' -> '.join((*seen, hop.host))})")
        opts = file.lookup(hop.host, hop_where)
        if index == 0 and str(opts.get("proxyjump", "none")).lower() != "none":
            inner = openssh.parse_jump_chain(str(opts["proxyjump"]), f"{hop_where}: ProxyJump")
            out.extend(_jump_hosts(file, inner, where, (*seen, hop.host)))
        port = hop.port or (openssh.parse_port(opts["port"], f"{hop_where}: Port")
                            if "port" in opts else 22)
        identities = opts.get("identityfile") or []
        identity = hop.identity_file or openssh.pick_key(identities, f"{hop_where}: IdentityFile")
        out.append(JumpHost(address=str(opts.get("hostname") or hop.host), port=port,
                            user=hop.user or opts.get("user"), identity_file=identity))
    return out


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    assert isinstance(config, SshConfigTarget)
    where = f"target {name!r}: {config.ssh_config}"
    file = read_ssh_config(Path(config.ssh_config), f"target {name!r}")
    return Resolved([host_spec(file, alias, name, config, where)
                     for alias in select(file, config.hosts, where)])


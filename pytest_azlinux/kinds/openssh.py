"""OpenSSH option values, read the way ``ssh`` reads them, for the kinds that take hosts from
where users keep them (``ssh_config``, Ansible inventories).

Both hand options over as OpenSSH keywords (lower case: ``port``, ``proxyjump``...): an
ssh_config lookup gives them directly, Ansible's ``ansible_ssh_common_args`` gives them as
ssh command-line options (``-o ProxyJump=...``, ``-J``, ``-p``...), parsed here. ``typed``
turns them into typed values with one-line errors naming where a value came from.

Host key checks are never turned off: ``StrictHostKeyChecking no`` (and a known-hosts file
of ``/dev/null``) are refused unless the target says which policy to use instead.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TargetsError
from ..targets import HostKeyPolicy, JumpHost

# ssh(1) options that take an argument; every other letter is a flag.
_WITH_ARGUMENT = set("BbcDEeFIiJLlmOoPpQRSWw")
_LETTER_KEYWORD = {"p": "port", "l": "user", "i": "identityfile", "J": "proxyjump"}
_HOP = re.compile(r"(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:@/\[\]]+)"
                  r"(?::(?P<port>[^:@/]*))?/?")
_REFUSED_KNOWN_HOSTS = {"/dev/null", "none"}
FieldLabel = Callable[[str], str]  # OpenSSH keyword -> "where: field '...'" for errors


@dataclass(frozen=True)
class Hop:
    """One hop of a ProxyJump chain as written: ``[user@]host[:port]``."""

    host: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None

    def jump_host(self) -> JumpHost:
        return JumpHost(address=self.host, port=self.port or 22, user=self.user,
                        identity_file=self.identity_file)


@dataclass(frozen=True)
class Options:
    """Typed OpenSSH options of one host; None: not set."""

    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    jump: tuple[Hop, ...] | None = None  # () is "ProxyJump none"
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy | None = None
    connect_timeout: float | None = None

    def or_else(self, other: Options) -> Options:
        """These options, with ``other``'s where these leave one unset."""
        values: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            mine = getattr(self, name)
            values[name] = getattr(other, name) if mine is None or mine == () else mine
        return Options(**values)


def parse_port(value: object, where: str) -> int:
    """A TCP port from a string or a number; anything else is an error naming ``where``."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) \
        else None
    if text is None or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise TargetsError(f"{where}: not a port number 1..65535: {value!r}")
    return int(text)


def parse_jump_chain(value: str, where: str) -> tuple[Hop, ...]:
    """``ProxyJump`` value: ``[user@]host[:port]`` hops separated by commas (``ssh://`` URIs
    too); ``none`` is no jump."""
    if value.strip().lower() == "none":
        return ()
    hops: list[Hop] = []
    for part in value.split(","):
        m = _HOP.fullmatch(part.strip())
        if not m:
            raise TargetsError(f"{where}: not a jump host ([user@]host[:port]): {part.strip()!r}")
        port = parse_port(m["port"], f"{where}: jump host {m['host']}") if m["port"] else None
        hops.append(Hop(m["host"].strip("[]"), m["user"], port))
    return tuple(hops)


def host_key_policy(value: str, where: str, *, fallback: bool) -> HostKeyPolicy | None:
    """``StrictHostKeyChecking``: ``yes`` and ``ask`` (no one to ask) are strict,
    ``accept-new`` is accept-new. ``no``/``off`` turn checks off, which this tool never does:
    refused, unless the target sets ``host_key_policy`` itself (``fallback``), which then
    applies (None)."""
    word = value.strip().lower()
    if word in ("yes", "ask", "true"):
        return "strict"
    if word == "accept-new":
        return "accept-new"
    if word in ("no", "off", "false"):
        if fallback:
            return None
        raise TargetsError(
            f"{where}: {value!r} turns host key checks off, which pytest-azlinux never does: "
            "use accept-new (learn a new key once, refuse a changed one) or yes, or set "
            "defaults.host_key_policy in the target"
        )
    raise TargetsError(f"{where}: expected yes, accept-new, ask or no, got {value!r}")


def known_hosts_file(value: str, where: str) -> str:
    """``UserKnownHostsFile``: the first file of the list (the one new keys go to)."""
    files = shlex.split(value)
    if not files:
        raise TargetsError(f"{where}: empty")
    if files[0].lower() in _REFUSED_KNOWN_HOSTS:
        raise TargetsError(
            f"{where}: {files[0]!r} keeps no host keys, so no host could be verified: "
            "name a known_hosts file"
        )
    return files[0]


def parse_ssh_args(text: str, where: str) -> dict[str, str]:
    """ssh(1) command-line options (``-o Key=Value``, ``-o 'Key Value'``, ``-J``, ``-p``,
    ``-l``, ``-i``) as OpenSSH keywords; the first value of a keyword wins, as in ssh.
    Options this tool has no use for (``-o ControlPersist=60s``, ``-C``...) are passed over."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise TargetsError(f"{where}: cannot split into arguments: {exc}") from None
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or token == "-":
            raise TargetsError(f"{where}: not an ssh option: {token!r}")
        letters = token[1:]
        for pos, letter in enumerate(letters):
            if letter not in _WITH_ARGUMENT:
                continue  # a flag
            value = letters[pos + 1:]
            if not value:
                if i >= len(tokens):
                    raise TargetsError(f"{where}: option -{letter} needs a value")
                value = tokens[i]
                i += 1
            if letter == "o":
                m = re.fullmatch(r"\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*", value)
                if not m:
                    raise TargetsError(f"{where}: -o expects Key=Value, got {value!r}")
                out.setdefault(m[1].lower(), m[2])
            elif letter in _LETTER_KEYWORD:
                out.setdefault(_LETTER_KEYWORD[letter], value)
            break  # the rest of the token was the value
    return out


def proxy_command_hop(command: str, where: str) -> tuple[Hop, ...] | None:
    """A ``ProxyCommand`` of the form ``ssh -W %h:%p [options] [user@]host`` as the jump
    chain it stands for (its own ``-J`` hops first); None for any other command."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or os.path.basename(argv[0]) != "ssh" or "-W" not in " ".join(argv):
        return None
    options: list[str] = []
    destination: str | None = None
    i = 1
    while i < len(argv):
        token = argv[i]
        if destination is None and not token.startswith("-"):
            destination = token
        elif token.startswith("-"):
            options.append(token)
            takes_value = token[-1] in _WITH_ARGUMENT and len(token) == 2
            if takes_value and i + 1 < len(argv):
                options.append(argv[i + 1])
                i += 1
        else:
            return None  # a command after the destination: not a plain -W hop
        i += 1
    if destination is None:
        return None
    opts = parse_ssh_args(shlex.join(options), where)
    (hop,) = parse_jump_chain(destination, where)
    port = parse_port(opts["port"], f"{where}: -p") if "port" in opts else hop.port
    inner = parse_jump_chain(opts["proxyjump"], f"{where}: -J") if "proxyjump" in opts else ()
    last = Hop(hop.host, opts.get("user", hop.user), port, opts.get("identityfile"))
    return (*inner, last)


def typed(opts: Mapping[str, Any], field: FieldLabel, *, policy_fallback: bool) -> Options:
    """OpenSSH keywords (``port``, ``user``, ``identityfile`` (a string or a list),
    ``proxyjump``, ``proxycommand``, ``userknownhostsfile``, ``stricthostkeychecking``,
    ``connecttimeout``) as typed options; ``field("Port")`` says where each came from."""
    port = parse_port(opts["port"], field("Port")) if "port" in opts else None
    identity = opts.get("identityfile") or ()
    identities = (identity,) if isinstance(identity, str) else tuple(identity)
    jump: tuple[Hop, ...] | None = None
    if "proxyjump" in opts:
        jump = parse_jump_chain(str(opts["proxyjump"]), field("ProxyJump"))
    elif str(opts.get("proxycommand", "none")).strip().lower() != "none":
        command = str(opts["proxycommand"])
        jump = proxy_command_hop(command, field("ProxyCommand"))
        if jump is None:
            raise TargetsError(
                f"{field('ProxyCommand')}: {command!r} is not supported: use ProxyJump (or a "
                "ProxyCommand of the form 'ssh -W %h:%p [user@]host')"
            )
    known = None
    if "userknownhostsfile" in opts:
        known = known_hosts_file(str(opts["userknownhostsfile"]), field("UserKnownHostsFile"))
    policy = None
    if "stricthostkeychecking" in opts:
        policy = host_key_policy(str(opts["stricthostkeychecking"]),
                                 field("StrictHostKeyChecking"), fallback=policy_fallback)
    timeout = None
    if "connecttimeout" in opts:
        raw = str(opts["connecttimeout"])
        if not raw.isdigit() or int(raw) == 0:
            raise TargetsError(f"{field('ConnectTimeout')}: expected seconds > 0, got {raw!r}")
        timeout = float(raw)
    user = opts.get("user")
    return Options(port=port, user=str(user) if user is not None else None,
                   identity_files=identities, jump=jump, known_hosts=known,
                   host_key_policy=policy, connect_timeout=timeout)


def pick_key(paths: Sequence[str], where: str) -> str | None:
    """The first of the named key files that exists (ssh tries each in turn; a host takes
    one); an error when none does."""
    for path in paths:
        if os.path.isfile(os.path.expanduser(path)):
            return path
    if paths:
        raise TargetsError(f"{where}: no such key file: {', '.join(paths)}")
    return None

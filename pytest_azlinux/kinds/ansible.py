"""``kind: ansible``: the hosts of a group (or host pattern) of an Ansible inventory file.

Each host's connection variables become its SSH settings; what the inventory leaves unset
comes from the target's ``defaults``. Read: ``ansible_host``, ``ansible_port``,
``ansible_user``, ``ansible_ssh_private_key_file``, ``ansible_password``,
``ansible_ssh_common_args``/``ansible_ssh_extra_args`` (``-o ProxyJump=``, ``-J``, ``-o
ProxyCommand='ssh -W %h:%p ...'``, ``-o StrictHostKeyChecking=``, ``-o
UserKnownHostsFile=``), ``ansible_host_key_checking``, ``ansible_become`` (sudo only),
``ansible_become_password``, ``ansible_timeout``, ``ansible_connection`` (ssh or local), and
the older ``ansible_ssh_host``/``_port``/``_user``/``_pass`` spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..errors import TargetsError
from ..inventory import Inventory, Unsafe, Vaulted, load_inventory, select_group, select_pattern
from ..targets import AnsibleTarget, AnyTarget, HostSpec, SshSettings, is_host_name, merge_ssh_spec
from . import openssh
from .protocol import Resolved

# Later names win, as in Ansible's ssh connection plugin (the ansible_ssh_* spelling last).
ADDRESS = ("ansible_host", "ansible_ssh_host")
PORT = ("ansible_port", "ansible_ssh_port")
USER = ("ansible_user", "ansible_ssh_user")
KEY = ("ansible_private_key_file", "ansible_ssh_private_key_file")
PASSWORD = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
BECOME_PASSWORD = ("ansible_sudo_pass", "ansible_become_pass", "ansible_become_password")
HOST_KEY_CHECKING = ("ansible_host_key_checking", "ansible_ssh_host_key_checking")
TIMEOUT = ("ansible_timeout", "ansible_ssh_timeout")
SSH_CONNECTIONS = ("ssh", "paramiko", "smart")
_TRUE = {"yes", "on", "1", "true", "y", "t"}
_FALSE = {"no", "off", "0", "false", "n", "f"}


class _Vars:
    """A host's merged variables, read one field at a time with errors naming the field."""

    def __init__(self, variables: Mapping[str, Any], where: str) -> None:
        self.variables = variables
        self.where = where

    def field(self, name: str) -> str:
        return f"{self.where}: field {name!r}"

    def raw(self, names: tuple[str, ...]) -> tuple[str, Any] | None:
        """(name, value) of the last of ``names`` that is set, or None."""
        found = [(n, self.variables[n]) for n in names if n in self.variables]
        return found[-1] if found else None

    def text(self, names: tuple[str, ...], *, empty_ok: bool = True) -> str | None:
        item = self.raw(names)
        if item is None:
            return None
        name, value = item
        if isinstance(value, Vaulted):
            raise TargetsError(f"{self.field(name)}: encrypted with ansible-vault, which this "
                               "plain inventory reader cannot decrypt")
        if value is None or value == "":
            if empty_ok:
                return None
            raise TargetsError(f"{self.field(name)}: empty")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TargetsError(f"{self.field(name)}: expected text, got {type(value).__name__}")
        text = str(value)
        if not isinstance(value, Unsafe) and ("{{" in text or "{%" in text):
            raise TargetsError(f"{self.field(name)}: {text!r} is a Jinja2 template, which this "
                               "plain inventory reader does not evaluate")
        return text

    def flag(self, names: tuple[str, ...]) -> bool | None:
        item = self.raw(names)
        if item is None or item[1] is None:
            return None
        name, value = item
        if isinstance(value, bool):
            return value
        word = str(self.text((name,))).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise TargetsError(f"{self.field(name)}: expected a boolean (yes/no, true/false), "
                           f"got {value!r}")


def host_spec(inventory: Inventory, host: str, target: str, config: AnsibleTarget,
              where: str) -> HostSpec:
    """One inventory host as the transports see it."""
    if not is_host_name(host):
        raise TargetsError(f"{where}: host {host!r}: a host name may hold only letters, "
                           "digits, '.', '_', '-'")
    v = _Vars(inventory.variables(host), f"{where}: host {host!r}")
    connection = v.text(("ansible_connection",)) or "ssh"
    become = _become(v)
    if connection == "local":
        return HostSpec(name=host, target=target, access="local", sudo=bool(become),
                        profile=config.profile)
    if connection not in SSH_CONNECTIONS:
        raise TargetsError(f"{v.field('ansible_connection')}: {connection!r} is not "
                           "supported (ssh or local)")
    address = v.text(ADDRESS, empty_ok=False) or host
    fallback = config.defaults.host_key_policy is not None
    args, key_field = _ssh_args(v, fallback)
    port_item = v.raw(PORT)
    port = (openssh.parse_port(port_item[1], v.field(port_item[0])) if port_item is not None
            else args.port)
    key_item, key_file = v.raw(KEY), v.text(KEY)
    if key_item is not None and key_file:  # checked here, to name the variable
        key = openssh.pick_key([key_file], v.field(key_item[0]))
    else:
        key = openssh.pick_key(args.identity_files, f"{v.field(key_field)}: -i")
    policy = args.host_key_policy
    checking = v.flag(HOST_KEY_CHECKING)
    if checking is True:
        policy = "strict"
    elif checking is False and not fallback:
        raise TargetsError(
            f"{v.field(HOST_KEY_CHECKING[0])}: false turns host key checks off, which "
            "pytest-azlinux never does: set defaults.host_key_policy in the target (accept-new "
            "learns a new key once and refuses a changed one)"
        )
    elif checking is False:
        policy = None
    password = v.text(PASSWORD)
    sudo_password = v.text(BECOME_PASSWORD)
    layer = SshSettings(
        user=v.text(USER) or args.user, port=port, identity_file=key,
        password=SecretStr(password) if password else None,
        known_hosts=args.known_hosts, host_key_policy=policy,
        jump=[hop.jump_host() for hop in args.jump] if args.jump is not None else None,
        sudo=become, sudo_password=SecretStr(sudo_password) if sudo_password else None,
        connect_timeout=_timeout(v) or args.connect_timeout,
    )
    return merge_ssh_spec(name=host, address=address, target=target,
                          layers=(layer, config.defaults), profile=config.profile)


def _become(v: _Vars) -> bool | None:
    become = v.flag(("ansible_become",))
    if become:
        method = v.text(("ansible_become_method",)) or "sudo"
        if method != "sudo":
            raise TargetsError(f"{v.field('ansible_become_method')}: {method!r} is not "
                               "supported (sudo)")
        user = v.text(("ansible_become_user",)) or "root"
        if user != "root":
            raise TargetsError(f"{v.field('ansible_become_user')}: {user!r} is not supported "
                               "(tests run as root under become)")
    return become


def _ssh_args(v: _Vars, fallback: bool) -> tuple[openssh.Options, str]:
    """``ansible_ssh_common_args`` over ``ansible_ssh_extra_args`` (Ansible puts them on ssh's
    command line in that order and ssh keeps an option's first value), and the field a key
    file (``-i``) came from."""
    merged, key_field = openssh.Options(), "ansible_ssh_common_args"
    for name in ("ansible_ssh_extra_args", "ansible_ssh_common_args"):
        text = v.text((name,))
        if not text:
            continue
        where = v.field(name)

        def label(keyword: str, where: str = where) -> str:
            return f"{where}: {keyword}"

        opts = openssh.typed(openssh.parse_ssh_args(text, where), label,
                             policy_fallback=fallback)
        if opts.identity_files:
            key_field = name
        merged = opts.or_else(merged)
    return merged, key_field


def _timeout(v: _Vars) -> float | None:
    item = v.raw(TIMEOUT)
    if item is None or item[1] is None:
        return None
    name, value = item
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(value, bool) or seconds <= 0:
        raise TargetsError(f"{v.field(name)}: expected seconds > 0, got {value!r}")
    return seconds


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    assert isinstance(config, AnsibleTarget)
    where = f"target {name!r}"
    path = Path(config.inventory)
    inventory = load_inventory(path, where)
    if config.group is not None:
        hosts = select_group(inventory, config.group, inventory.source)
    else:
        hosts = select_pattern(inventory, config.selection(), inventory.source)
    return Resolved([host_spec(inventory, h, name, config, inventory.source) for h in hosts])

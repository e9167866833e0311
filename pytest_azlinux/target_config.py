"""The models of the targets file: each kind's target, and the settings they share.

Which kinds exist, and which model and resolver each has, is the kinds table
(``kinds/__init__.py``); ``targets.py`` loads and validates a file against it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_SSH_CONFIG = "~/.ssh/config"
HostKeyPolicy = Literal["strict", "accept-new"]
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_host_name(value: str) -> bool:
    """Whether ``value`` can name a host in test ids and reports."""
    return bool(_HOST_NAME.match(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Model):
    """What the target's hosts are expected to run."""

    image_version: str | None = None
    allow_mixed_images: bool = False


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would take true for port 1
        raise ValueError(f"a port is a number, not {str(value).lower()}")
    return value


Port = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1, le=65535)]


class JumpHost(_Model):
    """One hop of a ProxyJump chain (``user@address:port`` or a mapping)."""

    address: str
    port: Port = 22
    user: str | None = None
    identity_file: str | None = None
    password: SecretStr | None = None


def _parse_jump(value: Any) -> Any:
    if isinstance(value, str):
        m = re.fullmatch(r"(?:(?P<user>[^@]+)@)?(?P<address>[^:@]+)(?::(?P<port>\d+))?", value)
        if not m:
            raise ValueError(f"not a jump host spec (user@address:port): {value!r}")
        out: dict[str, Any] = {"address": m["address"]}
        if m["user"]:
            out["user"] = m["user"]
        if m["port"]:
            out["port"] = int(m["port"])
        return out
    return value


class SshSettings(_Model):
    """SSH settings shared by the hosts of a target (``defaults:``) or set per host."""

    user: str | None = None
    port: Port | None = None
    identity_file: str | None = None
    password: SecretStr | None = None
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy | None = None
    jump: list[JumpHost] | None = None
    sudo: bool | None = None
    sudo_password: SecretStr | None = None
    connect_timeout: float | None = Field(default=None, gt=0)
    reconnect_within: float | None = Field(default=None, ge=0)

    @field_validator("jump", mode="before")
    @classmethod
    def _jump_list(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str | Mapping):
            value = [value]
        return [_parse_jump(v) for v in value]


class SshHostEntry(SshSettings):
    """One host of an ``ssh`` target."""

    name: str
    address: str
    profile: str | None = None
    scratch_devices: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _HOST_NAME.match(value):
            raise ValueError(f"host name {value!r} may hold only letters, digits, '.', '_', '-'")
        return value


class TargetConfig(_Model):
    """What every target has, whatever its kind; each kind's model adds its own fields
    and narrows ``kind`` to its name."""

    kind: str
    description: str | None = None
    profile: str | None = None
    expect: Expect = Field(default_factory=Expect)
    # Per-suite settings (thresholds, allowlists, probe addresses), read by the suites.
    suites: dict[str, dict[str, Any]] = Field(default_factory=dict)


class LocalTarget(TargetConfig):
    kind: Literal["local"]
    name: str = "localhost"
    sudo: bool = False
    scratch_devices: list[str] = Field(default_factory=list)


class SshTarget(TargetConfig):
    kind: Literal["ssh"]
    defaults: SshSettings = Field(default_factory=SshSettings)
    hosts: list[SshHostEntry] = Field(min_length=1)

    @field_validator("hosts", mode="before")
    @classmethod
    def _no_aliases(cls, hosts: Any) -> Any:
        for i, h in enumerate(hosts if isinstance(hosts, list) else ()):
            if isinstance(h, str):
                raise ValueError(
                    f"hosts[{i}] is a name ({h!r}), not {{name, address}}: to pick hosts by "
                    f"their ssh_config alias, set ssh_config: (default {DEFAULT_SSH_CONFIG})"
                )
        return hosts

    @field_validator("hosts")
    @classmethod
    def _unique_names(cls, hosts: list[SshHostEntry]) -> list[SshHostEntry]:
        seen: set[str] = set()
        for h in hosts:
            if h.name in seen:
                raise ValueError(f"duplicate host name {h.name!r}")
            seen.add(h.name)
        return hosts


def _config_path(value: str, info: ValidationInfo) -> str:
    """``~`` expanded; a relative path is relative to the targets file that names it."""
    path = Path(os.path.expanduser(value))
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return str(path)


class SshConfigTarget(TargetConfig):
    """``kind: ssh`` with ``ssh_config:``: hosts named by alias (or glob) in an OpenSSH client
    config; what the config leaves unset comes from ``defaults``."""

    kind: Literal["ssh"]
    ssh_config: str
    hosts: list[str] = Field(min_length=1)
    defaults: SshSettings = Field(default_factory=SshSettings)

    @field_validator("ssh_config", mode="before")
    @classmethod
    def _default_config(cls, value: Any) -> Any:
        if value is None or value is True:  # "ssh_config:" or "ssh_config: true"
            return DEFAULT_SSH_CONFIG
        if value is False or value == "":
            raise ValueError("a path (or true for ~/.ssh/config); leave the key out for a "
                             "plain ssh target")
        return value

    @field_validator("ssh_config")
    @classmethod
    def _relative_to_file(cls, value: str, info: ValidationInfo) -> str:
        return _config_path(value, info)

    @field_validator("hosts", mode="before")
    @classmethod
    def _aliases(cls, hosts: Any) -> Any:
        for i, h in enumerate(hosts if isinstance(hosts, list) else ()):
            if not isinstance(h, str):
                raise ValueError(
                    f"hosts[{i}]: with ssh_config, hosts are Host aliases or globs from that "
                    f"file (strings), got a {type(h).__name__}"
                )
        return hosts


class AnsibleTarget(TargetConfig):
    """``kind: ansible``: the hosts of a group (or pattern) of an Ansible inventory file;
    what the inventory leaves unset comes from ``defaults``."""

    kind: Literal["ansible"]
    inventory: str
    group: str | None = None
    pattern: str | None = None
    defaults: SshSettings = Field(default_factory=SshSettings)

    @field_validator("inventory")
    @classmethod
    def _relative_to_file(cls, value: str, info: ValidationInfo) -> str:
        return _config_path(value, info)

    @model_validator(mode="after")
    def _group_or_pattern(self) -> AnsibleTarget:
        if self.group is not None and self.pattern is not None:
            raise ValueError("give group or pattern, not both")
        return self

    def selection(self) -> str:
        """The Ansible host pattern this target selects (``all`` when neither is given)."""
        return self.group or self.pattern or "all"


class LabTarget(TargetConfig):
    kind: Literal["lab"]
    lab: str | None = None  # which lab (default: $AZL_LAB_NAME, else "azl")
    hosts: int = Field(default=3, ge=1, le=200)
    variants: list[str] = Field(default_factory=lambda: ["azl3", "azl3-hwe", "mariner2"])
    disk_size: str = "1G"
    keep: bool = False  # leave a lab this run started running at the end
    sudo: bool = False  # run commands as root (the lab's azureuser has passwordless sudo)


class ClusterTarget(TargetConfig):
    kind: Literal["cluster"]
    kubeconfig: str = "~/.kube/config"
    context: str | None = None
    pool: str | None = None
    selector: str | None = None
    namespace: str = "azl-system"
    access: Literal["debug-pod", "ssh"] = "debug-pod"
    debug_image: str = "mcr.microsoft.com/cbl-mariner/busybox:2.0"
    ssh: SshSettings = Field(default_factory=SshSettings)

    def label_selector(self) -> str:
        parts = [p for p in (f"agentpool={self.pool}" if self.pool else None, self.selector) if p]
        return ",".join(parts)


ImageFormat = Literal["qcow2", "raw", "vpc", "vhdx"]
Provisioning = Literal["auto", "cloud-init", "ignition"]
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
IMAGE_SUFFIXES: dict[str, ImageFormat] = {
    ".qcow2": "qcow2", ".raw": "raw", ".img": "raw", ".vhd": "vpc", ".vhdx": "vhdx",
}


class ImageTarget(TargetConfig):
    """An image file booted under qemu (a copy-on-write overlay: the file is never changed),
    provisioned by cloud-init from a NoCloud seed, reached over SSH on a lab bridge."""

    kind: Literal["image"]
    path: str
    format: ImageFormat | None = None  # default: from the suffix (.vhd is qemu's "vpc")
    # bios (SeaBIOS), uefi (OVMF), uefi-secureboot (OVMF enforcing Secure Boot on the lab's
    # keys, or on the image's own enrolled variable store: ``secure_boot_vars``)
    firmware: Literal["bios", "uefi", "uefi-secureboot"] = "bios"
    secure_boot_vars: str | None = None
    tpm: bool = False  # a TPM 2.0 (swtpm, state per instance)
    # how the first boot is provisioned: auto (detected from the image, docs/image-files.md),
    # cloud-init (a NoCloud seed) or ignition (a config through qemu's fw_cfg)
    provisioning: Provisioning = "auto"
    user: str | None = None  # the login user: default azureuser (cloud-init), core (ignition)
    ignition: str | None = None  # an Ignition 3.x config of the user's, merged into the run's
    memory: int = Field(default=1024, ge=256, description="MiB")
    cpus: int = Field(default=1, ge=1, le=64)
    # seconds until sshd answers (default: 300 under KVM, 1800 under TCG, qemu's emulator)
    boot_timeout: float | None = Field(default=None, gt=0)
    instances: int = Field(default=1, ge=1, le=16)
    keep: bool = False  # leave the VMs running at the end (``--azl-keep``)

    @field_validator("path", "secure_boot_vars", "ignition")
    @classmethod
    def _expand(cls, value: str | None) -> str | None:
        return None if value is None else os.path.expanduser(value)

    @field_validator("user")
    @classmethod
    def _user_name(cls, value: str | None) -> str | None:
        if value is not None and not _USER_NAME.match(value):
            raise ValueError(f"not a user name: {value!r}")
        return value

    @field_validator("secure_boot_vars")
    @classmethod
    def _vars_need_secure_boot(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("firmware") != "uefi-secureboot":
            raise ValueError("needs firmware: uefi-secureboot (the vars file holds its keys)")
        return value

    @field_validator("ignition")
    @classmethod
    def _config_needs_ignition(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("provisioning") == "cloud-init":
            raise ValueError("an Ignition config needs provisioning: ignition or auto")
        return value

    def image_format(self) -> ImageFormat | None:
        """The format given, else the one the suffix names (None: qemu-img decides)."""
        return self.format or IMAGE_SUFFIXES.get(Path(self.path).suffix.lower())


class RecordedTarget(TargetConfig):
    """``kind: recorded``: images replayed from their recordings, nothing booted or reached.
    ``path``: an AgentBaker release-notes file, or a directory of them (``*.txt``: one host
    per file, named after the file's stem); relative to the targets file."""

    kind: Literal["recorded"]
    path: str

    @field_validator("path")
    @classmethod
    def _relative_to_file(cls, value: str, info: ValidationInfo) -> str:
        return _config_path(value, info)

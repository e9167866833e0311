"""The targets file: schema, loading, validation errors, and name -> hosts.

A targets file maps target names to a target of one *kind*:

- ``local``   this machine;
- ``ssh``     a list of hosts reached over SSH (defaults, jump hosts, host-key policy), or
  with ``ssh_config:`` hosts named by their aliases in an OpenSSH client config;
- ``ansible`` the hosts of a group (or pattern) of an Ansible inventory file;
- ``lab``     the local lab (``azl lab``), resolved to the ssh target the lab writes;
- ``cluster`` a node pool of a Kubernetes cluster (nodes are discovered at run time);
- ``image``   an image file (qcow2, raw, VHD/VHDX) booted under qemu with a cloud-init seed.

Every error names the file, the target and the field, on one line.
Strings may reference environment variables as ``${NAME}`` (or ``${NAME:-default}``);
secret fields hold ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import TargetsError
from .yamlfile import load_yaml, read_text

DEFAULT_FILE_NAME = "azl-targets.yaml"
DEFAULT_SSH_CONFIG = "~/.ssh/config"
KINDS = ("local", "ssh", "ansible", "lab", "cluster", "image")
HostKeyPolicy = Literal["strict", "accept-new"]
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
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


class JumpHost(_Model):
    """One hop of a ProxyJump chain (``user@address:port`` or a mapping)."""

    address: str
    port: int = Field(default=22, ge=1, le=65535)
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
    port: int | None = Field(default=None, ge=1, le=65535)
    identity_file: str | None = None
    password: SecretStr | None = None
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy | None = None
    jump: list[JumpHost] | None = None
    sudo: bool | None = None
    sudo_password: SecretStr | None = None
    connect_timeout: float | None = Field(default=None, gt=0)

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


class _TargetBase(_Model):
    description: str | None = None
    profile: str | None = None
    expect: Expect = Field(default_factory=Expect)
    # Per-suite settings (thresholds, allowlists, probe addresses), read by the suites.
    suites: dict[str, dict[str, Any]] = Field(default_factory=dict)


class LocalTarget(_TargetBase):
    kind: Literal["local"]
    name: str = "localhost"
    sudo: bool = False
    scratch_devices: list[str] = Field(default_factory=list)


class SshTarget(_TargetBase):
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


class SshConfigTarget(_TargetBase):
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


class AnsibleTarget(_TargetBase):
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


class LabTarget(_TargetBase):
    kind: Literal["lab"]
    lab: str | None = None  # which lab (default: $AZL_LAB_NAME, else "azl")
    hosts: int = Field(default=3, ge=1, le=200)
    variants: list[str] = Field(default_factory=lambda: ["azl3", "azl3-hwe", "mariner2"])
    disk_size: str = "1G"
    keep: bool = False  # leave a lab this run started running at the end
    sudo: bool = False  # run commands as root (the lab's azureuser has passwordless sudo)


class ClusterTarget(_TargetBase):
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
IMAGE_SUFFIXES: dict[str, ImageFormat] = {
    ".qcow2": "qcow2", ".raw": "raw", ".img": "raw", ".vhd": "vpc", ".vhdx": "vhdx",
}


class ImageTarget(_TargetBase):
    """An image file booted under qemu (a copy-on-write overlay: the file is never changed),
    provisioned by cloud-init from a NoCloud seed, reached over SSH on a lab bridge."""

    kind: Literal["image"]
    path: str
    format: ImageFormat | None = None  # default: from the suffix (.vhd is qemu's "vpc")
    firmware: Literal["bios", "uefi"] = "bios"
    memory: int = Field(default=1024, ge=256, description="MiB")
    cpus: int = Field(default=1, ge=1, le=64)
    # seconds until sshd answers (default: 300 under KVM, 1800 under TCG, qemu's emulator)
    boot_timeout: float | None = Field(default=None, gt=0)
    instances: int = Field(default=1, ge=1, le=16)
    keep: bool = False  # leave the VMs running at the end (``--azl-keep``)

    @field_validator("path")
    @classmethod
    def _expand(cls, value: str) -> str:
        return os.path.expanduser(value)

    def image_format(self) -> ImageFormat | None:
        """The format given, else the one the suffix names (None: qemu-img decides)."""
        return self.format or IMAGE_SUFFIXES.get(Path(self.path).suffix.lower())


AnyTarget = (
    LocalTarget | SshTarget | SshConfigTarget | AnsibleTarget | LabTarget | ClusterTarget
    | ImageTarget
)


def _target_tag(value: Any) -> Any:
    """The model a target validates as: its ``kind``, except that ``kind: ssh`` with an
    ``ssh_config`` key is the ssh_config model."""
    if isinstance(value, Mapping):
        kind = value.get("kind")
        return "ssh-config" if kind == "ssh" and "ssh_config" in value else kind
    return "ssh-config" if isinstance(value, SshConfigTarget) else getattr(value, "kind", None)


Target = Annotated[
    Annotated[LocalTarget, Tag("local")]
    | Annotated[SshTarget, Tag("ssh")]
    | Annotated[SshConfigTarget, Tag("ssh-config")]
    | Annotated[AnsibleTarget, Tag("ansible")]
    | Annotated[LabTarget, Tag("lab")]
    | Annotated[ClusterTarget, Tag("cluster")]
    | Annotated[ImageTarget, Tag("image")],
    Discriminator(_target_tag),
]
_TARGET_ADAPTER: TypeAdapter[AnyTarget] = TypeAdapter(Target)

BUILTIN_TARGETS: dict[str, dict[str, Any]] = {
    "local": {"kind": "local", "description": "this machine"},
    "lab": {
        "kind": "lab", "description": "the local lab (azl lab), started on demand",
        # The default lab mixes three images by design, and its links are veth pairs on one
        # machine: short iperf3 runs decide as much there as long ones.
        "expect": {"allow_mixed_images": True},
        # UDP loss on the lab is CPU starvation of this machine, not the network: a low rate
        # and a looser loss limit keep the check meaningful without failing on load. Its
        # TCP throughput follows the machine's CPU from run to run: compare gates it as a
        # share of a loopback run taken just before each repetition, and decides by a rank
        # test over 5 short repetitions of both runs (docs/network.md).
        "suites": {"network": {"duration": 1, "omit": 0, "repetitions": 5,
                               "udp_rate": "10M", "max_udp_loss_pct": 5,
                               "reference": "loopback", "noise_tolerance": 0.2},
                   # Namespaced hosts share this machine's kernel, sysctls, modules, mounts
                   # and packages: the baseline would judge the machine, not an image.
                   "hardening": {"skip": "namespaced lab hosts share this machine's kernel, "
                                 "sysctls, modules, mounts and packages, so the baseline would "
                                 "judge this machine, not an image; run it on VM hosts "
                                 "(azl lab up --vm ...) or real hosts"}},
    },
}


@dataclass(frozen=True)
class HostSpec:
    """One machine as the transports see it, resolved from a target."""

    name: str
    target: str
    access: Literal["local", "ssh", "kube"]
    address: str = "localhost"
    port: int = 22
    user: str | None = None
    identity_file: str | None = None
    password: SecretStr | None = None
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = "strict"
    jump: tuple[JumpHost, ...] = ()
    sudo: bool = False
    sudo_password: SecretStr | None = None
    connect_timeout: float = 10.0
    profile: str | None = None
    scratch_devices: tuple[str, ...] = ()
    # Kubernetes nodes: node name and labels (the cluster transport fills these).
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        values = [self.password, self.sudo_password, *(j.password for j in self.jump)]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


@dataclass(frozen=True)
class TargetsFile:
    """A loaded targets file: validated targets by name, and where they came from."""

    path: Path | None
    targets: Mapping[str, AnyTarget]

    def get(self, name: str) -> AnyTarget:
        try:
            return self.targets[name]
        except KeyError:
            where = str(self.path) if self.path else "built-in targets"
            known = ", ".join(sorted(self.targets)) or "none"
            raise TargetsError(
                f"{where}: unknown target {name!r} (known: {known})"
            ) from None

    def secrets(self) -> list[str]:
        """Every secret value, so reports and logs can redact them."""
        out: list[str] = []
        for target in self.targets.values():
            layers: list[SshSettings] = []
            if isinstance(target, SshTarget):
                layers = [target.defaults, *target.hosts]
            elif isinstance(target, SshConfigTarget | AnsibleTarget):
                layers = [target.defaults]
            elif isinstance(target, ClusterTarget):
                layers = [target.ssh]
            for layer in layers:
                values = [layer.password, layer.sudo_password,
                          *(j.password for j in layer.jump or ())]
                out.extend(v.get_secret_value() for v in values if v and v.get_secret_value())
        return out


def _expand_env(value: Any, where: str, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${NAME}`` references, naming the field when a variable is missing."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise TargetsError(
                f"{where}: field '{path or '(target)'}': environment variable {name} is not set"
            )

        return _ENV_REF.sub(repl, value)
    if isinstance(value, Mapping):
        return {
            k: _expand_env(v, where, env, f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, where, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _format_loc(loc: Sequence[int | str], tag: Any) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if i == 0 and item == tag:  # the discriminator tag pydantic puts first
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(target)"


def validate_target(
    name: str, raw: Any, source: str, base_dir: Path | None = None
) -> AnyTarget:
    """Validate one target mapping; raise TargetsError naming source, target and field.
    Relative paths to files a target reads (``inventory``, ``ssh_config``) are taken from
    ``base_dir`` (the targets file's directory)."""
    prefix = f"{source}: target {name!r}"
    kinds = ", ".join(KINDS)
    if not isinstance(raw, Mapping):
        raise TargetsError(f"{prefix}: must be a mapping, got {type(raw).__name__}")
    if "kind" not in raw:
        raise TargetsError(f"{prefix}: field 'kind' is required ({kinds})")
    try:
        return _TARGET_ADAPTER.validate_python(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = _format_loc(err["loc"], _target_tag(raw))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            msg = f"unknown kind {raw.get('kind')!r} (expected one of {kinds})"
            field_name = "kind"
        raise TargetsError(f"{prefix}: field '{field_name}': {msg}{more}") from None


def parse_targets(
    text: str, source: str, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> dict[str, AnyTarget]:
    """Parse targets-file text into validated targets (no built-ins); relative file paths
    in targets are taken from ``base_dir``."""
    env = os.environ if env is None else env
    data = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TargetsError(f"{source}: top level must be a mapping with a 'targets' key")
    unknown = set(data) - {"targets"}
    if unknown:
        raise TargetsError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    raw_targets = data.get("targets") or {}
    if not isinstance(raw_targets, Mapping):
        raise TargetsError(f"{source}: 'targets' must be a mapping of name -> target")
    out: dict[str, AnyTarget] = {}
    for name, raw in raw_targets.items():
        if not isinstance(name, str) or not _HOST_NAME.match(name):
            raise TargetsError(f"{source}: invalid target name {name!r}")
        expanded = _expand_env(raw, f"{source}: target {name!r}", env)
        out[name] = validate_target(name, expanded, source, base_dir)
    return out


def load_targets(path: Path | None, env: Mapping[str, str] | None = None) -> TargetsFile:
    """Load a targets file on top of the built-in targets (``local``, ``lab``)."""
    targets: dict[str, AnyTarget] = {
        name: validate_target(name, raw, "built-in") for name, raw in BUILTIN_TARGETS.items()
    }
    if path is not None:
        text = read_text(path, "targets file")
        targets.update(parse_targets(text, str(path), env, path.absolute().parent))
    return TargetsFile(path=path, targets=targets)


def _pick(*values: Any, default: Any = None) -> Any:
    return next((v for v in values if v is not None), default)


def merge_ssh_spec(
    *, name: str, address: str, target: str, layers: Sequence[SshSettings],
    profile: str | None = None, scratch_devices: Sequence[str] = (),
    node: str | None = None, labels: Mapping[str, str] | None = None,
) -> HostSpec:
    """The one merge of SSH settings into a HostSpec: the first layer that sets a field wins
    (a host's own settings, then the target's defaults); ``~`` is expanded in every path,
    jump hosts' too."""

    def pick(field_name: str, default: Any = None) -> Any:
        return _pick(*(getattr(layer, field_name) for layer in layers), default=default)

    jumps = tuple(
        j.model_copy(update={"identity_file": _expand_path(j.identity_file)})
        for j in pick("jump", default=[])
    )
    return HostSpec(
        name=name,
        target=target,
        access="ssh",
        address=address,
        port=pick("port", default=22),
        user=pick("user"),
        identity_file=_expand_path(pick("identity_file")),
        password=pick("password"),
        known_hosts=_expand_path(pick("known_hosts")),
        host_key_policy=pick("host_key_policy", default="strict"),
        jump=jumps,
        sudo=pick("sudo", default=False),
        sudo_password=pick("sudo_password"),
        connect_timeout=pick("connect_timeout", default=10.0),
        profile=profile,
        scratch_devices=tuple(scratch_devices),
        node=node,
        labels=dict(labels or {}),
    )


def check_key_files(spec: HostSpec) -> None:
    """A key file that does not exist is an error naming target, host, field and file
    (rather than "No such file or directory" at connect time)."""
    paths = [("identity_file", spec.identity_file)] + [
        (f"jump[{i}].identity_file", j.identity_file) for i, j in enumerate(spec.jump)
    ]
    for field_name, path in paths:
        if path and not os.path.isfile(path):
            raise TargetsError(
                f"target {spec.target!r}: host {spec.name!r}: field '{field_name}': "
                f"no such key file: {path}"
            )


def ssh_host_specs(target: SshTarget, target_name: str) -> list[HostSpec]:
    """Merge per-host settings over the target's defaults."""
    return [
        merge_ssh_spec(
            name=h.name, address=h.address, target=target_name, layers=(h, target.defaults),
            profile=_pick(h.profile, target.profile), scratch_devices=h.scratch_devices,
        )
        for h in target.hosts
    ]


def local_host_specs(target: LocalTarget, target_name: str) -> list[HostSpec]:
    return [
        HostSpec(
            name=target.name,
            target=target_name,
            access="local",
            sudo=target.sudo,
            profile=target.profile,
            scratch_devices=tuple(target.scratch_devices),
        )
    ]


def _expand_path(value: str | None) -> str | None:
    return os.path.expanduser(value) if value else value


def split_names(values: Iterable[str]) -> list[str]:
    """``--azl-target a,b --azl-target c`` -> ``[a, b, c]`` (order kept, no duplicates)."""
    out: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out

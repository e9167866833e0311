"""The targets file: loading, validation errors, and name -> hosts.

A targets file maps target names to a target of one *kind*. The kinds, each with its model
and resolver, are one table (``kinds/__init__.py``, extended by plugins through the
``pytest_azl_target_kinds`` hook); the models live in ``target_config.py``.

Every error names the file, the target and the field, on one line.
Strings may reference environment variables as ``${NAME}`` (or ``${NAME:-default}``);
secret fields hold ``SecretStr`` so they never print.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, SecretStr, Tag, TypeAdapter, ValidationError

from .errors import TargetsError
from .kind_table import BUILTIN_KINDS, TargetKind
from .redaction import check_secret
from .target_config import (
    DEFAULT_SSH_CONFIG,
    IMAGE_SUFFIXES,
    AnsibleTarget,
    ClusterTarget,
    Expect,
    HostKeyPolicy,
    ImageTarget,
    JumpHost,
    LabTarget,
    LocalTarget,
    RecordedTarget,
    SshConfigTarget,
    SshHostEntry,
    SshSettings,
    SshTarget,
    TargetConfig,
    is_host_name,
)
from .yamlfile import load_yaml, read_text

__all__ = [  # the models are importable from here, as before the kinds table
    "BUILTIN_TARGETS",
    "DEFAULT_FILE_NAME",
    "DEFAULT_SSH_CONFIG",
    "IMAGE_SUFFIXES",
    "AnsibleTarget",
    "AnyTarget",
    "ClusterTarget",
    "Expect",
    "HostKeyPolicy",
    "HostSpec",
    "ImageTarget",
    "JumpHost",
    "KindTable",
    "LabTarget",
    "LocalTarget",
    "RecordedTarget",
    "SshConfigTarget",
    "SshHostEntry",
    "SshSettings",
    "SshTarget",
    "TargetConfig",
    "TargetsFile",
    "check_key_files",
    "check_spec",
    "is_host_name",
    "load_targets",
    "local_host_specs",
    "merge_ssh_spec",
    "parse_targets",
    "split_names",
    "ssh_host_specs",
    "validate_target",
]

DEFAULT_FILE_NAME = "azl-targets.yaml"
AnyTarget = TargetConfig  # a validated target of any kind (the kind's own model)
KindTable = Mapping[str, TargetKind]
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    access: Literal["local", "ssh", "kube", "recorded"]
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
    # how long a lost or refused connection is tried again before the host counts as dead
    reconnect_within: float = 60.0
    profile: str | None = None
    scratch_devices: tuple[str, ...] = ()
    # Kubernetes nodes: node name and labels (the cluster transport fills these).
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def secret_fields(self) -> list[tuple[str, SecretStr]]:
        """Each secret set on this host, with the field that holds it."""
        fields = [("password", self.password), ("sudo_password", self.sudo_password)] + [
            (f"jump[{i}].password", j.password) for i, j in enumerate(self.jump)
        ]
        return [(name, v) for name, v in fields if v is not None and v.get_secret_value()]

    def secrets(self) -> list[str]:
        return [v.get_secret_value() for _, v in self.secret_fields()]


@dataclass(frozen=True)
class TargetsFile:
    """A loaded targets file: validated targets by name, and where they came from."""

    path: Path | None
    targets: Mapping[str, AnyTarget]
    kinds: KindTable = field(default_factory=lambda: BUILTIN_KINDS)
    # Targets that name an unset ${VARIABLE}: the error, raised only if one is selected.
    unset_variables: Mapping[str, str] = field(default_factory=dict)

    def kind(self, name: str) -> TargetKind:
        """The kinds-table entry of kind ``name`` (its model and resolver)."""
        try:
            return self.kinds[name]
        except KeyError:
            raise TargetsError(f"unsupported target kind {name!r}") from None

    def get(self, name: str) -> AnyTarget:
        if name in self.unset_variables:
            raise TargetsError(self.unset_variables[name])
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
        return [v for target in self.targets.values() for v in _secret_values(target)]


def _secret_values(value: Any) -> Iterable[str]:
    """The ``SecretStr`` values anywhere in a model (any kind's, whatever its fields)."""
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item)


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


@functools.lru_cache(maxsize=8)
def _adapter(entries: tuple[TargetKind, ...]) -> tuple[TypeAdapter[TargetConfig], Any]:
    """The validator of one kinds table: a union of every kind's models, told apart by the
    ``kind`` field (and a variant's key)."""
    by_model: dict[type[TargetConfig], str] = {}
    variant_keys: dict[str, list[tuple[str, str]]] = {}
    for kind in entries:
        by_model[kind.model] = kind.name
        for key, model in kind.variants:
            by_model[model] = f"{kind.name}+{key}"
            variant_keys.setdefault(kind.name, []).append((key, by_model[model]))
    tags = [Annotated[model, Tag(tag)] for model, tag in by_model.items()]

    def tag_of(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return by_model.get(type(value), getattr(value, "kind", None))
        kind = value.get("kind")
        for key, tag in variant_keys.get(kind, ()) if isinstance(kind, str) else ():
            if key in value:
                return tag
        return kind

    union: Any = Annotated[Union[tuple(tags)], Discriminator(tag_of)]  # noqa: UP007
    return TypeAdapter[TargetConfig](union), tag_of


def validate_target(
    name: str, raw: Any, source: str, base_dir: Path | None = None,
    kinds: KindTable | None = None,
) -> AnyTarget:
    """Validate one target mapping against the kinds table (the built-in kinds by default);
    raise TargetsError naming source, target and field. Relative paths to files a target
    reads (``inventory``, ``ssh_config``) are taken from ``base_dir`` (the targets file's
    directory)."""
    table = BUILTIN_KINDS if kinds is None else kinds
    prefix = f"{source}: target {name!r}"
    names = ", ".join(table)
    if not isinstance(raw, Mapping):
        raise TargetsError(f"{prefix}: must be a mapping, got {type(raw).__name__}")
    if "kind" not in raw:
        raise TargetsError(f"{prefix}: field 'kind' is required ({names})")
    adapter, tag_of = _adapter(tuple(table.values()))
    try:
        return adapter.validate_python(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = _format_loc(err["loc"], tag_of(raw))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            msg = f"unknown kind {raw.get('kind')!r} (expected one of {names})"
            field_name = "kind"
        raise TargetsError(f"{prefix}: field '{field_name}': {msg}{more}") from None


def parse_targets(
    text: str, source: str, env: Mapping[str, str] | None = None, base_dir: Path | None = None,
    kinds: KindTable | None = None, unset: dict[str, str] | None = None,
) -> dict[str, AnyTarget]:
    """Parse targets-file text into validated targets (no built-ins); relative file paths
    in targets are taken from ``base_dir``. With ``unset``, a target naming an unset
    ``${VARIABLE}`` is left out and its error put there (raised if it is selected)."""
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
        if not isinstance(name, str) or not is_host_name(name):
            raise TargetsError(f"{source}: invalid target name {name!r}")
        try:
            expanded = _expand_env(raw, f"{source}: target {name!r}", env)
        except TargetsError as exc:  # a variable is not set
            if unset is None:
                raise
            unset[name] = str(exc)
            continue
        out[name] = validate_target(name, expanded, source, base_dir, kinds)
    return out


def load_targets(
    path: Path | None, env: Mapping[str, str] | None = None, kinds: KindTable | None = None
) -> TargetsFile:
    """Load a targets file on top of the built-in targets (``local``, ``lab``), against the
    kinds table (the built-in kinds by default)."""
    table = BUILTIN_KINDS if kinds is None else kinds
    targets: dict[str, AnyTarget] = {
        name: validate_target(name, raw, "built-in", kinds=table)
        for name, raw in BUILTIN_TARGETS.items()
    }
    unset: dict[str, str] = {}
    if path is not None:
        text = read_text(path, "targets file")
        targets.update(parse_targets(text, str(path), env, path.absolute().parent, table, unset))
    return TargetsFile(path=path, targets=targets, kinds=table, unset_variables=unset)


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
        reconnect_within=pick("reconnect_within", default=60.0),
        profile=profile,
        scratch_devices=tuple(scratch_devices),
        node=node,
        labels=dict(labels or {}),
    )


def check_spec(spec: HostSpec) -> None:
    """What a resolved host must satisfy before anything connects: key files that exist,
    and secrets long enough to be redacted from output (see ``redaction.py``)."""
    check_key_files(spec)
    for field_name, value in spec.secret_fields():
        why = check_secret(value.get_secret_value())
        if why:
            raise TargetsError(
                f"target {spec.target!r}: host {spec.name!r}: field '{field_name}': {why}"
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

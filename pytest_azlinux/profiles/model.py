"""Image profiles: the expected posture of one image variant, with a source note per expectation.

Two shapes:

- ``ProfileDoc`` is one YAML file as written: every expectation optional (a profile may
  ``extends:`` another and set only what differs), each one ``{value: ..., source: ...}``.
- ``Profile`` is the resolved, frozen result other suites read: one plain attribute per
  expectation (``profile.selinux == "permissive"``) and ``profile.source("selinux")``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

SELinuxMode = Literal["disabled", "permissive", "enforcing"]
AppArmorState = Literal["absent", "installed", "enabled"]
KernelFlavour = Literal["default", "hwe", "mshv", "rt", "64k", "uvm", "ipe"]
IpeMode = Literal["off", "audit", "enforce"]
PackageSource = Literal["rpm", "dpkg", "spdx"]
ModuleBlacklist = Literal["required", "forbidden"]

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Model, Generic[T]):
    """One expectation as written in YAML: the value and where it comes from."""

    value: T
    source: str = Field(min_length=1)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class PackageRule(_Model):
    """A minimum version for one package; ``required`` fails a host that lacks it."""

    min: str | None = None
    required: bool = False
    source: str = Field(min_length=1)

    @field_validator("min", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        # YAML reads 2.0 as a float: keep what the author meant.
        return str(value) if isinstance(value, int | float) else value


class ExpectDoc(_Model):
    """The ``expect:`` mapping of a profile file (every key optional before resolution)."""

    os_id: Sourced[str] | None = None
    version: Sourced[str] | None = None
    kernel_flavour: Sourced[KernelFlavour] | None = None
    kernel_release: Sourced[str] | None = None
    cmdline_present: Sourced[list[str]] | None = None
    cmdline_absent: Sourced[list[str]] | None = None
    selinux: Sourced[SELinuxMode] | None = None
    apparmor: Sourced[AppArmorState] | None = None
    fips: Sourced[bool] | None = None
    verity_usr: Sourced[bool] | None = None
    ipe: Sourced[bool] | None = None
    sshd: Sourced[bool] | None = None
    sshd_client_alive_interval: Sourced[tuple[int, int]] | None = None
    lsm_include: Sourced[list[str]] | None = None
    lsm_exclude: Sourced[list[str]] | None = None
    # Boot chain and immutable-image expectations (None: not checked on this image).
    secure_boot: Sourced[bool] | None = None  # SecureBoot efivar says enabled
    tpm: Sourced[bool] | None = None  # a TPM device is present
    uki: Sourced[bool] | None = None  # booted from a unified kernel image
    usrhash: Sourced[bool] | None = None  # ``usrhash=`` on the kernel command line
    verity_ab: Sourced[bool] | None = None  # /usr from one of two A/B slots, the active one known
    sysexts: Sourced[list[str]] | None = None  # system extensions that must be merged
    selinux_policy: Sourced[str] | None = None  # the loaded policy's name ("targeted")
    ipe_mode: Sourced[IpeMode] | None = None
    module_blacklist: Sourced[ModuleBlacklist] | None = None
    immutable: Sourced[bool] | None = None  # changes go into the image build, not the host
    package_source: Sourced[PackageSource] | None = None  # where the image keeps its packages
    # Support window: past ``support_ends`` a run FAILs test_image_supported.
    support_ends: Sourced[date] | None = None
    removed_on: Sourced[date] | None = None
    successor: Sourced[str] | None = None
    # name -> rule; ``null`` drops a rule inherited through ``extends``.
    packages: dict[str, PackageRule | None] = Field(default_factory=dict)

    @field_validator("version", "kernel_release")
    @classmethod
    def _regex(cls, value: Sourced[str] | None) -> Sourced[str] | None:
        if value is not None:
            _check_regex(value.value)
        return value

    @field_validator("sshd_client_alive_interval")
    @classmethod
    def _range(cls, value: Sourced[tuple[int, int]] | None) -> Sourced[tuple[int, int]] | None:
        if value is not None and value.value[0] > value.value[1]:
            raise ValueError(f"range [{value.value[0]}, {value.value[1]}] is empty (min > max)")
        return value


class ProfileDoc(_Model):
    """One profile file as written."""

    name: str | None = None
    description: str = ""
    extends: str | None = None
    abstract: bool = False  # a base for others: never selected by itself
    aliases: list[str] = Field(default_factory=list)
    expect: ExpectDoc = Field(default_factory=ExpectDoc)
    # hardening control id -> why it does not apply to this image (``null`` drops an inherited one)
    hardening_not_applicable: dict[str, str | None] = Field(default_factory=dict)


# Expectations a resolved profile must have (set in the file or along its ``extends`` chain).
REQUIRED_FIELDS = ("os_id", "version", "selinux", "apparmor", "fips", "verity_usr", "ipe", "sshd")


class PackageMinimum(_Model):
    name: str
    min: str | None
    required: bool
    source: str


class Profile(_Model):
    """The resolved expectations of one image variant.

    Attributes hold plain values; ``source(field)`` gives the note behind each one
    (``source("packages.runc")`` for a package rule).
    """

    name: str
    description: str = ""
    path: str = ""
    chain: tuple[str, ...] = ()  # this profile, then its parents
    aliases: tuple[str, ...] = ()
    abstract: bool = False
    os_id: str
    version_pattern: str
    kernel_flavour: KernelFlavour | None = None
    kernel_release_pattern: str | None = None
    cmdline_present: tuple[str, ...] = ()
    cmdline_absent: tuple[str, ...] = ()
    selinux: SELinuxMode
    apparmor: AppArmorState
    fips: bool
    verity_usr: bool
    ipe: bool
    sshd: bool
    sshd_client_alive_interval: tuple[int, int] | None = None
    lsm_include: tuple[str, ...] = ()
    lsm_exclude: tuple[str, ...] = ()
    secure_boot: bool | None = None
    tpm: bool | None = None
    uki: bool | None = None
    usrhash: bool | None = None
    verity_ab: bool | None = None
    sysexts: tuple[str, ...] | None = None
    selinux_policy: str | None = None
    ipe_mode: IpeMode | None = None
    module_blacklist: ModuleBlacklist | None = None
    immutable: bool | None = None
    package_source: PackageSource | None = None
    support_ends: date | None = None
    removed_on: date | None = None
    successor: str | None = None
    packages: tuple[PackageMinimum, ...] = ()
    sources: Mapping[str, str] = Field(default_factory=dict)
    hardening_not_applicable: Mapping[str, str] = Field(default_factory=dict)
    # Why this profile applies to a host ("detected ID=azurelinux ..."), set by selection.
    reason: str = ""

    def source(self, field: str) -> str:
        """The source note of an expectation (``"selinux"``, ``"packages.runc"``...)."""
        if field.startswith("packages."):
            name = field.partition(".")[2]
            for rule in self.packages:
                if rule.name == name:
                    return rule.source
        # attribute names that differ from the YAML keys
        key = {"version_pattern": "version", "kernel_release_pattern": "kernel_release"}.get(
            field, field
        )
        return self.sources.get(key, "not set in this profile")

    def package(self, name: str) -> PackageMinimum | None:
        return next((p for p in self.packages if p.name == name), None)

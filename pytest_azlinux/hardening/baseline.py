"""One host's baseline: which controls apply there, the one gathering round trip, verdicts.

``HostBaseline`` is built once per host and run: it decides per control whether it runs
(level, image profile, target settings), reads everything the running controls need in ONE
command (``gather``), keeps that evidence (or the error that prevented it) for the rest of
the run, and judges each control as a pure function of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import InfraError, PackageInventoryError, ProbeUnavailable
from ..host import Host
from ..packages.inventory import Inventory, Source, host_inventory
from ..profiles.model import Profile
from ..reads import Read
from .evidence import Evidence
from .model import Control, Level
from .readplan import ReadPlan, gather_script
from .settings import HardeningSettings


def plan_for(controls: Iterable[Control]) -> ReadPlan:
    """Everything ``controls`` read, merged into one plan."""
    plan = ReadPlan()
    for control in controls:
        control.check.plan(plan)
    return plan


def gather(host: Host, plan: ReadPlan, package_source: Source | None = None) -> Evidence:
    """Read the plan's one script on ``host`` (as root) and parse what it printed; where a
    check judges by packages, the host's package inventory too (read ahead with the other
    suites' reads in a pytest run, see ``fixtures.py``; an inventory that cannot be read
    leaves those checks unable to judge, not the others)."""
    # the script first and alone: a host that cannot be read fails here, in one attempt
    result = host.reads.get(Read(gather_script(plan), sudo=True))
    if "==> " not in result.stdout:
        detail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.rc}, no output"]
        raise ProbeUnavailable(f"{host.name}: the hardening read printed nothing: {detail[0]}")
    inventory: Inventory | None = None
    problem = ""
    if plan.packages:
        try:
            inventory = host_inventory(host, package_source)
        except PackageInventoryError as exc:
            problem = str(exc)
    return Evidence.parse(host.name, result.stdout, plan, host.facts, inventory, problem)


@dataclass(frozen=True)
class LevelChoice:
    """The level in force for a target and where it was chosen."""

    level: Level
    origin: str

    @classmethod
    def choose(cls, option: int | None, settings: HardeningSettings, target: str) -> LevelChoice:
        if option in (1, 2):
            return cls(1 if option == 1 else 2, f"--azl-hardening-level {option}")
        if "level" in settings.model_fields_set:
            return cls(settings.level, f"target {target} suites.hardening.level")
        return cls(1, "the default level")


def skip_reason(
    control: Control, profile: Profile, settings: HardeningSettings, level: LevelChoice
) -> str | None:
    """Why ``control`` does not run on a host with this profile and settings, or None."""
    if settings.skip:
        return f"not applicable: suites.hardening.skip: {settings.skip}"
    if control.level > level.level:
        return (
            f"level {control.level} control; level {level.level} selected ({level.origin}); "
            "--azl-hardening-level 2 runs it"
        )
    for flag, wanted in control.applies_if.items():
        have = getattr(profile, flag)
        if have != wanted:
            return (
                f"not applicable: profile {profile.name} has {flag}={str(have).lower()} "
                f"({profile.source(flag)})"
            )
    reason = profile.hardening_not_applicable.get(control.id)
    if reason:
        return f"not applicable: profile {profile.name}: {' '.join(reason.split())}"
    reason = settings.not_applicable.get(control.id)
    if reason:
        return f"not applicable: suites.hardening.not_applicable: {reason}"
    return None


def unknown_profile_ids(profile: Profile, known: Iterable[str]) -> list[str]:
    ids = set(known)
    return sorted(i for i in profile.hardening_not_applicable if i not in ids)


@dataclass
class HostBaseline:
    """The baseline of one host for this run (built once per host, shared by its tests)."""

    host: Host
    profile: Profile
    settings: HardeningSettings
    level: LevelChoice
    to_run: list[Control]  # the controls collected for this host that are not skipped
    _evidence: Evidence | None = None
    _error: InfraError | None = field(default=None, repr=False)

    def skip_reason(self, control: Control) -> str | None:
        return skip_reason(control, self.profile, self.settings, self.level)

    @property
    def evidence(self) -> Evidence:
        """What the host showed, read on first use (one command); an error is kept and
        raised again for every later control, never retried control by control."""
        if self._error is not None:
            raise self._error
        if self._evidence is None:
            try:
                self._evidence = gather(
                    self.host, plan_for(self.to_run), self.profile.package_source
                )
            except InfraError as exc:
                self._error = exc
                raise
        return self._evidence

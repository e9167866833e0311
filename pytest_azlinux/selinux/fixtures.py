"""SELinux fixtures and the per-test denial watcher (a pytest plugin module).

- ``azl_selinux``: the current host's SELinux view (settings, collector, mode readings,
  expected mode, windows).
- The watcher: a test marked ``@pytest.mark.azl_selinux_watch(mode="fail"|"warn"|"ignore")``
  (or every test, with the target setting ``suites.selinux.watch``) that uses ``azl_host``
  gets a checkpoint before it runs; the denials that appeared while it ran are attached to
  its report (properties ``selinux.denials``, ``selinux.denial_groups``,
  ``selinux.permissive`` and a "selinux" section) and, in ``fail`` mode, fail it; ``warn``
  emits an ``SelinuxDenialWarning``.

Register with ``config.pluginmanager.register(module, PLUGIN_NAME)`` (idempotent through
``register_plugin``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import pytest

from ..acceptance import today
from ..analyse.avc_groups import DenialGroup, format_groups, group_denials
from ..errors import SettingsError
from ..host import Host
from ..profiles.model import Profile
from ..report.output import add_report_output
from ..runstate import SELINUX_STATE_KEY, SELINUX_WATCH_KEY
from ..session import SelectedTarget
from ..settings import parse
from .allowlist import Verdict, apply_allowlist
from .collect import Checkpoint, Collection, DenialCollector
from .mode import Mode, SelinuxState, read_mode
from .settings import WATCH_MODES, SelinuxSettings, WatchMode, expected_mode

PLUGIN_NAME = "azl-selinux"
MARKER = "azl_selinux_watch"
PROP_DENIALS = "selinux.denials"
PROP_GROUPS = "selinux.denial_groups"
# the records' permissive= values: "0" (enforced), "1" (only logged), "unknown" (no field)
PROP_PERMISSIVE = "selinux.permissive"
PROP_ALLOWLIST = "azl.allowlist.used"  # JSON: the entries that absorbed records, with reasons
PROP_MISSING = "selinux.records_missing"  # why the window's records may be incomplete

_STATE = SELINUX_STATE_KEY
_WATCH = SELINUX_WATCH_KEY

HostKey = tuple[str, str]  # (target, host name): a host's identity in the run


class SelinuxDenialWarning(UserWarning):
    """Denials appeared during a test watched in ``warn`` mode."""


class SelinuxRecordsMayBeMissing(UserWarning):
    """The audit log's files do not reach back to the window's start (rotated away)."""


class SelinuxDenialsFound(AssertionError):
    """Denials appeared during a test watched in ``fail`` mode."""


@dataclass
class _RunState:
    started: float = field(default_factory=time.time)
    # one collector per host of the run (its source is detected once), by host identity:
    # two targets may hold hosts of the same name
    collectors: dict[HostKey, DenialCollector] = field(default_factory=dict)


def register_plugin(config: pytest.Config) -> None:
    """Register this module once (conftest or plugin.py may both ask)."""
    import sys

    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(sys.modules[__name__], PLUGIN_NAME)


def pytest_configure(config: pytest.Config) -> None:
    if _STATE not in config.stash:
        config.stash[_STATE] = _RunState()


def _state(config: pytest.Config) -> _RunState:
    if _STATE not in config.stash:
        config.stash[_STATE] = _RunState()
    return config.stash[_STATE]


def settings_of(target: SelectedTarget) -> SelinuxSettings:
    """The target's ``suites.selinux``; a bad value fails the test with a one-line message."""
    try:
        return parse(SelinuxSettings, target.settings("selinux"), target.name)
    except SettingsError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except: no chained traceback


def host_key(host: Host) -> HostKey:
    return (host.spec.target, host.spec.name)


def collector_for(config: pytest.Config, host: Host, settings: SelinuxSettings) -> DenialCollector:
    """One collector per host of the run, keyed by the host's identity (target, name)."""
    collectors = _state(config).collectors
    collector = collectors.get(host_key(host))
    if collector is None or collector.host is not host:  # a reconnected host: a new one
        collector = DenialCollector(host, settings.source, settings.audit_log, settings.timeout)
        collectors[host_key(host)] = collector
    return collector


@dataclass
class SelinuxHost:
    """One host's SELinux view for a test: settings, mode, denials per window."""

    host: Host
    target: str
    settings: SelinuxSettings
    collector: DenialCollector
    run_started: float  # controller clock
    profile: Callable[[], Profile]  # the host's image profile (the azl_profile fixture)

    @cached_property
    def readings(self) -> SelinuxState:
        return read_mode(self.host)

    @cached_property
    def expected(self) -> tuple[Mode, str]:
        return expected_mode(self.settings, self.target, self.profile)

    def run_start(self) -> Checkpoint:
        """The start of this run on the host's clock (controller elapsed time subtracted)."""
        return Checkpoint(self.collector.now() - (time.time() - self.run_started), "run start")

    def window(self) -> Checkpoint | None:
        if self.settings.window == "all":
            return None
        if self.settings.window == "run":
            return self.run_start()
        return self.collector.since_boot()

    def collect(self, since: Checkpoint | None = None) -> Collection:
        return self.collector.collect(since)

    def collect_window(self) -> Collection:
        """The records of the configured window; ``boot`` and ``all`` also take what the
        kernel logged before auditd started (kernel log of this boot)."""
        return self.collector.collect(self.window(), kernel_log=self.settings.window != "run")

    def judge(self, collection: Collection) -> tuple[list[DenialGroup], Verdict]:
        groups = group_denials(collection.records)
        return groups, apply_allowlist(groups, self.settings.allowlist, today())

    def explain(self, collection: Collection, verdict: Verdict) -> str:
        """The failure message: what was found, where, the allowlist entries that absorbed
        records (with their reasons), and the rules that would allow the rest."""
        n = sum(g.count for g in verdict.unexplained)
        head = (
            f"{self.host.name}: {n} unexplained SELinux denial/error record(s) in "
            f"{len(verdict.unexplained)} group(s), {collection.window} "
            f"(source {collection.describe_source()})"
        )
        parts = [head, format_groups(verdict.unexplained, self.settings.top), *verdict.lines()]
        parts.append(
            "add the rules to the policy, or an entry with a reason to "
            f"targets.{self.target}.suites.selinux.allowlist"
        )
        return "\n".join(parts)


def record_allowlist(item: pytest.Item, verdict: Verdict) -> None:
    """The allowlist entries used by this test: a JSON test property, and lines in the test's
    report output (``-rP``, the JUnit system-out of pytest's and the per-image reports; never
    printed: from the watcher's hook that is the terminal's progress line) so a pass says
    what it accepted."""
    item.user_properties.append((PROP_ALLOWLIST, verdict.used_json()))
    add_report_output(item, verdict.lines())


def record_collection(item: pytest.Item, collection: Collection) -> None:
    """What the test's report must say about the collection itself: records that may be
    missing (a property, a line in its report output and a warning: a pass is not silent
    about it)."""
    if collection.missing is None:
        return
    text = f"{collection.host}: {collection.missing}"
    item.user_properties.append((PROP_MISSING, text))
    add_report_output(item, [text])
    warnings.warn(SelinuxRecordsMayBeMissing(text), stacklevel=2)


@pytest.fixture
def azl_selinux(
    request: pytest.FixtureRequest, azl_host: Host, azl_target: SelectedTarget
) -> SelinuxHost:
    """The SELinux view of the current host (settings from ``suites.selinux``)."""
    settings = settings_of(azl_target)

    def profile() -> Profile:
        selected: Profile = request.getfixturevalue("azl_profile")
        return selected

    return SelinuxHost(
        azl_host, azl_target.name, settings, collector_for(request.config, azl_host, settings),
        _state(request.config).started, profile,
    )


# --- the watcher --------------------------------------------------------------------------


@dataclass
class _Watch:
    mode: WatchMode
    selinux: SelinuxHost
    checkpoint: Checkpoint


def _watch_mode(item: pytest.Item, settings: SelinuxSettings | None) -> WatchMode | None:
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        mode = marker.kwargs.get("mode", marker.args[0] if marker.args else "fail")
        if mode not in WATCH_MODES:
            pytest.fail(
                f"{item.nodeid}: {MARKER}(mode={mode!r}): mode must be one of "
                f"{', '.join(WATCH_MODES)}", pytrace=False,
            )
        return mode  # type: ignore[no-any-return]
    return settings.watch if settings is not None else None


@pytest.fixture(autouse=True)
def _azl_selinux_watch(request: pytest.FixtureRequest) -> Iterator[None]:
    """Take a checkpoint before a watched test that uses azl_host (no-op otherwise)."""
    item = request.node
    if "azl_host" not in request.fixturenames:
        yield
        return
    marked = item.get_closest_marker(MARKER) is not None
    target: SelectedTarget | None = None
    if not marked:  # only a target setting can switch it on: look without failing
        try:
            target = request.getfixturevalue("azl_target")
        except pytest.UsageError:
            yield
            return
        if not target.settings("selinux").get("watch"):
            yield
            return
    target = target or request.getfixturevalue("azl_target")
    settings = settings_of(target)
    mode = _watch_mode(item, settings)
    if mode is None:
        yield
        return
    selinux = request.getfixturevalue("azl_selinux")
    checkpoint = selinux.collector.checkpoint(f"start of {item.name}")
    item.stash[_WATCH] = _Watch(mode, selinux, checkpoint)
    try:
        yield
    finally:
        if _WATCH in item.stash:
            del item.stash[_WATCH]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    watch = item.stash.get(_WATCH, None)
    if watch is None:
        return (yield)
    try:
        outcome = yield
    except BaseException:
        _report(item, watch, test_failed=True)
        raise
    message = _report(item, watch, test_failed=False)
    if message is not None:
        if watch.mode == "fail":
            raise SelinuxDenialsFound(message)
        if watch.mode == "warn":
            warnings.warn(SelinuxDenialWarning(message), stacklevel=1)
    return outcome


_FLAG = {False: "0", True: "1", None: "unknown"}


def _report(item: pytest.Item, watch: _Watch, test_failed: bool) -> str | None:
    """Attach the test's denials to its report; the message when some are unexplained."""
    if watch.selinux.settings.watch_settle:
        time.sleep(watch.selinux.settings.watch_settle)  # auditd writes asynchronously
    try:
        collection = watch.selinux.collect(watch.checkpoint)
    except Exception:
        if test_failed:  # keep the test's own failure in front
            return None
        raise
    record_collection(item, collection)
    groups, verdict = watch.selinux.judge(collection)
    total = sum(g.count for g in groups)
    item.user_properties.append((PROP_DENIALS, total))
    if not groups:
        return None
    record_allowlist(item, verdict)
    text = format_groups(groups, watch.selinux.settings.top)
    item.user_properties.append((PROP_GROUPS, text))
    # enforced (0) or only logged (1): what a move to enforcing would change for this test
    flags = sorted({_FLAG[p] for g in groups for p in g.permissive})
    item.user_properties.append((PROP_PERMISSIVE, ",".join(flags)))
    where = f"{collection.window} ({collection.source}), permissive={','.join(flags)}"
    item.add_report_section("call", "selinux", "\n".join([f"{where}:", text, *verdict.lines()]))
    if not verdict.unexplained:
        return None
    return watch.selinux.explain(collection, verdict)

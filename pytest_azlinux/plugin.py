"""pytest hooks: options, markers, parametrization over hosts, report routing.

The behaviour lives elsewhere: targets (targets.py, kinds/), connections (session.py,
transport/), fixtures (fixtures.py and each suite package's fixtures.py), reports (report/).
This module only wires them into pytest.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from . import __version__, builtin, hookspecs, progress
from .errors import ConfigError, HostUnreachable, InfraError, NotRecorded, TargetsError
from .image.capabilities import apply_capabilities
from .image.options import apply_image_options
from .kinds import kind_table
from .lifecycle import die_with_controller, handle_sigterm
from .pairing import host_pairs
from .redaction import redact, redact_report
from .report.collector import ImageReport, ReportCollector, interruption
from .report.model import PROP_OUTCOME
from .report.pytest_junit import PytestJunit
from .requirements import apply_requirements
from .runstate import COLLECTOR_KEY as COLLECTOR_KEY  # xdist_scheduling reads it here
from .runstate import (
    LIVE_MARKERS_KEY,
    SESSION_KEY,
    WRITTEN_KEY,
    bind_item,
    item_host,
    item_hosts,
    item_target,
)
from .session import DEFAULT_CONNECT_WORKERS, AzlSession, HostParam, parse_shard
from .session import find_targets_file as find_targets_file
from .suite_table import LoadedSuite, load_suites, settings_models
from .targets import TargetsFile, load_targets, split_names

HOST_FIXTURES = ("azl_host", "azl_host_pair", "azl_hosts", "azl_image", "azl_target")
T = TypeVar("T")
CORE_FIXTURES = "pytest_azlinux.fixtures"  # hosts, facts, metrics: what every suite uses
# The plugin's own markers; each suite's come from its entry in the suite table.
MARKERS = {
    "azl_destructive": "changes the target (formats disks, loads policy): runs only with "
    "--azl-allow-destructive",
    "azl_requires(hosts=N, kinds=[...])": "skip with a reason unless the target has at least "
    "N hosts / is of one of the kinds",
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The registration hooks, and the shipped suites and kinds registered through them."""
    pluginmanager.add_hookspecs(hookspecs)
    if not pluginmanager.is_registered(builtin):
        pluginmanager.register(builtin, "azl-builtin")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("azlinux", "Azure Linux image and node pool validation")
    group.addoption(
        "--azl-target", action="append", default=[], metavar="NAME",
        help="target(s) to run against, from the targets file (repeatable, comma-separated)",
    )
    group.addoption(
        "--azl-targets-file", metavar="PATH",
        help="targets file (default: azl-targets.yaml in the rootdir, or ini azl_targets_file)",
    )
    group.addoption(
        "--azl-list-targets", action="store_true", help="list the targets and exit"
    )
    group.addoption(
        "--azl-junit-dir", metavar="DIR",
        help="directory for the per-image JUnit reports (default: ini azl_junit_dir or reports/)",
    )
    group.addoption(
        "--azl-command-timeout", type=float, metavar="SECONDS",
        help="default timeout of every remote command (default: ini azl_command_timeout, 60)",
    )
    group.addoption(
        "--azl-connect-workers", type=int, metavar="N",
        help="hosts connected (and their facts read) at once at the start of the run "
        f"(default: ini azl_connect_workers, {DEFAULT_CONNECT_WORKERS})",
    )
    group.addoption(
        "--azl-allow-destructive", action="store_true",
        help="run tests marked azl_destructive (they change the target)",
    )
    group.addoption(
        "--azl-shard", metavar="INDEX/COUNT",
        help="run only this shard of the hosts (deterministic split across CI jobs)",
    )
    group.addoption(
        "--azl-pairing", choices=("ring", "all", "star"), default="ring",
        help="how azl_host_pair pairs hosts: ring (default), all ordered pairs, or star "
        "(the first host to every other)",
    )
    group.addoption(
        "--azl-profiles-dir", action="append", default=[], metavar="DIR",
        help="extra image profile directories (add to or override the shipped profiles)",
    )
    group.addoption(
        "--azl-today", metavar="YYYY-MM-DD",
        help="the day support windows are judged on (default: ini azl_today, else today); "
        "for reproducible runs",
    )
    group.addoption(
        "--azl-hardening-level", type=int, choices=(1, 2), metavar="1|2",
        help="hardening controls to run: 1 (level 1) or 2 (levels 1 and 2); default: the "
        "target's suites.hardening.level, else 1",
    )
    from .gate.options import add_options as add_gate_options

    add_gate_options(group, parser)  # waivers, reruns
    group.addoption(
        "--azl-image", metavar="PATH",
        help="boot this image file (qcow2, raw, VHD/VHDX) as target 'image' and test it",
    )
    group.addoption("--azl-image-profile", metavar="NAME", help="image profile of --azl-image")
    group.addoption(
        "--azl-image-provisioning", metavar="HOW",
        help="how --azl-image is provisioned: auto (default: detected from the image), "
        "cloud-init or ignition",
    )
    group.addoption(
        "--azl-image-firmware", metavar="NAME",
        help="firmware of --azl-image: bios (default), uefi or uefi-secureboot (lab keys)",
    )
    group.addoption(
        "--azl-image-user", metavar="NAME",
        help="login user of --azl-image (default: azureuser with cloud-init, core with Ignition)",
    )
    group.addoption("--azl-image-tpm", action="store_true", help="give --azl-image a TPM 2.0")
    group.addoption(
        "--azl-keep", action="store_true",
        help="leave image targets' VMs running at the end and print how to ssh in",
    )
    group.addoption(
        "--azl-capabilities", metavar="LIST",
        help="the image's capabilities (azldev's {capabilities}: machine-bootable, container, "
        "systemd, runtime-package-management); suites that need others are skipped",
    )
    parser.addini("azl_targets_file", "targets file, relative to the rootdir")
    parser.addini("azl_profiles_dir", "image profile directories, relative to the rootdir",
                  type="paths")
    parser.addini("azl_junit_dir", "directory for per-image JUnit reports", default="reports")
    parser.addini("azl_command_timeout", "default remote command timeout (s)", default="60")
    parser.addini("azl_connect_workers", "hosts prepared at once",
                  default=str(DEFAULT_CONNECT_WORKERS))
    parser.addini("azl_today", "the day support windows are judged on (YYYY-MM-DD)", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, args: list[str], parser: pytest.Parser
) -> None:
    """``--azl-targets-file PATH`` (with a space) must find the same rootdir and ini file as
    ``--azl-targets-file=PATH``: pytest picks the rootdir before plugins' options are known,
    taking PATH for a test path; pick it again now that the option is known."""
    from .rootdir import redetermine_rootdir

    redetermine_rootdir(early_config, args)


def _marker_name(line: str) -> str:
    return line.split(":")[0].split("(")[0].strip()


def _check_mark_expression(config: pytest.Config, ours: set[str]) -> None:
    """``-m network`` would quietly deselect every test: name the marker that was meant."""
    expression = config.getoption("markexpr", "") or ""
    registered = {_marker_name(line) for line in config.getini("markers")}
    for word in re.findall(r"[A-Za-z_][\w.-]*", expression):
        meant = f"azl_{word}"
        if word not in registered and meant in ours:
            raise pytest.UsageError(
                f"-m {expression!r}: no marker {word!r} is registered; "
                f"pytest-azlinux's is {meant!r}"
            )


def _table(config: pytest.Config, hook: Any, build: Callable[[Iterable[Any]], T]) -> T:
    """A table from every plugin's entries (in registration order: the shipped ones
    first); an entry that cannot be used stops the run here, one line."""
    results: list[Sequence[Any]] = hook(config=config)
    try:
        return build(entry for result in reversed(results) for entry in result)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _register_suites(config: pytest.Config) -> dict[str, LoadedSuite]:
    """Markers and fixture modules: the plugin's own, then each suite's."""
    import importlib

    suites = _table(config, config.hook.pytest_azl_suites, load_suites)
    lines = [f"{name}: {text}" for name, text in MARKERS.items()]
    lines += [line for loaded in suites.values() for line in loaded.suite.markers]
    for line in lines:
        config.addinivalue_line("markers", line)
    modules = [(CORE_FIXTURES, importlib.import_module(CORE_FIXTURES))] + [
        (str(s.suite.fixtures), s.fixtures) for s in suites.values() if s.fixtures]
    for name, module in modules:
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, name)
    _check_mark_expression(config, {_marker_name(line) for line in lines})
    config.stash[LIVE_MARKERS_KEY] = {
        _marker_name(line): (s.suite.name, s.suite.live)
        for s in suites.values() if s.suite.live for line in s.suite.markers}
    return suites


def pytest_configure(config: pytest.Config) -> None:
    suites = _register_suites(config)
    from .posture.fixtures import run_day

    run_day(config)  # a bad --azl-today is exit 4 before anything runs
    if config.pluginmanager.hasplugin("xdist"):
        from . import xdist_scheduling

        if not config.pluginmanager.is_registered(xdist_scheduling):
            config.pluginmanager.register(xdist_scheduling, "azl-xdist")
    # any run: reports written and fixtures torn down, as after Ctrl-C
    handle_sigterm(worker=hasattr(config, "workerinput"))
    names = split_names(config.getoption("azl_target"))
    if not names and not config.getoption("azl_image"):
        return
    targets = _targets_file(config)
    is_controller = not hasattr(config, "workerinput")
    try:
        targets, names = apply_image_options(
            targets, names, image=config.getoption("azl_image"),
            profile=config.getoption("azl_image_profile"), keep=config.getoption("azl_keep"),
            fields={f: config.getoption(f"azl_image_{f}")
                    for f in ("provisioning", "firmware", "user", "tpm")},
        )
        for name in names:
            targets.get(name)
        shard = parse_shard(config.getoption("azl_shard"))
        session = AzlSession(
            targets, names, command_timeout=_float_option(config, "azl_command_timeout"),
            is_controller=is_controller, shard=shard,
            connect_workers=int(_float_option(config, "azl_connect_workers")),
            suite_models=settings_models(suites),
        )
        session.validate()  # before anything starts: a bad value is exit 4
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = session
    from .gate.plugin import register as register_gate

    register_gate(config, session, targets)  # waivers, sentinels, reruns
    if not is_controller:
        die_with_controller()
        return
    collector = ReportCollector(
        _junit_dir(config), __version__, default_target=names[0] if len(names) == 1 else None
    )
    config.stash[COLLECTOR_KEY] = collector
    config.pluginmanager.register(collector, "azl-reports")
    config.pluginmanager.register(PytestJunit(config, collector), "azl-pytest-junit")


def _float_option(config: pytest.Config, name: str) -> float:
    value = config.getoption(name)
    raw = value if value is not None else config.getini(name)
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{name}: expected a number, got {raw!r}") from None
    if number <= 0:
        raise pytest.UsageError(f"{name}: must be greater than 0, got {raw!r}")
    return number


def _junit_dir(config: pytest.Config) -> Path:
    """The report directory, checked writable now rather than after every test ran."""
    junit_dir = Path(config.getoption("azl_junit_dir") or config.getini("azl_junit_dir"))
    if not junit_dir.is_absolute():
        junit_dir = Path(config.invocation_params.dir) / junit_dir
    try:
        junit_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=junit_dir):
            pass
    except OSError as exc:
        raise pytest.UsageError(
            f"report directory {junit_dir} is not writable: {exc.strerror or exc} "
            "(set --azl-junit-dir or ini azl_junit_dir)"
        ) from None
    return junit_dir


def _targets_file(config: pytest.Config) -> TargetsFile:
    """The targets file the options point at, loaded; a usage error when it is invalid."""
    try:
        path = find_targets_file(
            config.getoption("azl_targets_file"), config.getini("azl_targets_file"),
            config.rootpath,
        )
        kinds = _table(config, config.hook.pytest_azl_target_kinds, kind_table)
        return load_targets(path, kinds=kinds)
    except TargetsError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("azl_list_targets"):
        return None
    targets = _targets_file(config)
    print(f"targets from {targets.path or 'built-in defaults'}:")
    for name, target in sorted(targets.targets.items()):
        detail = target.description or ""
        hosts = getattr(target, "hosts", None)
        if isinstance(hosts, list):
            detail = detail or ", ".join(str(getattr(h, "name", h)) for h in hosts)
        print(f"  {name:24} {target.kind:8} {detail}")
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    azl = session.config.stash.get(SESSION_KEY, None)
    if azl is None:
        return
    progress.configure(session.config)  # image and VM boots start in resolve()
    try:
        azl.resolve()
    except (ConfigError, InfraError) as exc:
        azl.close()
        raise pytest.UsageError(str(exc)) from None
    collector = session.config.stash.get(COLLECTOR_KEY, None)
    if collector is not None:
        collector.secrets = azl.secrets()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    azl = metafunc.config.stash.get(SESSION_KEY, None)
    if azl is None:
        return
    names = metafunc.fixturenames
    if "azl_host_pair" in names:
        pairs, ids = host_pairs(azl, metafunc.config.getoption("azl_pairing"))
        metafunc.parametrize("azl_host_pair", pairs, ids=ids, indirect=True)
    elif "azl_host" in names:
        metafunc.parametrize(
            "azl_host", azl.params, ids=[p.id for p in azl.params], indirect=True
        )
    elif "azl_hosts" in names:
        targets = [t for t in azl.selected if azl.params_of(t)]
        metafunc.parametrize("azl_hosts", targets, ids=[t.name for t in targets], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        apply_capabilities(items, config.getoption("azl_capabilities"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    azl = config.stash.get(SESSION_KEY, None)
    uses_azl = [i for i in items if set(HOST_FIXTURES) & set(getattr(i, "fixturenames", ()))]
    if azl is None:
        if uses_azl:
            raise pytest.UsageError(
                f"{len(uses_azl)} tests need a target (e.g. {uses_azl[0].nodeid}): "
                "run with --azl-target NAME (see --azl-list-targets)"
            )
        return
    # a shard may hold no host at all: its items are not its own
    outside = [i for i in items if not bind_item(i, azl)]
    if outside:
        config.hook.pytest_deselected(items=outside)
        dropped = set(map(id, outside))
        items[:] = [i for i in items if id(i) not in dropped]
    allow_destructive = bool(config.getoption("azl_allow_destructive"))
    for item in items:
        apply_requirements(item, azl, allow_destructive=allow_destructive)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember what will run (after -k/-m deselection) so nothing goes missing from reports."""
    collector = session.config.stash.get(COLLECTOR_KEY, None)
    if collector is None:
        return
    for item in session.items:
        host = item_host(item)
        target = item_target(item)
        collector.collected(item.nodeid, host.id if host else None,
                            target.name if target else None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Connect to every host the run needs and read its facts, concurrently, before the
    first test (this process runs the tests without xdist; an xdist worker prepares its
    hosts a batch at a time, as it gets them)."""
    azl = session.config.stash.get(SESSION_KEY, None)
    if azl is None or session.config.option.collectonly:
        return
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is not None:
        azl.use_batches(int(workerinput.get("workercount", 1)))
        return
    if session.config.pluginmanager.has_plugin("dsession"):  # the xdist controller
        return
    needed: dict[str, HostParam] = {}
    for item in session.items:
        for param in item_hosts(item):
            needed.setdefault(param.id, param)
        if "azl_hosts" in getattr(item, "fixturenames", ()):
            target = item_target(item)
            for param in azl.params_of(target) if target else ():
                needed.setdefault(param.id, param)
    azl.prepare(needed.values())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """On an xdist worker, the first test of a host prepares the host's whole batch (the
    worker learns its hosts a batch at a time: see xdist_scheduling)."""
    azl = item.config.stash.get(SESSION_KEY, None)
    host = item_host(item)
    _skip_live_suites_on_recordings(item)
    if azl is not None and host is not None:
        azl.prepare_batch_of(host.id)


def _skip_live_suites_on_recordings(item: pytest.Item) -> None:
    """A test of a suite that acts on a running host (``Suite.live``) is a SKIP on a
    recorded image, saying why, before its fixtures try to run anything there."""
    recorded = [p for p in (*item_hosts(item), item_host(item))
                if p is not None and p.spec.access == "recorded"]
    if not recorded:
        return
    live = item.config.stash.get(LIVE_MARKERS_KEY, {})
    for mark in item.iter_markers():
        if mark.name in live:
            suite, what = live[mark.name]
            # reported at the test, as a skip marker's is (pytest's own skipping does so)
            raise pytest.skip.Exception(
                f"{recorded[0].spec.address}: a recorded image; the {suite} suite needs a "
                f"running host (it {what})", _use_item_location=True)


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_of_infra_error(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> pytest.TestReport | None:
    """An infrastructure error is one line (host, address, cause), not a traceback: its
    report is made here, without pytest's traceback formatting (which the line would throw
    away; it cost every ERROR test of a dead host tens of milliseconds). pytest's own
    ``TestReport.from_item_and_call`` otherwise."""
    excinfo, when = call.excinfo, call.when
    if (excinfo is None or when == "collect" or not excinfo.errisinstance(InfraError)
            or _wants_traceback(item.config)):
        return None
    sections = [(f"Captured {key} {when}", content)
                for when, key, content in item._report_sections]
    return pytest.TestReport(
        item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed",
        _one_line(excinfo), when, sections, call.duration, call.start, call.stop,
        user_properties=item.user_properties,
    )


def _one_line(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return f"{excinfo.typename}: {excinfo.value}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    azl = item.config.stash.get(SESSION_KEY, None)
    if (call.excinfo is not None and call.excinfo.errisinstance(NotRecorded)
            and call.when in ("setup", "call")):
        # a recorded image lacks the evidence: a SKIP saying what (not a finding, and the
        # host is not dead: its other tests read what it holds)
        path, line, _ = item.reportinfo()
        report.outcome = "skipped"
        report.longrepr = (str(path), (line or 0) + 1, f"Skipped: {call.excinfo.value}")
    elif call.excinfo is not None and call.excinfo.errisinstance(InfraError):
        if call.when == "call":
            report.user_properties.append((PROP_OUTCOME, "error"))
        host = item_host(item)
        if call.excinfo.errisinstance(HostUnreachable) and azl is not None and host is not None:
            azl.mark_dead(host.id, call.excinfo.value)  # type: ignore[arg-type]
        if not _wants_traceback(item.config):
            report.longrepr = _one_line(call.excinfo)  # also where another plugin made it
    if azl is not None:
        redact_report(report, azl.secrets())
    return report


def _wants_traceback(config: pytest.Config) -> bool:
    # The terminal plugin declares --tb and -v: with ``-p no:terminal`` they are absent.
    tbstyle = getattr(config.option, "tbstyle", "auto")
    return bool(tbstyle == "long" or (getattr(config.option, "verbose", 0) or 0) > 0)


def _say(config: pytest.Config, text: str) -> None:
    """A line for the user: on the terminal, or on stderr when the terminal plugin is off."""
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        print(text, file=sys.stderr)
    else:
        config.get_terminal_writer().line(text, red=True)


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    infra = (PROP_OUTCOME, "error") in getattr(report, "user_properties", ())  # not on
    # a CollectReport (a module that fails to import)
    if report.when == "call" and report.failed and infra:
        return "error", "E", "ERROR"
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    azl = config.stash.get(SESSION_KEY, None)
    collector = config.stash.get(COLLECTOR_KEY, None)
    try:
        if collector is not None and not config.option.collectonly:
            interrupted = interruption(session, exitstatus)
            config.stash[WRITTEN_KEY] = _write_reports(config, collector, interrupted)
    finally:
        if azl is not None:
            failures = azl.close()
            for failure in failures:
                _say(config, f"azl: cleanup failed: {failure}")
            if failures and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED  # it left something behind


def _write_reports(
    config: pytest.Config, collector: ReportCollector, interrupted: str | None
) -> list[ImageReport]:
    """Write the per-image reports; when the directory stopped being writable, write them
    somewhere that works and say where (results are never lost)."""
    from .report.github import publish

    try:
        reports = collector.write(interrupted)
    except OSError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="azl-reports-"))
        _say(config, f"azl: cannot write reports to {collector.junit_dir} "
             f"({exc.strerror or exc}); writing them to {fallback}")
        collector.junit_dir = fallback
        reports = collector.write(interrupted)
    publish(reports)  # a no-op unless GITHUB_ACTIONS=true
    return reports


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    azl = config.stash.get(SESSION_KEY, None)
    if azl is not None:
        dead = [(p, azl.dead(p.id)) for p in azl.params if azl.dead(p.id) is not None]
        if dead:
            terminalreporter.section("azl unreachable hosts")
            for param, error in dead:
                terminalreporter.line(redact(f"{param.id}: {error}", azl.secrets()), red=True)
    reports = config.stash.get(WRITTEN_KEY, None)
    collector = config.stash.get(COLLECTOR_KEY, None)
    if not reports or collector is None:
        return
    from .report.verdict import verdict_lines

    terminalreporter.section("azl verdict")
    for line in verdict_lines(reports, collector.html):
        terminalreporter.line(line)

"""pytest hooks: options, markers, parametrization over hosts, report routing.

The behaviour lives elsewhere: targets (targets.py), connections (session.py, transport/),
fixtures (fixtures.py), reports (report/). This module only wires them into pytest.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .errors import HostUnreachable, InfraError, TargetsError
from .fixtures import SESSION_KEY
from .report.collector import ImageReport, ReportCollector
from .report.model import PROP_OUTCOME
from .session import (
    AzlSession,
    HostParam,
    find_targets_file,
    host_id_in,
    parse_shard,
)
from .targets import TargetsFile, load_targets, split_names

COLLECTOR_KEY = pytest.StashKey[ReportCollector]()
WRITTEN_KEY = pytest.StashKey[list[ImageReport]]()
HOST_FIXTURES = ("azl_host", "azl_host_pair", "azl_hosts", "azl_image", "azl_target")
MARKERS = {
    "azl_image": "image posture suite",
    "azl_network": "network throughput suite",
    "azl_storage": "storage snapshot suite",
    "azl_selinux": "SELinux mode and denial suite",
    "azl_escape": "container-escape probe suite",
    "azl_cluster": "needs a cluster target (Kubernetes API)",
    "azl_destructive": "changes the target (formats disks, loads policy): runs only with "
    "--azl-allow-destructive",
    "azl_requires(hosts=N, kinds=[...])": "skip with a reason unless the target has at least "
    "N hosts / is of one of the kinds",
}


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
    parser.addini("azl_targets_file", "targets file, relative to the rootdir")
    parser.addini("azl_profiles_dir", "image profile directories, relative to the rootdir",
                  type="paths")
    parser.addini("azl_junit_dir", "directory for per-image JUnit reports", default="reports")
    parser.addini("azl_command_timeout", "default remote command timeout (s)", default="60")


def _check_mark_expression(config: pytest.Config) -> None:
    """``-m network`` would quietly deselect every test: name the marker that was meant."""
    expression = config.getoption("markexpr", "") or ""
    registered = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for word in re.findall(r"[A-Za-z_][\w.-]*", expression):
        meant = f"azl_{word}"
        if word not in registered and meant in MARKERS:
            raise pytest.UsageError(
                f"-m {expression!r}: no marker {word!r} is registered; "
                f"pytest-azlinux's is {meant!r}"
            )


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    from . import fixtures
    from .cluster import fixtures as cluster_fixtures
    from .containers import fixtures as container_fixtures
    from .profiles import fixtures as profile_fixtures
    from .selinux.fixtures import register_plugin as register_selinux

    if not config.pluginmanager.has_plugin("azl-fixtures"):
        config.pluginmanager.register(fixtures, "azl-fixtures")
        config.pluginmanager.register(profile_fixtures, "azl-profile-fixtures")
        config.pluginmanager.register(cluster_fixtures, "azl-cluster-fixtures")
        config.pluginmanager.register(container_fixtures, "azl-container-fixtures")
    register_selinux(config)  # azl_selinux fixture and the per-test denial watcher
    _check_mark_expression(config)
    names = split_names(config.getoption("azl_target"))
    if not names:
        return
    targets = _targets_file(config)
    try:
        for name in names:
            targets.get(name)
        shard = parse_shard(config.getoption("azl_shard"))
    except TargetsError as exc:
        raise pytest.UsageError(str(exc)) from None
    timeout = config.getoption("azl_command_timeout") or float(
        config.getini("azl_command_timeout")
    )
    session = AzlSession(
        targets, names, command_timeout=timeout,
        is_controller=not hasattr(config, "workerinput"), shard=shard,
    )
    config.stash[SESSION_KEY] = session
    if session.is_controller:
        junit_dir = Path(config.getoption("azl_junit_dir") or config.getini("azl_junit_dir"))
        if not junit_dir.is_absolute():
            junit_dir = Path(config.invocation_params.dir) / junit_dir
        collector = ReportCollector(
            junit_dir, __version__, default_target=names[0] if len(names) == 1 else None
        )
        config.stash[COLLECTOR_KEY] = collector
        config.pluginmanager.register(collector, "azl-reports")


def _targets_file(config: pytest.Config) -> TargetsFile:
    """The targets file the options point at, loaded; a usage error when it is invalid."""
    try:
        path = find_targets_file(
            config.getoption("azl_targets_file"), config.getini("azl_targets_file"),
            config.rootpath,
        )
        return load_targets(path)
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
            detail = detail or ", ".join(h.name for h in hosts)
        print(f"  {name:24} {target.kind:8} {detail}")
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    azl = session.config.stash.get(SESSION_KEY, None)
    if azl is None:
        return
    try:
        azl.resolve()
    except (TargetsError, InfraError) as exc:
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
        pairs, ids = _pairs(azl, metafunc.config.getoption("azl_pairing"))
        metafunc.parametrize("azl_host_pair", pairs, ids=ids, indirect=True)
    elif "azl_host" in names:
        metafunc.parametrize(
            "azl_host", azl.params, ids=[p.id for p in azl.params], indirect=True
        )
    elif "azl_hosts" in names:
        targets = [t for t in azl.selected if any(p.target is t for p in azl.params)]
        metafunc.parametrize("azl_hosts", targets, ids=[t.name for t in targets], indirect=True)


def _pairs(azl: AzlSession, mode: str) -> tuple[list[Any], list[str]]:
    pairs: list[Any] = []
    ids: list[str] = []
    for target in azl.selected:
        hosts = [p for p in azl.params if p.target is target]
        if len(hosts) < 2:
            pairs.append(pytest.param(
                (None, None),
                marks=pytest.mark.skip(
                    reason=f"needs at least 2 hosts; target {target.name} has {len(hosts)}"
                ),
            ))
            ids.append(target.name)
            continue
        chosen: list[tuple[HostParam, HostParam]]
        if mode == "all":
            chosen = [(a, b) for a in hosts for b in hosts if a is not b]
        elif mode == "star":
            chosen = [(hosts[0], b) for b in hosts[1:]]
        else:
            chosen = [(hosts[i], hosts[(i + 1) % len(hosts)]) for i in range(len(hosts))]
            if len(hosts) == 2:
                chosen = chosen[:1]
        pairs.extend(chosen)
        ids.extend(f"{a.id}->{b.id}" for a, b in chosen)
    return pairs, ids


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    azl = config.stash.get(SESSION_KEY, None)
    uses_azl = [i for i in items if set(HOST_FIXTURES) & set(getattr(i, "fixturenames", ()))]
    if azl is None:
        if uses_azl:
            raise pytest.UsageError(
                f"{len(uses_azl)} tests need a target (e.g. {uses_azl[0].nodeid}): "
                "run with --azl-target NAME (see --azl-list-targets)"
            )
        return
    allow_destructive = config.getoption("azl_allow_destructive")
    for item in items:
        if item.get_closest_marker("azl_destructive") and not allow_destructive:
            item.add_marker(pytest.mark.skip(
                reason="destructive: changes the target; run with --azl-allow-destructive"
            ))
        _apply_requires(item, azl)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember what will run (after -k/-m deselection) so nothing goes missing from reports."""
    _record_collected(session.config, [item.nodeid for item in session.items])


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    _record_collected(node.config, ids)


def _record_collected(config: pytest.Config, nodeids: list[str]) -> None:
    azl = config.stash.get(SESSION_KEY, None)
    collector = config.stash.get(COLLECTOR_KEY, None)
    if azl is None or collector is None:
        return
    host_ids = [p.id for p in azl.params]
    for nodeid in nodeids:
        host = host_id_in(nodeid, host_ids)
        collector.collected(nodeid, host, azl.param(host).target.name if host else None)


def _apply_requires(item: pytest.Item, azl: AzlSession) -> None:
    for mark in item.iter_markers("azl_requires"):
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("azl_host") if callspec else None
        targets = [param.target] if isinstance(param, HostParam) else azl.selected
        for target in targets:
            need = int(mark.kwargs.get("hosts", 1))
            have = sum(1 for p in azl.params if p.target is target)
            if have < need:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs at least {need} hosts; target {target.name} has {have}"
                ))
            kinds = mark.kwargs.get("kinds")
            if kinds and target.kind not in kinds:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs a target of kind {'/'.join(kinds)}; "
                    f"{target.name} is {target.kind}"
                ))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Keep every test of one host on one worker (one connection, one failure per host)."""
    azl = config.stash.get(SESSION_KEY, None)
    if azl is None or config.getoption("dist") not in ("load", "loadscope"):
        return None
    from .xdist_scheduling import HostScheduling

    return HostScheduling(config, log, [p.id for p in azl.params])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(InfraError):
        if call.when == "call":
            report.user_properties.append((PROP_OUTCOME, "error"))
        if call.excinfo.errisinstance(HostUnreachable):
            azl = item.config.stash.get(SESSION_KEY, None)
            host = host_id_in(item.nodeid, [p.id for p in azl.params]) if azl else None
            if azl is not None and host is not None:
                azl.mark_dead(host, call.excinfo.value)  # type: ignore[arg-type]
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    infra = (PROP_OUTCOME, "error") in report.user_properties
    if report.when == "call" and report.failed and infra:
        return "error", "E", "ERROR"
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    azl = config.stash.get(SESSION_KEY, None)
    collector = config.stash.get(COLLECTOR_KEY, None)
    if collector is not None and not config.option.collectonly:
        interrupted = None
        stopped = session.shouldfail or session.shouldstop  # -x / --maxfail / stepwise
        if exitstatus == 2:
            interrupted = "the run was interrupted"
        elif stopped:
            interrupted = f"the run stopped early ({stopped})"
        reports = collector.write(interrupted)
        config.stash[WRITTEN_KEY] = reports
        from .report.github import publish

        publish(reports)  # a no-op unless GITHUB_ACTIONS=true
    if azl is not None:
        failures = azl.close()
        for failure in failures:
            config.get_terminal_writer().line(f"azl: cleanup failed: {failure}", red=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    reports = config.stash.get(WRITTEN_KEY, None)
    if not reports:
        return
    terminalreporter.section("azl reports")
    for r in reports:
        c = r.counts
        terminalreporter.line(
            f"{r.name}: {c['passed']} passed, {c['failed']} failed, {c['error']} errors, "
            f"{c['skipped']} skipped -> {r.path}"
        )

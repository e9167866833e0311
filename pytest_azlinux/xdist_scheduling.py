"""pytest-xdist hooks (registered only where xdist is installed and enabled).

Every test of one host runs on one worker (one connection, one failure per host), and hosts
go to workers in batches (``host_batches``) that a worker prepares at once, as the
controller does for a run without xdist; tests not bound to a host are spread by module,
as ``--dist loadscope`` does. The controller sees node
ids only, so here (and only here) a test's host is found from its node id.

Workers are told the collection this process decided (rootdir, config file, and the test
paths when they came from ``testpaths`` or the invocation directory) instead of deciding it
again from the raw command line in whatever directory they start in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Generator, Sequence
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from . import progress
from .lifecycle import WORKER_INTERRUPT
from .report.model import PROP_HOST, PROP_IMAGE
from .runstate import SESSION_KEY
from .session import host_batches, host_id_in


class HostScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def __init__(self, config: Any, log: Any, host_ids: Sequence[str]) -> None:
        super().__init__(config, log)
        self._host_ids = list(host_ids)
        self._batches: dict[str, int] | None = None

    def _split_scope(self, nodeid: str) -> str:
        host = host_id_in(nodeid, self._host_ids)
        if host is not None:
            if self._batches is None:  # the workers are known once scheduling starts
                self._batches = host_batches(self._host_ids, len(self.nodes))
            return f"hosts:{self._batches[host]}"
        return str(super()._split_scope(nodeid))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Keep every test of one host on one worker."""
    azl = config.stash.get(SESSION_KEY, None)
    if azl is None or config.getoption("dist") not in ("load", "loadscope"):
        return None
    host_ids = [p.id for p in azl.params]
    if host_ids and not config.pluginmanager.has_plugin(PROGRESS_NAME):
        config.pluginmanager.register(HostsPrepared(host_ids), PROGRESS_NAME)
    return HostScheduling(config, log, host_ids)


PROGRESS_NAME = "azl-xdist-progress"


class HostsPrepared:
    """The controller's progress of host preparation under xdist: the workers prepare their
    batches silently; a host counts as prepared when its first test reports with its facts
    (``facts read``), or fails in setup without them (``unreachable``)."""

    def __init__(self, host_ids: Sequence[str]) -> None:
        self.host_ids = list(host_ids)
        self.seen: set[str] = set()
        self.phase = progress.phase("preparing hosts (xdist workers)", len(self.host_ids),
                                    among_tests=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if len(self.seen) == len(self.host_ids):
            return
        host = host_id_in(report.nodeid, self.host_ids)
        if host is None or host in self.seen:
            return
        props = dict(report.user_properties)
        if PROP_IMAGE in props:
            state = "facts read"
        elif report.when == "setup" and report.failed and PROP_HOST in props:
            state = "unreachable"
        else:  # skipped before it touched the host: says nothing about it
            return
        self.seen.add(host)
        self.phase.end(host, state)
        if len(self.seen) == len(self.host_ids):
            self.phase.close()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.phase.close()


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """The xdist controller sees node ids only: map them to hosts by their parameter ids."""
    config = node.config
    azl = config.stash.get(SESSION_KEY, None)
    from .plugin import COLLECTOR_KEY

    collector = config.stash.get(COLLECTOR_KEY, None)
    if azl is None or collector is None:
        return
    host_ids = [p.id for p in azl.params]
    for nodeid in ids:
        host = host_id_in(nodeid, host_ids)
        collector.collected(nodeid, host, azl.param(host).target.name if host else None)


def worker_args(config: pytest.Config) -> tuple[str, ...]:
    """The command line a worker gets: the user's, then the rootdir and config file this
    process found, then (when no test path was given) the paths it chose, made absolute."""
    params = config.invocation_params
    args = [*params.args, f"--rootdir={config.rootpath}"]
    if config.inipath is not None:
        args.append(f"--config-file={config.inipath}")
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        args += [a if config.option.pyargs else str(params.dir / a) for a in config.args]
    return tuple(args)


def pytest_xdist_setupnodes(config: pytest.Config, specs: Sequence[Any]) -> None:
    """Before xdist starts the workers: they collect what a run without ``-n`` collects.

    Each worker runs pytest's start-up again in its own process: a worker whose directory or
    environment is not the one pytest saw at start (the controller's working directory moved,
    say) would find another rootdir, lose ``testpaths`` and ``addopts``, and collect other
    tests under other node ids. Workers started elsewhere (``--tx ssh=...``) keep xdist's
    own handling (their paths are made relative to the rsync roots)."""
    if not all(getattr(spec, "popen", None) and not getattr(spec, "chdir", None)
               for spec in specs):
        return
    config.invocation_params = dataclasses.replace(
        config.invocation_params, args=worker_args(config))


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Ctrl-C or SIGTERM on the controller interrupts the workers too, at once. A busy
    worker (connecting to hosts, running a test) would not read the controller's shutdown
    until xdist gives up on it (10 s) and kills it without its cleanup. Not with SIGTERM: a
    worker that had one from the same kill of the process group would die at the second
    one, leaving what its test started running on the hosts (see lifecycle.py)."""
    try:
        return (yield)
    except KeyboardInterrupt:
        _interrupt_workers(session.config)
        raise


def _interrupt_workers(config: pytest.Config) -> None:
    dsession = config.pluginmanager.getplugin("dsession")
    group = getattr(getattr(dsession, "nodemanager", None), "group", None)
    for gateway in list(group or ()):
        popen = getattr(getattr(gateway, "_io", None), "popen", None)
        pid = getattr(popen, "pid", None)
        if isinstance(pid, int) and popen is not None and popen.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(pid, WORKER_INTERRUPT)

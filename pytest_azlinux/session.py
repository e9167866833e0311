"""The run's state: selected targets, their hosts, and one connection per host.

The plugin registers one ``AzlSession`` per pytest process (controller and xdist workers).
A target is resolved by its kind (``kinds/``) into hosts and a context; the context travels
with the ``SelectedTarget`` to the transports and fixtures, never through a global registry.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import progress
from . import settings as suite_settings
from .cleanup import CleanupLedger
from .errors import HostUnreachable, InfraError, NotRecorded, TargetsError
from .host import Host
from .kinds.protocol import HostsStarting, MakesTransports
from .reads import ReadSource
from .targets import AnyTarget, HostSpec, TargetsFile, check_spec
from .transport.local import LocalTransport
from .transport.protocol import Transport

S = TypeVar("S", bound=suite_settings.SuiteSettings)
DEFAULT_CONNECT_WORKERS = 32
READ_AHEAD_ROUNDS = 3


@dataclass(frozen=True)
class SelectedTarget:
    """A target chosen for this run: its hosts, its context and its validated settings."""

    name: str
    config: AnyTarget
    hosts: tuple[HostSpec, ...]
    context: Any = None  # what the kind's transports and fixtures share (cluster client...)
    suite_settings: Mapping[str, suite_settings.SuiteSettings] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.config.kind

    def settings(self, suite: str) -> dict[str, Any]:
        """The target's raw ``suites.<suite>`` mapping (for users' own suites)."""
        return dict(self.config.suites.get(suite, {}))

    def settings_for(self, model: type[S]) -> S:
        """``suites.<model.suite>`` validated by ``model`` (validated once, at start-up)."""
        found = self.suite_settings.get(model.suite)
        if isinstance(found, model):
            return found
        return suite_settings.parse(model, self.config.suites.get(model.suite), self.name)


@dataclass(frozen=True)
class HostParam:
    """One host as a test parameter: its spec and the id used in test names."""

    id: str
    target: SelectedTarget
    spec: HostSpec


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise TargetsError(
            f"--azl-shard: expected INDEX/COUNT with 1 <= INDEX <= COUNT, got {value!r}"
        )
    return int(m.group(1)), int(m.group(2))


def shard_hosts(params: Sequence[HostParam], shard: tuple[int, int] | None) -> list[HostParam]:
    """Deterministic split: sorted by (target, host) so file order does not matter."""
    if shard is None:
        return list(params)
    index, count = shard
    ordered = sorted(params, key=lambda p: (p.target.name, p.spec.name))
    keep = {id(p) for i, p in enumerate(ordered) if i % count == index - 1}
    return [p for p in params if id(p) in keep]


def host_params(targets: Iterable[SelectedTarget]) -> list[HostParam]:
    """One parameter per host; a name that two targets share is prefixed with its target."""
    targets = list(targets)
    counts = Counter(s.name for t in targets for s in t.hosts)
    return [
        HostParam(f"{t.name}:{s.name}" if counts[s.name] > 1 else s.name, t, s)
        for t in targets
        for s in t.hosts
    ]


def host_id_in(nodeid: str, host_ids: Sequence[str]) -> str | None:
    """Which host a test id belongs to (for a pair ``a->b``, the first), or None.

    Only for the xdist controller, which sees node ids and nothing else (scheduling, tests
    that never ran); everywhere else the test item carries its ``HostParam`` (plugin stash).
    """
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    m = _host_pattern(tuple(host_ids)).search(nodeid[nodeid.index("[") + 1 : -1])
    return m.group(1) if m else None


def host_batches(host_ids: Sequence[str], workers: int) -> dict[str, int]:
    """Each host's batch: the hosts an xdist worker is given together and prepares at once
    (``connect_workers`` at a time, as the controller does without xdist).

    Two batches per worker: each worker has the next one queued while it runs one, and a
    worker that is done early takes a batch from the queue. The controller (scheduling)
    and each worker (preparing) compute the same batches from the same hosts.
    """
    size = max(1, -(-len(host_ids) // (2 * max(1, workers))))
    return {host: index // size for index, host in enumerate(host_ids)}


@functools.lru_cache(maxsize=8)
def _host_pattern(host_ids: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for all hosts: the earliest match wins, the longest id at one position
    (alternatives are tried longest first), so ``vm-1->vm-2`` is ``vm-1``, not ``vm``."""
    ids = "|".join(re.escape(h) for h in sorted(host_ids, key=len, reverse=True))
    return re.compile(rf"(?:^|(?<=[->]))({ids or '(?!)'})(?=$|-)")


@dataclass
class AzlSession:
    """Targets, hosts and connections of one pytest process."""

    targets_file: TargetsFile
    target_names: list[str]
    command_timeout: float = 60.0
    is_controller: bool = True
    shard: tuple[int, int] | None = None
    connect_workers: int = DEFAULT_CONNECT_WORKERS
    # the settings model of each registered suite (``suite_table``); None: taken as it is
    suite_models: Mapping[str, type[suite_settings.SuiteSettings] | None] = field(
        default_factory=dict)
    selected: list[SelectedTarget] = field(default_factory=list)
    params: list[HostParam] = field(default_factory=list)
    teardown: CleanupLedger = field(default_factory=CleanupLedger)
    _by_id: dict[str, HostParam] = field(default_factory=dict)
    _by_target: dict[str, list[HostParam]] = field(default_factory=dict)
    _secrets: list[str] | None = None
    _hosts: dict[str, Host] = field(default_factory=dict)
    _dead: dict[str, InfraError] = field(default_factory=dict)
    _opening: dict[str, threading.Lock] = field(default_factory=dict)
    _connecting: dict[str, Host] = field(default_factory=dict)  # hosts being prepared
    _aborting: threading.Event = field(default_factory=threading.Event)  # the run is ending
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batch_of: dict[str, list[HostParam]] | None = None  # an xdist worker's: see use_batches
    _read_ahead: list[ReadSource] = field(default_factory=list)

    # -- resolution -----------------------------------------------------------------------
    def validate(self) -> None:
        """Every selected target's suite settings and its kind's resolver, before anything
        starts (a bad value, a resolver that does not import: ConfigError, one line)."""
        for name in self.target_names:
            config = self.targets_file.get(name)
            suite_settings.validate_all(name, config.suites, self.suite_models)
            self.targets_file.kind(config.kind).resolve_function()

    def resolve(self) -> None:
        """Resolve the selected targets to hosts (may start the lab on the controller)."""
        for name in self.target_names:
            config = self.targets_file.get(name)
            validated = suite_settings.validate_all(name, config.suites, self.suite_models)
            kind = self.targets_file.kind(config.kind)
            resolved = kind.resolve_function()(name, config, start=self.is_controller)
            if resolved.undo is not None:
                self.teardown.add(resolved.undo_what or f"clean up target {name}", resolved.undo)
            for spec in resolved.hosts:
                check_spec(spec)
            self.selected.append(
                SelectedTarget(name, config, tuple(resolved.hosts), resolved.context, validated)
            )
        self.params = shard_hosts(host_params(self.selected), self.shard)
        self._by_id = {p.id: p for p in self.params}
        self._by_target = {}
        for param in self.params:
            self._by_target.setdefault(param.target.name, []).append(param)

    def secrets(self) -> list[str]:
        """Every secret of the run, longest first (computed once: read per test report)."""
        if self._secrets is None:
            out = self.targets_file.secrets()
            for param in self.params:
                out.extend(param.spec.secrets())
            self._secrets = sorted(set(out), key=len, reverse=True)
        return self._secrets

    def target(self, name: str) -> SelectedTarget:
        return next(t for t in self.selected if t.name == name)

    def param(self, host_id: str) -> HostParam:
        return self._by_id[host_id]

    def params_of(self, target: SelectedTarget) -> list[HostParam]:
        """The target's hosts in this run (after sharding)."""
        return self._by_target.get(target.name, [])

    # -- connections ------------------------------------------------------------------------
    def host(self, param: HostParam, stage: Callable[[str], None] | None = None) -> Host:
        """The connected host with its facts read, opened once; a failure is remembered and
        raised again at once for the host's other tests. ``stage`` hears how the opening
        goes (progress): a debug pod created and running, then ``connected`` before the
        facts are read."""
        with self._lock:
            opening = self._opening.setdefault(param.id, threading.Lock())
        with opening:  # one opener per host; other hosts open concurrently
            with self._lock:
                if param.id in self._dead:
                    raise _again(self._dead[param.id]) from None
                host = self._hosts.get(param.id)
            if host is not None:
                return host
            host = Host(
                param.spec, make_transport(param.spec, param.target.context, stage),
                self.command_timeout,
            )
            with self._lock:
                self._connecting[param.id] = host
            try:
                if self._aborting.is_set():
                    raise HostUnreachable(param.spec.name, param.spec.address,
                                          "not connected: the run is ending")
                if isinstance(param.target.context, HostsStarting):
                    param.target.context.wait_ready(param.spec.name)
                host.transport.connect()
                if stage is not None:
                    stage("connected")
                host.facts  # noqa: B018  (read once, in the same pass as the connect)
                self._read_ahead_on(host)
            except InfraError as exc:
                with contextlib.suppress(Exception):
                    host.close()
                self.mark_dead(param.id, exc)
                raise
            finally:
                with self._lock:
                    self._connecting.pop(param.id, None)
            with self._lock:
                if not self._aborting.is_set():
                    self._hosts[param.id] = host
                    return host
            with contextlib.suppress(Exception):  # connected as the run ended: undo it
                host.close()
            raise HostUnreachable(param.spec.name, param.spec.address,
                                  "not connected: the run is ending")

    def read_ahead(self, source: ReadSource) -> None:
        """Fetch ``source``'s reads on every host as it is prepared (in the concurrent pass,
        not host by host when each host's first test comes up); once per source."""
        with self._lock:
            if source not in self._read_ahead:
                self._read_ahead.append(source)

    def _read_ahead_on(self, host: Host) -> None:
        """The declared reads of ``host``, in one round trip per privilege; a source may want
        more once its first reads are in (a query that depends on them): another round, at
        most ``READ_AHEAD_ROUNDS``. A failure is left to the test that needs the read: it
        runs again there and is reported in that test."""
        with self._lock:
            sources = list(self._read_ahead)
        with contextlib.suppress(InfraError, NotRecorded):  # a recording lacking a read
            for _ in range(READ_AHEAD_ROUNDS):
                wanted = [r for source in sources for r in source(host)
                          if r not in host.reads.results]
                if not wanted:
                    return
                host.reads.fetch(wanted)

    def prepare(self, params: Iterable[HostParam]) -> dict[str, InfraError]:
        """Connect to ``params`` and read their facts concurrently (at most
        ``connect_workers`` at a time): a dead host costs one connect timeout in all, not
        one per host in sequence. Returns the hosts that failed, with their errors.

        Ctrl-C or SIGTERM meanwhile ends it at once: the connects under way are aborted
        (``abort``) and nothing waits for them; the workers are daemon threads."""
        asked = list({p.id: p for p in params}.values())
        with self._lock:  # hosts tried already are neither opened nor counted again
            todo = deque(p for p in asked if p.id not in self._hosts and p.id not in self._dead)
        if todo:
            with progress.phase("preparing hosts", len(todo)) as shown:
                def open_one(param: HostParam) -> None:
                    shown.begin(param.id)
                    try:
                        self.host(param, lambda state: shown.step(param.id, state))
                    except InfraError as exc:
                        unreachable = isinstance(exc, HostUnreachable)
                        shown.end(param.id, "unreachable" if unreachable else "failed")
                    else:
                        shown.end(param.id, "facts read")

                def work() -> None:
                    while not self._aborting.is_set():
                        try:
                            param = todo.popleft()
                        except IndexError:
                            return
                        open_one(param)

                workers = [threading.Thread(target=work, name="azl-connect", daemon=True)
                           for _ in range(max(1, min(self.connect_workers, len(todo))))]
                for worker in workers:
                    worker.start()
                try:
                    for worker in workers:
                        while worker.is_alive():
                            worker.join(0.5)  # a signal's exception surfaces here at once
                except BaseException:
                    self.abort()
                    raise
        with self._lock:
            return {p.id: self._dead[p.id] for p in asked if p.id in self._dead}

    def abort(self) -> None:
        """The run is ending: connects under way give up now, none starts any more."""
        self._aborting.set()
        with self._lock:
            opening = list(self._connecting.values())
        for host in opening:
            stop = getattr(host.transport, "abort", None)
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()

    def use_batches(self, workers: int) -> None:
        """On an xdist worker: the first test of a host prepares the host's whole batch."""
        batches = host_batches([p.id for p in self.params], workers)
        members: dict[int, list[HostParam]] = {}
        for param in self.params:
            members.setdefault(batches[param.id], []).append(param)
        self._batch_of = {host: members[batch] for host, batch in batches.items()}

    def prepare_batch_of(self, host_id: str) -> None:
        """Prepare ``host_id``'s batch (an xdist worker) unless the host was tried already."""
        if self._batch_of is None:
            return
        with self._lock:
            if host_id in self._hosts or host_id in self._dead:
                return
        self.prepare(self._batch_of[host_id])

    def dead(self, host_id: str) -> InfraError | None:
        with self._lock:
            return self._dead.get(host_id)

    def mark_dead(self, host_id: str, error: InfraError) -> None:
        with self._lock:
            self._dead.setdefault(host_id, error)

    def revive(self, host_id: str) -> None:
        """Forget that ``host_id`` failed and drop its connection: the next ``host()``
        connects afresh (a test run again after an infrastructure error)."""
        with self._lock:
            self._dead.pop(host_id, None)
            host = self._hosts.pop(host_id, None)
        if host is not None:
            with contextlib.suppress(Exception):  # it is likely broken already
                host.close()

    def close(self) -> list[str]:
        """Close every connection (ending what runs on the hosts), then run the undo steps."""
        self.abort()  # a host still connecting is not kept past this point
        with self._lock:
            hosts = list(self._hosts.values())
            self._hosts.clear()
        if hosts:
            def close_one(host: Host) -> None:
                with contextlib.suppress(Exception):  # a dead connection must not stop the rest
                    host.close()

            with ThreadPoolExecutor(max(1, min(self.connect_workers, len(hosts)))) as pool:
                list(pool.map(close_one, hosts))
        return self.teardown.run()


def _again(error: InfraError) -> InfraError:
    """A fresh copy of a remembered error, with the traceback of its first raise: raising
    the one object again would add each raise to its traceback (every later test of a
    dead host longer, and slower, to report than the one before)."""
    again = type(error).__new__(type(error), *error.args)
    again.args = error.args
    again.__dict__.update(error.__dict__)
    return again.with_traceback(error.__traceback__)  # where it first happened (--tb=long)


def make_transport(spec: HostSpec, context: Any = None,
                   stage: Callable[[str], None] | None = None) -> Transport:
    """The transport of ``spec``'s access; ``context`` is its target's (a cluster's client,
    or one that makes its transports itself: ``MakesTransports``); ``stage`` hears the
    stages of a slow connect (a debug pod's)."""
    if isinstance(context, MakesTransports):
        return context.transport(spec)
    if spec.access == "local":
        return LocalTransport(spec.name)
    if spec.access == "ssh":
        from .transport.ssh import SshTransport

        return SshTransport(spec)
    if spec.access == "kube":
        from .transport.kube import KubeTransport

        return KubeTransport(spec, context, stage)
    raise TargetsError(f"host {spec.name}: unknown access {spec.access!r}")


def find_targets_file(option: str | None, ini: str | None, rootdir: Path) -> Path | None:
    """--azl-targets-file, else the ini option, else azl-targets.yaml in the rootdir."""
    if option:
        return Path(option)
    if ini:
        path = Path(ini)
        return path if path.is_absolute() else rootdir / path
    default = rootdir / "azl-targets.yaml"
    return default if default.exists() else None

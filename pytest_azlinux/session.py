"""The run's state: selected targets, their hosts, and one connection per host.

The plugin registers one ``AzlSession`` per pytest process (controller and xdist workers).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cleanup import CleanupLedger
from .errors import HostUnreachable, InfraError, TargetsError
from .host import Host
from .kinds.protocol import Resolved
from .targets import (
    AnyTarget,
    ClusterTarget,
    HostSpec,
    LabTarget,
    LocalTarget,
    SshTarget,
    TargetsFile,
    local_host_specs,
    ssh_host_specs,
)
from .transport.local import LocalTransport
from .transport.protocol import Transport


@dataclass(frozen=True)
class SelectedTarget:
    """A target chosen for this run with its hosts resolved."""

    name: str
    config: AnyTarget
    hosts: tuple[HostSpec, ...]
    # what the target's resolver handed over (kinds/protocol.py); not part of its identity
    context: Any = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        return self.config.kind

    def settings(self, suite: str) -> dict[str, Any]:
        """The target's ``suites.<suite>`` mapping (thresholds, allowlists...)."""
        return dict(self.config.suites.get(suite, {}))


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


def host_id_in(nodeid: str, host_ids: Sequence[str]) -> str | None:
    """Which host a test id belongs to (for a pair ``a->b``, the first), or None."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    m = _host_pattern(tuple(host_ids)).search(nodeid[nodeid.index("[") + 1 : -1])
    return m.group(1) if m else None


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
    selected: list[SelectedTarget] = field(default_factory=list)
    params: list[HostParam] = field(default_factory=list)
    teardown: CleanupLedger = field(default_factory=CleanupLedger)
    _hosts: dict[str, Host] = field(default_factory=dict)
    _dead: dict[str, InfraError] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- resolution -----------------------------------------------------------------------
    def resolve(self) -> None:
        """Resolve the selected targets to hosts (may start the lab on the controller)."""
        for name in self.target_names:
            config = self.targets_file.get(name)
            resolved = self._resolve_one(name, config)
            if resolved.undo is not None:
                self.teardown.add(resolved.undo_what or f"undo target {name}", resolved.undo)
            self.selected.append(
                SelectedTarget(name, config, tuple(resolved.hosts), resolved.context))
        all_names = [s.name for t in self.selected for s in t.hosts]
        duplicated = {n for n in all_names if all_names.count(n) > 1}
        params = [
            HostParam(f"{t.name}:{s.name}" if s.name in duplicated else s.name, t, s)
            for t in self.selected
            for s in t.hosts
        ]
        self.params = shard_hosts(params, self.shard)

    def _resolve_one(self, name: str, config: AnyTarget) -> Resolved:
        if isinstance(config, LocalTarget):
            return Resolved(local_host_specs(config, name))
        if isinstance(config, SshTarget):
            return Resolved(ssh_host_specs(config, name))
        if isinstance(config, LabTarget):
            from .lab.target import resolve_lab_target

            return resolve_lab_target(name, config, start=self.is_controller)
        if isinstance(config, ClusterTarget):
            from .cluster.target import resolve_cluster_target

            return resolve_cluster_target(name, config, start=self.is_controller)
        raise TargetsError(f"target {name!r}: unsupported kind {config.kind!r}")

    def secrets(self) -> list[str]:
        out = self.targets_file.secrets()
        for param in self.params:
            out.extend(param.spec.secrets())
        return sorted(set(out), key=len, reverse=True)

    def target(self, name: str) -> SelectedTarget:
        return next(t for t in self.selected if t.name == name)

    def param(self, host_id: str) -> HostParam:
        return next(p for p in self.params if p.id == host_id)

    # -- connections ------------------------------------------------------------------------
    def host(self, param: HostParam) -> Host:
        """The connected host, opened once; a failure is remembered and raised again at once."""
        with self._lock:
            if param.id in self._dead:
                raise self._dead[param.id]
            host = self._hosts.get(param.id)
            if host is not None:
                return host
            transport = make_transport(param.spec, param.target.context)
            host = Host(param.spec, transport, self.command_timeout)
            try:
                host.transport.connect()
            except HostUnreachable as exc:
                self._dead[param.id] = exc
                raise
            self._hosts[param.id] = host
            return host

    def mark_dead(self, host_id: str, error: InfraError) -> None:
        with self._lock:
            self._dead.setdefault(host_id, error)

    def close(self) -> list[str]:
        for host in self._hosts.values():
            with contextlib.suppress(Exception):  # a dead connection must not stop the rest
                host.close()
        self._hosts.clear()
        return self.teardown.run()


def make_transport(spec: HostSpec, context: Any = None) -> Transport:
    if spec.access == "local":
        return LocalTransport(spec.name)
    if spec.access == "ssh":
        from .transport.ssh import SshTransport

        return SshTransport(spec)
    if spec.access == "kube":
        from .transport.kube import KubeTransport

        return KubeTransport(spec, context)
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

"""The fixtures suites use: hosts of the selected targets, their facts, metrics, cleanup."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

import pytest

from .cleanup import CleanupLedger
from .errors import CleanupFailed
from .facts import ImageFacts
from .host import Host
from .report.model import (
    METRIC_PREFIX,
    PROP_FACTS,
    PROP_HOST,
    PROP_IMAGE,
    PROP_IMAGE_RECORD,
    PROP_NODE_IMAGE,
    PROP_OS_SKU,
    PROP_OS_SKU_EFFECTIVE,
    PROP_OS_SKU_REQUESTED,
    PROP_TARGET,
    format_samples,
)
from .runstate import IMAGE_RECORDED_KEY, SESSION_KEY, item_target
from .session import AzlSession, HostParam, SelectedTarget


class MetricRecorder(Protocol):
    def __call__(
        self, name: str, value: float, unit: str = "",
        better: Literal["higher", "lower"] = "higher", *,
        spread: tuple[float, float] | None = None, gate: bool | None = None,
        threshold: str | None = None, tolerance: float | None = None,
        samples: Sequence[float] | None = None,
    ) -> None: ...


def get_session(config: pytest.Config) -> AzlSession:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        raise pytest.UsageError("no target selected: run with --azl-target NAME")
    return session


@pytest.fixture(scope="session")
def azl_session(request: pytest.FixtureRequest) -> AzlSession:
    """The run's targets, hosts and connections."""
    return get_session(request.config)


def _bind(request: pytest.FixtureRequest, session: AzlSession, param: HostParam) -> Host:
    props = request.node.user_properties
    props.append((PROP_HOST, param.id))
    props.append((PROP_TARGET, param.target.name))
    host = session.host(param)
    facts = host.facts
    props.append((PROP_IMAGE, facts.image_key))
    props.append((PROP_FACTS, json.dumps({
        "image": facts.image_key, "os_id": facts.os_id, "version": facts.version,
        "variant": facts.variant_name, "kernels": [facts.kernel],
        "node_image_version": facts.node_image_version, "os_sku": facts.os_sku,
    })))
    for name, value in ((PROP_NODE_IMAGE, facts.node_image_version), (PROP_OS_SKU, facts.os_sku),
                        (PROP_OS_SKU_EFFECTIVE, facts.os_sku_effective),
                        (PROP_OS_SKU_REQUESTED, facts.os_sku_requested)):
        if value:  # an AKS node's image, on each of its tests (its JUnit properties)
            props.append((name, value))
    recorded = request.config.stash.setdefault(IMAGE_RECORDED_KEY, set())
    if param.id not in recorded:  # once per host and process: the run's image record
        recorded.add(param.id)
        from .report.host_image import host_image_entry

        entry = {"image": facts.image_key, "host": param.id, **host_image_entry(host)}
        props.append((PROP_IMAGE_RECORD, json.dumps(entry)))
    return host


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every host's package inventory is read with its other reads while the session
    prepares it (the run's image record; the package checks use the same results)."""
    azl = session.config.stash.get(SESSION_KEY, None)
    if azl is not None and session.items:
        from .report.host_image import inventory_reads

        azl.read_ahead(inventory_reads)


@pytest.fixture
def azl_host(request: pytest.FixtureRequest, azl_session: AzlSession) -> Host:
    """One host of the selected target(s); tests using it run once per host (id = name)."""
    param: HostParam = request.param
    return _bind(request, azl_session, param)


@pytest.fixture
def azl_host_pair(request: pytest.FixtureRequest, azl_session: AzlSession) -> tuple[Host, Host]:
    """An ordered pair of hosts (client, server) of one target: a ring by default."""
    first, second = request.param
    return _bind(request, azl_session, first), azl_session.host(second)


@pytest.fixture
def azl_hosts(request: pytest.FixtureRequest, azl_session: AzlSession) -> list[Host]:
    """Every host of one target; the test runs once per target (id = target name)."""
    target: SelectedTarget = request.param
    request.node.user_properties.append((PROP_TARGET, target.name))
    params = [p for p in azl_session.params if p.target is target]
    azl_session.prepare(params)  # concurrently; a host that failed raises below
    return [azl_session.host(p) for p in params]


@pytest.fixture
def azl_target(request: pytest.FixtureRequest, azl_session: AzlSession) -> SelectedTarget:
    """The target of the current test (its host's, or the only selected one)."""
    target = item_target(request.node)
    if target is not None:
        return target
    if len(azl_session.selected) == 1:
        return azl_session.selected[0]
    raise pytest.UsageError(
        f"{request.node.nodeid}: several targets selected; use azl_host or azl_hosts"
    )


@pytest.fixture
def azl_image(azl_host: Host) -> ImageFacts:
    """Image facts of the current host."""
    return azl_host.facts


@pytest.fixture
def azl_metric(request: pytest.FixtureRequest) -> MetricRecorder:
    """Record a metric on the test's report: ``azl_metric("throughput_gbps", 9.4, "Gbit/s")``.

    ``samples``: the repetitions behind ``value`` (their median): kept in the report, so
    ``azl report compare`` can test a change for significance; their range is the spread
    unless ``spread`` is given. ``spread=(low, high)``: the range over repeated
    measurements, where the repetitions themselves are not at hand. ``gate``: whether
    compare may call a change a regression (default: yes, except durations).
    ``threshold``: what the value was judged against, as text (``"none"``: measured without
    a threshold, said so in the summary). ``tolerance``:
    the relative change that is noise for this metric here (compare takes the wider of it
    and its own).
    """

    def record(
        name: str, value: float, unit: str = "", better: Literal["higher", "lower"] = "higher",
        *, spread: tuple[float, float] | None = None, gate: bool | None = None,
        threshold: str | None = None, tolerance: float | None = None,
        samples: Sequence[float] | None = None,
    ) -> None:
        if better not in ("higher", "lower"):
            raise ValueError(f"metric {name}: better must be 'higher' or 'lower', got {better!r}")
        props = request.node.user_properties
        props.append((f"{METRIC_PREFIX}{name}", float(value)))
        if unit:
            props.append((f"{METRIC_PREFIX}{name}:unit", unit))
        props.append((f"{METRIC_PREFIX}{name}:better", better))
        if samples:
            props.append((f"{METRIC_PREFIX}{name}:values", format_samples(samples)))
            if spread is None:
                spread = (min(samples), max(samples))
        if spread is not None:
            props.append((f"{METRIC_PREFIX}{name}:low", float(min(spread))))
            props.append((f"{METRIC_PREFIX}{name}:high", float(max(spread))))
        if gate is not None:
            props.append((f"{METRIC_PREFIX}{name}:gate", "true" if gate else "false"))
        if threshold is not None:
            props.append((f"{METRIC_PREFIX}{name}:threshold", threshold))
        if tolerance is not None:
            props.append((f"{METRIC_PREFIX}{name}:tolerance", float(tolerance)))

    return record


@pytest.fixture
def azl_cleanup() -> Iterator[CleanupLedger]:
    """A ledger of undo steps run at teardown (also after a failure or Ctrl-C)."""
    ledger = CleanupLedger()
    yield ledger
    failures = ledger.run()
    if failures:
        raise CleanupFailed("cleanup failed: " + "; ".join(failures))


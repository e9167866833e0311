"""Throughput between host pairs with iperf3: TCP (1 and N streams, both directions) and UDP.

Each test runs ``repetitions`` measurements against one iperf3 server on the peer and
reports the median with every repetition (``azl report compare`` tests them for a
significant change); thresholds come from the target's ``suites.network``. A measurement
judged against no threshold says so in the report (threshold ``none``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_azlinux.analyse.iperf import IperfResult, spread
from pytest_azlinux.errors import MeasurementError
from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.network.iperf import (
    IperfParams,
    PairedRuns,
    measure,
    measure_with_loopback,
)
from pytest_azlinux.network.settings import (
    NetworkSettings,
    loss_threshold,
    loss_verdict,
    throughput_threshold,
    throughput_verdicts,
)

pytestmark = pytest.mark.azl_network
Reference = IperfParams | None  # the loopback run before each repetition, if any

# (attribute, metric, unit): recorded for information; only throughput (and, by the test's own
# limit, UDP loss) decides. Retransmits, jitter and CPU move with the machine's load.
_INFORMATIONAL = (("retransmits", "retransmits", "count"),
                  ("jitter_ms", "jitter_ms", "ms"),
                  ("cpu_client_pct", "cpu_client_pct", "%"),
                  ("cpu_server_pct", "cpu_server_pct", "%"))


def _record(results: list[IperfResult], azl_metric: MetricRecorder,
            settings: NetworkSettings, *, udp: bool = False,
            paired: PairedRuns | None = None) -> None:
    """Every metric with its repetitions (``samples``): compare tests them for a change."""
    values = [r.throughput_gbps for r in results]
    thr = spread(values)
    if udp:
        # A UDP run's throughput is the rate it was sent at, not a capacity: no floor for it.
        azl_metric("throughput_gbps", thr.median, "Gbit/s", "higher", samples=values,
                   gate=False, threshold=f"sent at {settings.udp_rate}bit/s")
    else:
        # With a loopback reference, compare gates the share of it (see NetworkSettings).
        azl_metric("throughput_gbps", thr.median, "Gbit/s", "higher", samples=values,
                   gate=paired is None, threshold=throughput_threshold(settings),
                   tolerance=settings.noise_tolerance if paired is None else None)
    if paired is not None and not udp:
        ratios = paired.ratios()
        loop_values = [r.throughput_gbps for r in paired.reference]
        loop = spread(loop_values)
        if ratios:
            share = spread(ratios)
            azl_metric("throughput_loopback_share", share.median, "ratio", "higher",
                       samples=ratios, gate=True,
                       threshold=f"none (loopback {loop.describe('Gbit/s')})",
                       tolerance=settings.noise_tolerance)
        # The reference itself, for the reader: a share that moved because loopback did.
        azl_metric("loopback_gbps", loop.median, "Gbit/s", "higher", samples=loop_values,
                   gate=False, threshold="none (the reference of the share)")
    for attr, name, unit in _INFORMATIONAL:
        found = [getattr(r, attr) for r in results if getattr(r, attr) is not None]
        if found:
            azl_metric(name, spread(found).median, unit, "lower", samples=found, gate=False)
    losses = [r.lost_percent for r in results if r.lost_percent is not None]
    if losses:
        # Judged by the test against max_udp_loss_pct; compare shows it, does not gate it.
        azl_metric("loss_pct", spread(losses).median, "%", "lower", samples=losses,
                   gate=False, threshold=loss_threshold(settings))


def _check(pair: tuple[Host, Host], what: str, params: IperfParams,
           settings: NetworkSettings, azl_metric: MetricRecorder,
           reference: Reference) -> list[IperfResult]:
    __tracebackhide__ = True
    client, server = pair
    paired = None
    if reference is not None:
        # each repetition right after a loopback run on the client (see the fixture), with
        # as many streams as the test: 4 streams load the machine's cores as 1 does not
        paired = measure_with_loopback(client, server, params,
                                       replace(reference, streams=params.streams),
                                       repetitions=settings.repetitions)
        results = paired.measured
    else:
        results = measure(client, server, params, repetitions=settings.repetitions)
    _record(results, azl_metric, settings, paired=paired)
    measured = spread([r.throughput_gbps for r in results])
    problems = throughput_verdicts(f"{client.name}->{server.name}", what, measured, settings)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return results


def _params(settings: NetworkSettings, **kw: object) -> IperfParams:
    return IperfParams(duration=settings.duration, omit=settings.omit,
                       udp_rate=settings.udp_rate, **kw)  # type: ignore[arg-type]


def test_tcp_single_stream(azl_host_pair: tuple[Host, Host], azl_network_settings: NetworkSettings,
                           azl_metric: MetricRecorder, azl_network_reference: Reference) -> None:
    _check(azl_host_pair, "TCP 1 stream", _params(azl_network_settings), azl_network_settings,
           azl_metric, azl_network_reference)


def test_tcp_parallel_streams(azl_host_pair: tuple[Host, Host],
                              azl_network_settings: NetworkSettings,
                              azl_metric: MetricRecorder, azl_network_reference: Reference) -> None:
    n = azl_network_settings.parallel_streams
    _check(azl_host_pair, f"TCP {n} streams", _params(azl_network_settings, streams=n),
           azl_network_settings, azl_metric, azl_network_reference)


def test_tcp_reverse(azl_host_pair: tuple[Host, Host], azl_network_settings: NetworkSettings,
                     azl_metric: MetricRecorder, azl_network_reference: Reference) -> None:
    _check(azl_host_pair, "TCP reverse", _params(azl_network_settings, reverse=True),
           azl_network_settings, azl_metric, azl_network_reference)


def test_udp(azl_host_pair: tuple[Host, Host], azl_network_settings: NetworkSettings,
             azl_metric: MetricRecorder) -> None:
    """UDP at ``udp_rate``: its loss against ``max_udp_loss_pct`` (1 % unless set)."""
    client, server = azl_host_pair
    results = measure(client, server, _params(azl_network_settings, udp=True),
                      repetitions=azl_network_settings.repetitions)
    _record(results, azl_metric, azl_network_settings, udp=True)
    losses = [r.lost_percent for r in results if r.lost_percent is not None]
    if not losses:
        raise MeasurementError(f"{client.name}->{server.name}: iperf3 reported no UDP loss")
    problem = loss_verdict(f"{client.name}->{server.name}", azl_network_settings.udp_rate,
                           spread(losses), azl_network_settings)
    if problem:
        pytest.fail(problem, pytrace=False)

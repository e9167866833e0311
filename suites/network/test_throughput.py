"""Throughput between host pairs with iperf3: TCP (1 and N streams, both directions) and UDP.

Each test runs ``repetitions`` measurements against one iperf3 server on the peer and
reports the median with its range; thresholds come from the target's ``suites.network``.
"""

from __future__ import annotations

import pytest

from pytest_azlinux.analyse.iperf import IperfResult, spread
from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.network.iperf import IperfParams, measure
from pytest_azlinux.network.settings import NetworkSettings, throughput_verdicts

pytestmark = pytest.mark.azl_network


def _record(results: list[IperfResult], azl_metric: MetricRecorder) -> None:
    azl_metric("throughput_gbps", spread([r.throughput_gbps for r in results]).median,
               "Gbit/s", "higher")
    for attr, name, unit in (("retransmits", "retransmits", "count"),
                             ("jitter_ms", "jitter_ms", "ms"),
                             ("lost_percent", "loss_pct", "%"),
                             ("cpu_client_pct", "cpu_client_pct", "%"),
                             ("cpu_server_pct", "cpu_server_pct", "%")):
        values = [getattr(r, attr) for r in results if getattr(r, attr) is not None]
        if values:
            azl_metric(name, spread(values).median, unit, "lower")


def _check(pair: tuple[Host, Host], what: str, params: IperfParams,
           settings: NetworkSettings, azl_metric: MetricRecorder) -> list[IperfResult]:
    __tracebackhide__ = True
    client, server = pair
    results = measure(client, server, params, repetitions=settings.repetitions)
    _record(results, azl_metric)
    measured = spread([r.throughput_gbps for r in results])
    problems = throughput_verdicts(f"{client.name}->{server.name}", what, measured, settings)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return results


def _params(settings: NetworkSettings, **kw: object) -> IperfParams:
    return IperfParams(duration=settings.duration, omit=settings.omit,
                       udp_rate=settings.udp_rate, **kw)  # type: ignore[arg-type]


def test_tcp_single_stream(azl_host_pair: tuple[Host, Host], network_settings: NetworkSettings,
                           azl_metric: MetricRecorder) -> None:
    _check(azl_host_pair, "TCP 1 stream", _params(network_settings), network_settings,
           azl_metric)


def test_tcp_parallel_streams(azl_host_pair: tuple[Host, Host],
                              network_settings: NetworkSettings,
                              azl_metric: MetricRecorder) -> None:
    n = network_settings.parallel_streams
    _check(azl_host_pair, f"TCP {n} streams", _params(network_settings, streams=n),
           network_settings, azl_metric)


def test_tcp_reverse(azl_host_pair: tuple[Host, Host], network_settings: NetworkSettings,
                     azl_metric: MetricRecorder) -> None:
    _check(azl_host_pair, "TCP reverse", _params(network_settings, reverse=True),
           network_settings, azl_metric)


def test_udp(azl_host_pair: tuple[Host, Host], network_settings: NetworkSettings,
             azl_metric: MetricRecorder) -> None:
    client, server = azl_host_pair
    results = measure(client, server, _params(network_settings, udp=True),
                      repetitions=network_settings.repetitions)
    _record(results, azl_metric)
    limit = network_settings.max_udp_loss_pct
    losses = [r.lost_percent for r in results if r.lost_percent is not None]
    if limit is not None and losses:
        loss = spread(losses)
        if loss.median > limit:
            pytest.fail(f"{client.name}->{server.name}: UDP at {network_settings.udp_rate}bit/s "
                        f"lost {loss.describe('%')}, above {limit:g}% "
                        "(suites.network.max_udp_loss_pct)", pytrace=False)

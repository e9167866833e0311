"""Pod-to-pod iperf3 across nodes, and hostNetwork vs pod network (k8s-netperf style).

Uses the network suite's measurement (``network.iperf.measure``). The pod image must ship
iperf3: ``suites.cluster.iperf_image`` of the target. Where a node declares that it has no
pod network of its own (``cluster/limits.py``; the test bed's nodes do: pod IPs are node
IPs), both paths are measured and not compared.
"""

from __future__ import annotations

import statistics

import pytest

from pytest_azlinux.cluster.limits import POD_NETWORK
from pytest_azlinux.cluster.workloads import ClusterPods, PodEndpoint
from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.network.iperf import IperfParams, measure

pytestmark = [pytest.mark.azl_cluster, pytest.mark.azl_network]


def _pod_end(pods: ClusterPods, node: str, image: str, host_network: bool) -> PodEndpoint:
    pod = pods.run_pod(node, "baseline", role="net" if not host_network else "hnet",
                       host_network=host_network, image=image)
    return PodEndpoint(pods, pod.metadata.name, node, pod.status.pod_ip)


def test_pod_to_pod_throughput(
    azl_host_pair: tuple[Host, Host], azl_cluster: ClusterPods, azl_metric: MetricRecorder,
) -> None:
    settings = azl_cluster.settings
    image = settings.iperf_image or azl_cluster.image
    params = IperfParams(duration=settings.duration, omit=1)
    nodes = [azl_cluster.context.node(h.spec.node or h.name) for h in azl_host_pair]
    gbps: dict[str, float] = {}
    for host_network in (False, True):
        client = _pod_end(azl_cluster, nodes[0].name, image, host_network)
        server = _pod_end(azl_cluster, nodes[1].name, image, host_network)
        runs = measure(client, server, params, repetitions=settings.repetitions)
        key = "host_network" if host_network else "pod_network"
        gbps[key] = statistics.median(r.throughput_gbps for r in runs)
        azl_metric(f"{key}_gbps", round(gbps[key], 3), "Gbit/s")
    one_path = next((why for n in nodes if (why := n.cannot(POD_NETWORK))), None)
    if one_path:
        pytest.skip(f"{one_path} (measured {gbps['pod_network']:.2f} vs "
                    f"{gbps['host_network']:.2f} Gbit/s); no comparison (API-level only)")
    floor = gbps["host_network"] * (1 - settings.pod_network_tolerance)
    assert gbps["pod_network"] >= floor, (
        f"pod network {gbps['pod_network']:.2f} Gbit/s is below host network "
        f"{gbps['host_network']:.2f} Gbit/s minus {settings.pod_network_tolerance:.0%}"
    )

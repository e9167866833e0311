"""Pod-to-pod iperf3 across nodes, and hostNetwork vs pod network (k8s-netperf style).

Uses the network suite's measurement (``network.iperf.measure``). The pod image must ship
iperf3: ``suites.cluster.iperf_image`` of the target. On test-bed nodes pod IPs are node
IPs (no CNI), so both paths are the same path there: measured, not compared.
"""

from __future__ import annotations

import statistics

import pytest

from pytest_azlinux.cluster.fixtures import ClusterPods, PodEndpoint, is_simulated
from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.network.iperf import IperfParams, measure
from pytest_azlinux.session import SelectedTarget

pytestmark = [pytest.mark.azl_cluster, pytest.mark.azl_network]


def _pod_end(pods: ClusterPods, node: str, image: str, host_network: bool) -> PodEndpoint:
    pod = pods.run_pod(node, "baseline", role="net" if not host_network else "hnet",
                       host_network=host_network, image=image)
    return PodEndpoint(pods, pod.metadata.name, node, pod.status.pod_ip)


def test_pod_to_pod_throughput(
    azl_host_pair: tuple[Host, Host], azl_cluster: ClusterPods, azl_target: SelectedTarget,
    azl_metric: MetricRecorder,
) -> None:
    settings = azl_target.settings("cluster")
    image = str(settings.get("iperf_image", azl_cluster.image))
    params = IperfParams(duration=int(settings.get("duration", 3)), omit=1)
    client_node, server_node = (h.spec.node or h.name for h in azl_host_pair)
    gbps: dict[str, float] = {}
    for host_network in (False, True):
        client = _pod_end(azl_cluster, client_node, image, host_network)
        server = _pod_end(azl_cluster, server_node, image, host_network)
        runs = measure(client, server, params, repetitions=int(settings.get("repetitions", 2)))
        key = "host_network" if host_network else "pod_network"
        gbps[key] = statistics.median(r.throughput_gbps for r in runs)
        azl_metric(f"{key}_gbps", round(gbps[key], 3), "Gbit/s")
    simulated = any(is_simulated(azl_cluster.context.nodes[n].labels)
                    for n in (client_node, server_node) if n in azl_cluster.context.nodes)
    if simulated:
        pytest.skip("test-bed nodes: pod IPs are node IPs (no CNI), pod and host network are "
                    f"one path here (measured {gbps['pod_network']:.2f} vs "
                    f"{gbps['host_network']:.2f} Gbit/s); no comparison (API-level only)")
    tolerance = float(settings.get("pod_network_tolerance", 0.10))
    floor = gbps["host_network"] * (1 - tolerance)
    assert gbps["pod_network"] >= floor, (
        f"pod network {gbps['pod_network']:.2f} Gbit/s is below host network "
        f"{gbps['host_network']:.2f} Gbit/s minus {tolerance:.0%}"
    )

"""Real nodes in the cluster test bed: bed-up times, debug-pod round trips, escape probe pods.

Run as root: ``python bench/bench_real_nodes.py [--nodes 2] [--rounds 200]``. Starts a lab
of its own (one namespaced host, named ``rb<pid>``) and a bed of its own, twice:

1. cold: the node kit (the cached disk of kubelet, containerd, CNI plugins, pod images) is
   removed first, so it is packed again (the Go builds stay cached: `.ci/build-testbed.sh`
   reports those separately);
2. warm: everything cached. Both are the whole `up`: API server, kwok pool, VMs booted,
   provisioned, kubelets Ready.

On the warm bed it then measures, through the product's own transport: a command round trip
(`true`) on a real node's debug pod vs on a kwok node's (routed into the lab host), median
and p90 of ``--rounds``; and the escape probe in a pod of each Pod Security profile on a
real node (pod created, probe run, verdict), wall time each. The load average is printed
beside every figure. The lab and the bed are always taken down.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from pytest_azlinux.analyse.escape import PROFILES, probe_script, verdict_for
from pytest_azlinux.cluster.context import ClusterContext
from pytest_azlinux.cluster.settings import ClusterSettings
from pytest_azlinux.cluster.target import resolve_cluster_target
from pytest_azlinux.cluster.workloads import ClusterPods
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.lab.bed import ClusterBed, add_lab_pool, write_targets
from pytest_azlinux.lab.bed.binaries import CACHE
from pytest_azlinux.lab.bed.real_nodes import add_real_nodes
from pytest_azlinux.targets import ClusterTarget, load_targets
from pytest_azlinux.transport.kube import KubeTransport


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def bed_up(lab: Lab, root: Path, nodes: int) -> tuple[ClusterBed, float]:
    state = lab.load_state()
    assert state is not None
    bed = ClusterBed(root)
    t0 = time.monotonic()

    def progress(message: str) -> None:  # the phases: boot, provisioning, Ready
        print(f"  {time.monotonic() - t0:6.1f} s  {message}", flush=True)

    bed.up(timeout=180, listen=state.bridge_address)
    progress("API server, etcd, controller manager, kwok up")
    add_lab_pool(bed, "canary", lab)
    add_real_nodes(bed, lab, nodes, "real", progress=progress)
    return bed, time.monotonic() - t0


def round_trips(target_name: str, target: ClusterTarget, rounds: int) -> list[float]:
    resolved = resolve_cluster_target(target_name, target, start=True)
    assert isinstance(resolved.context, ClusterContext) and resolved.undo is not None
    try:
        spec = resolved.hosts[0]
        host = Host(spec, KubeTransport(spec, resolved.context), 60)
        host.run("true")  # the debug pod and its stream
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            host.run("true")
            times.append(time.perf_counter() - t0)
        host.close()
        return times
    finally:
        resolved.undo()


def escape_per_profile(target: ClusterTarget) -> list[tuple[str, float, str]]:
    resolved = resolve_cluster_target("nodepool-real", target, start=True)
    assert isinstance(resolved.context, ClusterContext) and resolved.undo is not None
    out = []
    try:
        pods = ClusterPods(resolved.context, ClusterSettings())
        node = resolved.hosts[0].node or resolved.hosts[0].name
        for profile in PROFILES:
            t0 = time.monotonic()
            pod = pods.run_pod(node, profile, role="escape")  # type: ignore[arg-type]
            result = pods.exec(pod.metadata.name, ["sh", "-c", probe_script(), "escape"],
                               timeout=300)
            verdict = verdict_for(result.stdout, profile)
            out.append((profile, time.monotonic() - t0,
                        f"{verdict.outcome}: {verdict.summary()}"))
    finally:
        resolved.undo()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    lab = Lab(f"rb{os.getpid()}")
    root = Path("/var/lib/azl-testbed") / f"bench-real-{os.getpid()}"
    lab.up(1, ["azl3"], "1G")
    bed: ClusterBed | None = None
    try:
        for kit in (CACHE / "node").glob("kit-*.img"):
            kit.unlink()
        bed, cold = bed_up(lab, root, args.nodes)
        print(f"cold bed-up ({args.nodes} real nodes, node kit packed): {cold:.1f} s ({load()})")
        bed.down(keep_logs=False)
        bed, warm = bed_up(lab, root, args.nodes)
        print(f"warm bed-up ({args.nodes} real nodes, all cached): {warm:.1f} s ({load()})")
        targets_file = root / "bench-targets.yaml"
        write_targets(bed, targets_file, {"nodepool-real": "real", "nodepool-canary": "canary"},
                      real={"real"})
        targets = load_targets(targets_file)
        for name in ("nodepool-real", "nodepool-canary"):
            target = targets.get(name)
            assert isinstance(target, ClusterTarget)
            times = sorted(round_trips(name, target, args.rounds))
            median = statistics.median(times) * 1000
            p90 = times[int(len(times) * 0.9)] * 1000
            kind = "real node" if name == "nodepool-real" else "kwok node"
            print(f"debug-pod round trip, {kind}: median {median:.1f} ms, p90 {p90:.1f} ms "
                  f"({args.rounds} x `true`, {load()})")
        real = targets.get("nodepool-real")
        assert isinstance(real, ClusterTarget)
        for profile, seconds, outcome in escape_per_profile(real):
            print(f"escape probe pod, {profile}: {seconds:.1f} s, verdict {outcome} ({load()})")
    finally:
        if bed is not None:
            bed.down(keep_logs=False)
        lab.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

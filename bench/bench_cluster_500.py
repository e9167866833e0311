"""A simulated pool of 500 nodes: target resolution and collection of the image suite.

Run as root: ``python bench/bench_cluster_500.py [--nodes 500] [--limit 60]``. Starts a
cluster test bed of its own (real kube-apiserver + etcd, kwok nodes), registers the pool,
then times (1) ``resolve_cluster_target`` and (2) ``pytest --collect-only suites/image
--azl-target nodepool-big`` in a fresh process (which resolves the target again). The bed is
always taken down. Exit status 1 when the collection exceeds the limit.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_azlinux.cluster.target import resolve_cluster_target
from pytest_azlinux.lab.bed import ClusterBed, write_targets
from pytest_azlinux.targets import ClusterTarget, load_targets

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--suite", default=str(ROOT / "suites" / "image"))
    args = parser.parse_args()
    bed = ClusterBed(Path("/var/lib/azl-testbed") / f"bench-{os.getpid()}")
    try:
        start = time.monotonic()
        bed.up(timeout=180)
        up_s = time.monotonic() - start
        start = time.monotonic()
        bed.add_pool("big", args.nodes, prefix="aks-big-16180339-vmss")
        register_s = time.monotonic() - start
        with tempfile.TemporaryDirectory() as tmp:
            targets = write_targets(bed, Path(tmp) / "targets.yaml", {"nodepool-big": "big"})
            target = load_targets(targets).get("nodepool-big")
            assert isinstance(target, ClusterTarget)
            start = time.monotonic()
            resolved = resolve_cluster_target("nodepool-big", target, start=True)
            resolve_s = time.monotonic() - start
            specs = resolved.hosts
            if resolved.undo is not None:
                resolved.undo()
            start = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--rootdir", tmp, "--azl-targets-file", str(targets),
                 "--azl-target", "nodepool-big", args.suite],
                cwd=tmp, capture_output=True, text=True, timeout=600,
            )
            collect_s = time.monotonic() - start
    finally:
        bed.down(keep_logs=False)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    m = re.search(r"(\d+) tests? collected", proc.stdout)
    collected = int(m.group(1)) if m else 0
    print(f"test bed up: {up_s:.1f} s; "
          f"{args.nodes} simulated nodes registered in {register_s:.1f} s")
    print(f"resolve_cluster_target ({len(specs)} nodes): {resolve_s:.2f} s")
    print(f"pytest --collect-only {Path(args.suite).name} on {args.nodes} nodes: "
          f"{collect_s:.2f} s ({collected} items; {tail})")
    ok = proc.returncode == 0 and len(specs) == args.nodes and collect_s <= args.limit
    print("OK" if ok else f"FAILED (limit {args.limit:g} s, exit {proc.returncode})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

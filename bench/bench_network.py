#!/usr/bin/env python3
"""Does the network suite report what iperf3 itself measures? (issue: within 10 %)

On a two-host lab pair, in one run, three rounds of: one direct ``iperf3 -c`` between the
two network namespaces, then one run of the suite's test_tcp_single_stream (its throughput
read back from the per-image JUnit report). Interleaving keeps both sides under the same
machine load. Prints the medians of 3 and their ratio (as root).

    python3 bench/bench_network.py [--duration 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from pytest_azlinux.lab import Lab
from pytest_azlinux.report.junit import read_cases

ROOT = Path(__file__).resolve().parents[1]


def direct(lab: Lab, duration: int, runs: int = 1) -> list[float]:
    client, server = lab.hosts[0], lab.hosts[1]
    srv = subprocess.Popen(["ip", "netns", "exec", server.netns, "iperf3", "-s", "-p", "25999"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = []
        for _ in range(runs):
            subprocess.run(["sleep", "0.5"], check=True)
            res = subprocess.run(
                ["ip", "netns", "exec", client.netns, "iperf3", "-c", server.address, "-p",
                 "25999", "-J", "-t", str(duration), "-O", "1"],
                capture_output=True, text=True, check=True)
            out.append(json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9)
        return out
    finally:
        srv.terminate()
        srv.wait()


def through_suite(lab: Lab, duration: int, work: Path) -> float:
    data = yaml.safe_load(lab.targets_file.read_text())
    data["targets"]["lab"]["suites"] = {"network": {"duration": duration, "omit": 1,
                                                    "repetitions": 1}}
    targets = work / "targets.yaml"
    targets.write_text(yaml.safe_dump(data))
    reports = work / "reports"
    subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "suites" / "network"), "-q",
         "-p", "no:cacheprovider", "--azl-target=lab", f"--azl-targets-file={targets}",
         f"--azl-junit-dir={reports}", "-k", "single_stream"],
        check=True, cwd=work, stdout=subprocess.DEVNULL)
    for path in sorted(reports.glob("*.xml")):
        for case in read_cases(path)[1]:
            if case.name.startswith(f"test_tcp_single_stream[{lab.hosts[0].name}->"):
                return next(m.value for m in case.metrics if m.name == "throughput_gbps")
    raise SystemExit("the suite reported no throughput for the pair")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    lab = Lab("benchnet")
    lab.down()
    try:
        lab.up(2, ["azl3", "azl3"])
        direct_runs: list[float] = []
        suite_runs: list[float] = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(3):
                direct_runs += direct(lab, args.duration)
                suite_runs.append(through_suite(lab, args.duration, Path(tmp)))
    finally:
        lab.down()
    direct_median, suite_median = statistics.median(direct_runs), statistics.median(suite_runs)
    ratio = suite_median / direct_median
    print(f"direct iperf3 runs (Gbit/s): {', '.join(f'{v:.2f}' for v in direct_runs)}")
    print(f"suite runs (Gbit/s):         {', '.join(f'{v:.2f}' for v in suite_runs)}")
    print(f"medians: direct {direct_median:.2f}, suite {suite_median:.2f} Gbit/s")
    verdict = "within" if abs(ratio - 1) <= 0.10 else "OUTSIDE"
    print(f"ratio suite/direct: {ratio:.3f} -> {verdict} 10 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does ``azl report compare`` cry wolf? Five unchanged lab runs compared pairwise, then a
degraded link.

Run as root from the repository: ``python bench/bench_compare_noise.py [--runs 5]
[--name cmpnoise] [--rate 0.7]``. Brings up a lab (kept for all runs, taken down at the
end), runs the suites as a user does (``pytest --azl-target=lab``) ``--runs`` times, each
into its own report directory, and compares every earlier run with every later one
(``azl report compare``: 10 pairs for 5 runs). Then limits one host's link (``azl lab fault
--rate``) to ``--rate`` of the throughput the unchanged runs measured through it, runs once
more and compares each unchanged run with that one. Prints, per pair, the regressions
``compare`` reported, the wall time of each run and the load average; exit status 1 when an
unchanged pair shows a regression or a degraded pair does not.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_azlinux.lab import Lab
from pytest_azlinux.report.compare import (
    compare_runs,
    format_band,
    format_change,
    format_value,
    load_tolerances,
)
from pytest_azlinux.report.junit import read_cases

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_suites(name: str, reports: Path) -> float:
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--azl-target=lab", "--azl-junit-dir", str(reports),
         "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env={**os.environ, "AZL_LAB_NAME": name}, stdout=subprocess.DEVNULL,
        check=False,
    )
    return time.monotonic() - start


def regressions(base: Path, current: Path) -> list[str]:
    """What ``azl report compare base current`` counts as regressions, one line each."""
    result = compare_runs(base, current, load_tolerances(None))
    found = []
    for image in result.images:
        found += [f"{image.image}: {r.test} {r.metric} {format_value(r.base, r.unit)} -> "
                  f"{format_value(r.current, r.unit)} ({format_change(r)}, band "
                  f"{format_band(r)})" for r in image.metric_regressions]
        found += [f"{image.image}: new failure {c.test}" for c in image.new_failures]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--name", default="cmpnoise")
    parser.add_argument("--rate", type=float, default=0.7,
                        help="the degraded link's share of the measured throughput")
    args = parser.parse_args()
    lab = Lab(args.name)
    lab.down()
    lab.up(3)
    work = Path(tempfile.mkdtemp(prefix="azl-cmpnoise-"))
    failed = False
    try:
        runs = []
        for i in range(args.runs):
            reports = work / f"run{i + 1}"
            took = run_suites(args.name, reports)
            runs.append(reports)
            print(f"run {i + 1}: {took:.1f} s (load {load()})", flush=True)
        print("unchanged runs, pairwise:")
        for a, b in itertools.combinations(range(args.runs), 2):
            found = regressions(runs[a], runs[b])
            failed |= bool(found)
            print(f"  run {a + 1} -> run {b + 1}: {len(found)} regression(s)"
                  + "".join(f"\n      {line}" for line in found), flush=True)

        host = lab.load_state().hosts[0].name  # type: ignore[union-attr]
        gbps = _throughput_through(runs[-1], host)
        mbit = max(1, int(gbps * 1000 * args.rate))
        subprocess.run([sys.executable, "-m", "pytest_azlinux.cli", "lab", "fault", "--name",
                        args.name, "--rate", str(mbit), host], check=True)
        degraded = work / "degraded"
        took = run_suites(args.name, degraded)
        print(f"degraded ({host} limited to {mbit} Mbit/s, ~{args.rate:.0%} of "
              f"{gbps:.2f} Gbit/s): {took:.1f} s (load {load()})")
        for i, base in enumerate(runs):
            found = [r for r in regressions(base, degraded) if " throughput" in r]
            failed |= not found
            print(f"  run {i + 1} -> degraded: {len(found)} throughput regression(s)"
                  + "".join(f"\n      {line}" for line in found), flush=True)
    finally:
        lab.down()
    print(f"load average at the end: {load()}")
    return 1 if failed else 0


def _throughput_through(reports: Path, host: str) -> float:
    """The median TCP throughput (Gbit/s) of the single-stream pairs through ``host``."""
    values = []
    for xml in reports.glob("*.xml"):
        for case in read_cases(xml)[1]:
            if host not in case.name or "test_tcp_single_stream" not in case.name:
                continue
            values += [m.value for m in case.metrics if m.name == "throughput_gbps"]
    if not values:
        raise SystemExit(f"no throughput_gbps metric through {host} in {reports}")
    return statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())

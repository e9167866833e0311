"""Does ``azl report compare`` cry wolf on a busy machine, and does it see a real cut?

Run as root from the repository: ``python bench/bench_compare_noise.py [--runs 10]
[--name cmpnoise] [--rate 0.7] [--neighbour] [--out DIR]``. Brings up a 3-host lab (kept for
all runs, taken down at the end), runs the suites as a user does (``pytest
--azl-target=lab``) ``--runs`` times, each into its own report directory under ``--out``,
and compares every earlier run with every later one (``azl report compare``: 45 pairs for
10 runs). Then limits one host's link (``azl lab fault --rate``) to ``--rate`` of the
single-stream throughput the unchanged runs measured through it, runs once more and
compares each unchanged run with that one; last, the history rule: each unchanged run
against the other runs as its history, and the degraded run against all unchanged runs.

``--neighbour`` keeps a second lab running the same suites in a loop the whole time (a
machine shared with another lab). ``--compare-only DIR`` compares the runs kept in DIR
again (after a change to compare) without measuring anything.

Prints per pair the regressions compare reported (and its inconclusive metrics), the wall
time of each run and the load average; exit status 1 when an unchanged pair shows a
regression or a degraded pair does not.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_azlinux.report.junit import read_cases

if TYPE_CHECKING:
    from pytest_azlinux.report.compare import Comparison

ROOT = Path(__file__).resolve().parents[1]
DEGRADED = "degraded"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_suites(name: str, reports: Path, *, quiet: bool = True) -> float:
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--azl-target=lab", "--azl-junit-dir", str(reports),
         "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env={**os.environ, "AZL_LAB_NAME": name},
        stdout=subprocess.DEVNULL if quiet else None, check=False,
    )
    return time.monotonic() - start


@contextlib.contextmanager
def neighbour(name: str, enabled: bool) -> Iterator[None]:
    """A second lab running the suites in a loop while the body runs."""
    if not enabled:
        yield
        return
    from pytest_azlinux.lab import Lab

    lab = Lab(name)
    lab.down()
    lab.up(3)
    script = (f"while :; do {sys.executable} -m pytest --azl-target=lab -q -p no:cacheprovider "
              f"--azl-junit-dir /tmp/{name}-reports >/dev/null 2>&1; done")
    proc = subprocess.Popen(["sh", "-c", script], cwd=ROOT, start_new_session=True,
                            env={**os.environ, "AZL_LAB_NAME": name})
    try:
        yield
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
        lab.down()


def findings(result: Comparison) -> tuple[list[str], list[str], list[str]]:
    """(metric regressions, inconclusive gated metrics, new failures) of one compare."""
    # imported here: the measuring phase runs long before, from a frozen copy of the tree
    from pytest_azlinux.report.compare_render import describe_change

    regressions, inconclusive, failures = [], [], []
    for image in result.images:
        regressions += [f"{image.image}: {describe_change(r)}" for r in image.metric_regressions]
        inconclusive += [f"{image.image}: {describe_change(r)}"
                         for r in image.metric_inconclusive if r.gated]
        failures += [f"{image.image}: new {c.current} {c.test}: {c.message[:160]}"
                     for c in image.new_failures]
    return regressions, inconclusive, failures


def compare(bases: Sequence[Path], current: Path) -> tuple[list[str], list[str], list[str]]:
    from pytest_azlinux.report.compare import compare_runs, load_tolerances

    return findings(compare_runs(list(bases), current, load_tolerances(None)))


def throughput_through(reports: Path, host: str) -> float:
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


def measure(args: argparse.Namespace, out: Path) -> None:
    from pytest_azlinux.lab import Lab

    lab = Lab(args.name)
    lab.down()
    lab.up(3)
    try:
        with neighbour(f"{args.name}-nb", args.neighbour):
            for i in range(args.runs):
                took = run_suites(args.name, out / f"run{i + 1:02d}")
                print(f"run {i + 1}: {took:.1f} s (load {load()})", flush=True)
            host = lab.load_state().hosts[0].name  # type: ignore[union-attr]
            gbps = throughput_through(out / f"run{args.runs:02d}", host)
            mbit = max(1, int(gbps * 1000 * args.rate))
            subprocess.run([sys.executable, "-m", "pytest_azlinux.cli", "lab", "fault",
                            "--name", args.name, "--rate", str(mbit), host], check=True)
            took = run_suites(args.name, out / DEGRADED)
            (out / "fault.txt").write_text(f"{host} limited to {mbit} Mbit/s, ~{args.rate:.0%} "
                                           f"of {gbps:.2f} Gbit/s\n")
            print(f"degraded ({host} limited to {mbit} Mbit/s, ~{args.rate:.0%} of "
                  f"{gbps:.2f} Gbit/s): {took:.1f} s (load {load()})", flush=True)
    finally:
        lab.down()


def _lines(found: list[str]) -> str:
    return "".join(f"\n      {line}" for line in found)


def report(out: Path) -> bool:
    """Compare what ``out`` holds; True when compare cried wolf or missed the cut.

    New failures (an ERROR in one run: a lost connection, a timeout) are listed apart: they
    are the outcome gate, not the metric judgement this bench measures.
    """
    runs = sorted(p for p in out.glob("run*") if p.is_dir())
    degraded = out / DEGRADED
    failed = False
    wolves = inconclusive = errors = 0
    print(f"unchanged runs, pairwise ({len(runs)} runs):")
    for a, b in itertools.combinations(runs, 2):
        found, unsure, new = compare([a], b)
        failed |= bool(found)
        wolves += len(found)
        inconclusive += len(unsure)
        errors += len(new)
        print(f"  {a.name} -> {b.name}: {len(found)} metric regression(s), {len(unsure)} "
              f"inconclusive, {len(new)} new failure(s)" + _lines(found + new), flush=True)
    pairs = len(runs) * (len(runs) - 1) // 2
    print(f"  => {wolves} metric regression(s) over {pairs} pairs; {inconclusive} gated "
          f"metric(s) inconclusive; {errors} new failure(s)")
    if degraded.is_dir():
        print(f"degraded run: {(out / 'fault.txt').read_text().strip()}")
        flagged = Counter[str]()
        for base in runs:
            found, _, new = compare([base], degraded)
            cut = [line for line in found if "throughput" in line]
            failed |= not cut
            flagged.update(line.split(": ", 1)[1].split(" ")[0] for line in cut)
            print(f"  {base.name} -> degraded: {len(cut)} throughput regression(s), "
                  f"{len(new)} new failure(s)" + _lines(cut), flush=True)
        print("  tests flagged, in how many of the pairs:")
        for test, count in sorted(flagged.items()):
            print(f"      {count}/{len(runs)} {test}")
    if len(runs) >= 3:
        print("history: each unchanged run against all the others as its history")
        for current in runs:
            found, unsure, new = compare([r for r in runs if r != current], current)
            failed |= bool(found)
            print(f"  {current.name}: {len(found)} metric regression(s), {len(unsure)} "
                  f"inconclusive" + _lines(found), flush=True)
        if degraded.is_dir():
            found, _, _ = compare(runs, degraded)
            cut = [line for line in found if "throughput" in line]
            failed |= not cut
            print(f"  degraded against all {len(runs)}: {len(cut)} throughput regression(s)"
                  + _lines(cut), flush=True)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--name", default="cmpnoise")
    parser.add_argument("--rate", type=float, default=0.7,
                        help="the degraded link's share of the measured throughput")
    parser.add_argument("--neighbour", action="store_true",
                        help="a second lab runs the suites in a loop meanwhile")
    parser.add_argument("--out", type=Path, help="where the runs' reports are kept")
    parser.add_argument("--compare-only", type=Path, metavar="DIR",
                        help="compare the runs kept in DIR again, measure nothing")
    args = parser.parse_args()
    if args.compare_only:
        out = args.compare_only
    else:
        out = args.out or Path(f"/tmp/azl-cmpnoise-{time.strftime('%Y%m%dT%H%M%S')}")
        out.mkdir(parents=True, exist_ok=True)
        print(f"reports kept in {out}", flush=True)
        measure(args, out)
    failed = report(out)
    print(f"load average at the end: {load()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

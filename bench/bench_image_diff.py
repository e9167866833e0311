#!/usr/bin/env python3
"""``azl report diff`` on two full images, the whole command as a user runs it (goal: < 1 s).

Two cases, each timed as a subprocess (interpreter start, imports, reading both sides, the
diff, printing), best of --runs:
  - recorded: two real consecutive AKS node images (AgentBaker release notes of
    AKSAzureLinuxV3/gen2 202608.14.0 and 202608.20.0, ~395 packages each);
  - runs: two run report directories with ``*.image.json`` holding a full package list of
    this machine as dpkg lists it (~800 packages, real names and versions); the second run's
    list has every 10th package's release bumped, every 50th removed and 10 added (a change
    set made up here: real lists of two images this size are not at hand).
The machine's load average (os.getloadavg) is printed beside each figure.

    PYTHONPATH=. python3 bench/bench_image_diff.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_azlinux.report.image_file import host_entry, write_image_file

GOAL_S = 1.0
GEN2 = Path(__file__).parents[1] / "tests" / "data" / "agentbaker" / "AKSAzureLinuxV3" / "gen2"


def dpkg_packages() -> dict[str, list[tuple[str, str]]]:
    text = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"],
        capture_output=True, text=True, check=True).stdout
    out: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        name, version, arch, status = line.split("\t")
        if status[1:2] == "i":
            out.setdefault(name, []).append((version, arch))
    return out


def write_runs(root: Path) -> tuple[Path, Path, int, int]:
    base = dpkg_packages()
    changed: dict[str, list[tuple[str, str]]] = {}
    for i, (name, versions) in enumerate(sorted(base.items())):
        if i % 50 == 7:
            continue  # removed
        changed[name] = [(f"{v}.1", a) for v, a in versions] if i % 10 == 3 else versions
    for i in range(10):
        changed[f"bench-added-{i}"] = [(f"1.{i}-1", "amd64")]
    osr = {"ID": "debian", "VERSION_ID": "12"}
    dirs = []
    for name, packages in (("old", base), ("new", changed)):
        run = root / name
        run.mkdir()
        entry = host_entry(osr, os.uname().release, os.uname().machine, None, packages, "dpkg")
        write_image_file(run / "img.image.json", "img", {"host-1": entry}, "bench", "t")
        dirs.append(run)
    return dirs[0], dirs[1], sum(map(len, base.values())), sum(map(len, changed.values()))


def command(old: Path, new: Path) -> list[str]:
    return [sys.executable, "-m", "pytest_azlinux.cli", "report", "diff", str(old), str(new)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best(runs: int, argv: list[str]) -> tuple[float, float, str]:
    """(wall, CPU) seconds of the fastest run, and its output: the CPU time of the command
    says what a busy machine's wall time hides."""
    times, out = [], ""
    for _ in range(runs):
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        times.append((time.perf_counter() - start, _children_cpu() - cpu))
        if done.returncode != 0:
            raise SystemExit(f"azl report diff failed ({done.returncode}): {done.stderr}")
        out = done.stdout
    wall, cpu = min(times)
    return wall, cpu, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="azl-bench-diff-") as tmp:
        old, new, n_old, n_new = write_runs(Path(tmp))
        cases = [
            ("recorded: gen2 202608.14.0 -> 202608.20.0 (395 / 394 packages)",
             command(GEN2 / "202608.14.0.txt", GEN2 / "202608.20.0.txt")),
            (f"runs: image.json of {n_old} / {n_new} packages (dpkg list of this machine)",
             command(old, new)),
        ]
        wall, cpu, _ = best(args.runs, [sys.executable, "-c", "pass"])
        print(f"python start alone: {wall:.3f} s wall, {cpu:.3f} s CPU  "
              f"load {os.getloadavg()[0]:.2f}")
        for label, argv in cases:
            seconds, cpu, out = best(args.runs, argv)
            changes = sum(1 for line in out.splitlines() if line.startswith("  ")
                          and not line.startswith("     "))
            verdict = "ok" if seconds < GOAL_S else f"over the {GOAL_S:g} s goal"
            ok &= seconds < GOAL_S
            print(f"{label}: {seconds:.3f} s wall, {cpu:.3f} s CPU (best of {args.runs}), "
                  f"{changes} package changes listed  load {os.getloadavg()[0]:.2f}  ({verdict})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

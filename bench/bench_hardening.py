"""The whole hardening suite on one warm SSH host, through pytest (the issue's bar: under 5 s).

Runs ``pytest suites/hardening --azl-hardening-level 2`` (every control) against one lab host
over SSH, as a user would, several times after a warm-up run, and prints the median session
time pytest reports and the median wall time of the command (interpreter start, collection,
connection, the one gathering command, every test, the per-image report), with the load
average beside them. Also times the gathering command alone over the same connection.

Run as root: ``python bench/bench_hardening.py [--runs 5] [--lab NAME]``. Without ``--lab``
a one-host lab is brought up for the bench and always taken down.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_azlinux.hardening import gather_script, load_controls
from pytest_azlinux.hardening.baseline import plan_for
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.session import make_transport
from pytest_azlinux.targets import SshTarget, load_targets, ssh_host_specs

ROOT = Path(__file__).resolve().parents[1]
SESSION = re.compile(r" in ([0-9.]+)s")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def run_suite(targets: Path, reports: Path) -> tuple[float, float, str]:
    """(wall s, session s, summary line) of one pytest run of the whole suite."""
    cmd = [
        sys.executable, "-m", "pytest", str(ROOT / "suites" / "hardening"),
        "--azl-target", "lab", "--azl-targets-file", str(targets), "--azl-hardening-level",
        "2", "--azl-junit-dir", str(reports), "-p", "no:cacheprovider", "-q",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    found = SESSION.search(last)
    if found is None or done.returncode not in (0, 1):
        raise SystemExit(f"bench_hardening: pytest failed (rc {done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, float(found.group(1)), last.strip("= ")


def time_gather(targets: Path, count: int) -> list[float]:
    target = load_targets(targets).get("lab")
    assert isinstance(target, SshTarget)
    spec = ssh_host_specs(target, "lab")[0]
    host = Host(spec, make_transport(spec))
    host.transport.connect()
    try:
        script = gather_script(plan_for(load_controls()))
        host.run(script, sudo=True)  # warm: sudo shell open, file system caches
        return [host.run(script, sudo=True).duration for _ in range(count)]
    finally:
        host.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", help="use this running lab (its first host) instead of a new one")
    parser.add_argument("--limit", type=float, default=5.0, help="seconds allowed (median)")
    args = parser.parse_args()
    lab = Lab(args.lab or f"bh{os.getpid()}")
    started = args.lab is None
    try:
        if started:
            lab.down()
            lab.up(1, ["azl3"])
        elif lab.load_state() is None:
            print(f"bench_hardening: lab {args.lab} is not up", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="azl-bench-hardening-") as tmp:
            reports = Path(tmp)
            run_suite(lab.targets_file, reports)  # warm-up: caches, host keys, pyc files
            before = load()
            runs = [run_suite(lab.targets_file, reports) for _ in range(args.runs)]
            gathers = time_gather(lab.targets_file, args.runs)
            after = load()
    finally:
        if started:
            lab.down()
    walls = [r[0] for r in runs]
    sessions = [r[1] for r in runs]
    print(f"controls: {len(load_controls())} (level 2: every control), 1 host over SSH")
    print(f"last run: {runs[-1][2]}")
    print(f"pytest session (median of {len(runs)}): {statistics.median(sessions):.2f} s "
          f"(min {min(sessions):.2f}, max {max(sessions):.2f})")
    print(f"command wall time incl. interpreter start (median): {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"the one gathering command alone (median): {statistics.median(gathers):.2f} s")
    print(f"before: {before}")
    print(f"after:  {after}")
    ok = statistics.median(sessions) < args.limit
    print("PASS" if ok else f"FAIL (limit {args.limit:g} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

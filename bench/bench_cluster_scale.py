"""The image suite, run in full, on simulated node pools of 100, 500 and 1000 nodes.

Run as root: ``python bench/bench_cluster_scale.py [--nodes 100 500 1000] [-n 2]
[--lab-hosts 4] [--shards 4]``. Starts a lab of its own (``--lab-hosts`` namespaced hosts,
named ``sc<pid>``) and a cluster test bed of its own (real kube-apiserver + etcd + kwok);
each size is a pool of that many simulated nodes bound to the lab hosts in turn, so every
node's exec goes the real way (API server -> kwok -> a shell in a lab host). For each size it
runs ``pytest suites/image --azl-target <pool>`` in a fresh process and prints:
wall time, tests, s/test, the report writing (``ReportCollector.write``), pytest's terminal
summary (failure summary included), host preparation and cleanup, the pytest process's peak
RSS, and whether every collected test is in the per-image reports, with the load average.

``--shards 4`` then runs the largest pool as 4 ``--azl-shard i/4`` runs, merges their reports
with ``azl report merge`` and checks the merged cases equal the single run's.

``--progress both`` runs the largest pool twice: with ``-q`` (no progress output, as the other
runs) and without (progress lines in the captured, non-terminal log), and prints both
runs' figures and the progress lines of the second (issue 30: progress costs nothing
measurable).

Goals (issue 15): 1000 nodes within 5 minutes, reports written within 3 s, RSS under 1 GiB.
Exit status 1 when a goal or a check fails. The lab and the bed are always taken down.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_azlinux.lab import Lab
from pytest_azlinux.lab.bed import ClusterBed, add_lab_pool, write_targets

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("azl3", "azl3-hwe", "mariner2")
GOAL_WALL_1000 = 300.0
GOAL_REPORT = 3.0
GOAL_RSS_MIB = 1024.0


@dataclass
class RunFigures:
    nodes: int
    wall: float
    rc: int
    rss_mib: float
    timing: dict[str, float]
    cases: dict[str, str]  # nodeid (classname::name) -> outcome, from the reports
    load: str
    tail: str
    cpu_s: float = 0.0  # the pytest process's user+system CPU (with its reaped children)
    components: dict[str, float] | None = None  # CPU s of each bed component during the run

    @property
    def expected(self) -> int:
        return int(self.timing.get("expected_cases", 0))


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


CLK_TCK = os.sysconf("SC_CLK_TCK")


def session_cpu(sessions: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user+system, with reaped children) of every process in each component's
    session, from /proc: kube-apiserver, etcd, kwok (and the exec shells it starts)."""
    out = dict.fromkeys(sessions, 0.0)
    by_sid = {sid: name for name, sid in sessions.items()}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = by_sid.get(int(fields[3]))  # field 6 (session), counted after the comm
        if name is not None:
            out[name] += sum(int(x) for x in fields[11:15]) / CLK_TCK
    return out


def report_cases(directory: Path) -> dict[str, str]:
    """(classname::name) -> outcome of every testcase of the per-image reports."""
    cases: dict[str, str] = {}
    for file in sorted(directory.glob("*.xml")):
        for _, elem in ET.iterparse(file):
            if elem.tag == "testcase":
                outcome = "passed"
                for child in elem:
                    if child.tag in ("failure", "error", "skipped"):
                        outcome = child.tag
                key = f"{elem.get('classname')}::{elem.get('name')}"
                if key in cases:
                    raise SystemExit(f"{file}: testcase {key} appears twice")
                cases[key] = outcome
                elem.clear()
    return cases


def run_pytest(
    nodes: int, targets: Path, target: str, work: Path, args: argparse.Namespace,
    shard: str | None = None, progress: bool = False, bed: ClusterBed | None = None,
) -> RunFigures:
    reports = work / "reports"
    timing_file = work / "timing.json"
    profile = (["-m", "cProfile", "-o", f"{args.profile}.{nodes}"] if args.profile else [])
    quiet = [] if progress else ["-q"]  # -q: no progress lines
    argv = [sys.executable, *profile, "-m", "pytest", *quiet, "-p", "no:cacheprovider",
            "-p", "scale_timing", f"--tb={args.tb}",
            "--rootdir", str(work), "--azl-targets-file", str(targets),
            "--azl-target", target, f"--azl-junit-dir={reports}", str(ROOT / "suites" / "image")]
    argv += ["-n", str(args.workers)] if args.workers else ["-p", "no:xdist"]
    if shard:
        argv.append(f"--azl-shard={shard}")
    env = dict(os.environ, AZL_BENCH_TIMING=str(timing_file),
               PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), str(ROOT),
                                           os.environ.get("PYTHONPATH", "")]))
    log = work / "pytest.log"
    sessions = dict(bed.state().pids) if bed else {}
    before = session_cpu(sessions)
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    time.sleep(1.0)  # the exec shells of the run end and are reaped by kwok
    after = session_cpu(sessions)
    components = {k: after[k] - before[k] for k in sessions}
    text = log.read_text(errors="replace").strip().splitlines()
    tail = text[-1] if text else ""
    if proc.returncode not in (0, 1):
        tail = "\n".join(text[-30:])
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    return RunFigures(nodes, wall, proc.returncode, usage.ru_maxrss / 1024, timing,
                      report_cases(reports) if reports.exists() else {}, load(), tail,
                      usage.ru_utime + usage.ru_stime, components)


def show(label: str, f: RunFigures) -> bool:
    t = f.timing
    tests = f.expected
    complete = tests > 0 and len(f.cases) == tests
    print(f"{label}: wall {f.wall:.1f} s, {tests} tests, "
          f"{f.wall / max(tests, 1) * 1000:.1f} ms/test; "
          f"report write {t.get('report_write_s', -1):.2f} s, "
          f"terminal summary {t.get('terminal_summary_s', -1):.2f} s, "
          f"prepare {t.get('prepare_s', -1):.1f} s, "
          f"tests {t.get('last_test_at', 0) - t.get('first_test_at', 0):.1f} s, "
          f"cleanup {t.get('close_s', -1):.1f} s; peak RSS {f.rss_mib:.0f} MiB; "
          f"reports {len(f.cases)}/{tests} cases{'' if complete else ' (INCOMPLETE)'}; "
          f"load {f.load}")
    print(f"    pytest exit {f.rc}: {f.tail}")
    others = ", ".join(f"{k} {v:.1f} s" for k, v in sorted((f.components or {}).items()))
    print(f"    CPU: pytest {f.cpu_s:.1f} s ({f.cpu_s / f.nodes * 1000:.0f} ms/node, "
          f"wall {f.wall / f.nodes * 1000:.0f} ms/node); bed: {others}")
    print(f"    phases: {json.dumps({k: round(v, 2) for k, v in t.items()})}")
    ok = complete and f.rc in (0, 1)
    ok &= t.get("report_write_s", 99) <= GOAL_REPORT and f.rss_mib <= GOAL_RSS_MIB
    if f.nodes >= 1000:
        ok &= f.wall <= GOAL_WALL_1000
    return ok


def shards(
    bed_targets: Path, target: str, nodes: int, whole: RunFigures, count: int,
    args: argparse.Namespace, tmp: Path,
) -> bool:
    dirs = []
    for i in range(1, count + 1):
        work = tmp / f"shard{i}"
        work.mkdir()
        f = run_pytest(nodes, bed_targets, target, work, args, shard=f"{i}/{count}")
        show(f"  shard {i}/{count}", f)
        dirs.append(work / "reports")
    merged = tmp / "merged"
    merged.mkdir()
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest_azlinux.cli", "report", "merge",
                           str(merged), *map(str, dirs)],
                          capture_output=True, text=True)
    merge_s = time.monotonic() - start
    cases = report_cases(merged)
    same = cases == whole.cases
    print(f"  azl report merge of {count} shards: {merge_s:.2f} s, exit {proc.returncode}, "
          f"{len(cases)} cases; same cases and outcomes as one run: {same} (load {load()})")
    if proc.returncode:
        print(f"    {proc.stderr.strip()[-500:]}")
    if not same:
        only = sorted(set(cases) ^ set(whole.cases))[:5]
        diff = [k for k in cases if k in whole.cases and cases[k] != whole.cases[k]][:5]
        print(f"    differing: {only} outcomes: {diff}")
    return same and proc.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("-n", "--workers", type=int, default=0, help="xdist workers (0: none)")
    parser.add_argument("--lab-hosts", type=int, default=4,
                        help="lab hosts behind the simulated nodes (nodes share them in turn)")
    parser.add_argument("--tb", default="line",
                        help="pytest --tb for the runs (line: one line per failure, as at "
                        "pool scale; other styles cost pytest's terminal summary "
                        "O(failures x tests))")
    parser.add_argument("--api-qps", type=float,
                        help="suites.cluster.api_qps of the target (default: the plugin's)")
    parser.add_argument("--api-burst", type=int, default=100)
    parser.add_argument("--profile", type=Path,
                        help="run pytest under cProfile, writing the stats here "
                        "(.<nodes> appended)")
    parser.add_argument("--progress", choices=("off", "both"), default="off",
                        help="both: run the largest pool again without -q (progress lines)")
    parser.add_argument("--keep-reports", type=Path,
                        help="copy each size's reports to DIR/<nodes> (for bench_reports --real)")
    parser.add_argument("--shards", type=int, default=0,
                        help="also run the largest pool as this many shards and merge")
    args = parser.parse_args()
    name = f"sc{os.getpid()}"
    lab = Lab(name)
    bed = ClusterBed(Path("/var/lib/azl-testbed") / f"scale-{os.getpid()}")
    ok = True
    try:
        start = time.monotonic()
        lab.up(args.lab_hosts, VARIANTS)
        bed.up(timeout=300)
        print(f"lab {name} ({args.lab_hosts} hosts) and test bed up in "
              f"{time.monotonic() - start:.1f} s (load {load()})")
        for nodes in args.nodes:
            pool = f"s{nodes}"
            with tempfile.TemporaryDirectory(prefix="azl-scale-") as tmp_name:
                tmp = Path(tmp_name)
                start = time.monotonic()
                add_lab_pool(bed, pool, lab, nodes=nodes)
                register_s = time.monotonic() - start
                target = f"nodepool-{pool}"
                targets = write_targets(bed, tmp / "targets.yaml", {target: pool})
                if args.api_qps is not None:
                    data = yaml.safe_load(targets.read_text())
                    data["targets"][target]["suites"] = {"cluster": {
                        "api_qps": args.api_qps, "api_burst": args.api_burst}}
                    targets.write_text(yaml.safe_dump(data))
                work = tmp / "whole"
                work.mkdir()
                print(f"{nodes} nodes registered in {register_s:.1f} s")
                figures = run_pytest(nodes, targets, target, work, args, bed=bed)
                ok &= show(f"{nodes:5} nodes", figures)
                if args.keep_reports:
                    shutil.copytree(work / "reports", args.keep_reports / str(nodes),
                                    dirs_exist_ok=True)
                if args.progress == "both" and nodes == max(args.nodes):
                    work = tmp / "progress"
                    work.mkdir()
                    shown = run_pytest(nodes, targets, target, work, args, progress=True,
                                       bed=bed)
                    ok &= show(f"{nodes:5} nodes, progress shown", shown)
                    lines = [ln for ln in (work / "pytest.log").read_text().splitlines()
                             if ln.startswith("azl: ")]
                    print(f"    {len(lines)} progress lines in the log:")
                    print("\n".join(f"      {ln}" for ln in lines))
                if args.shards and nodes == max(args.nodes):
                    ok &= shards(targets, target, nodes, figures, args.shards, args, tmp)
                bed.remove_pool(pool)
    finally:
        bed.down(keep_logs=False)
        lab.down()
    print("OK" if ok else "FAILED (a goal or a check; see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

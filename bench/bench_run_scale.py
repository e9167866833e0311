"""Whole-run cost per test: N trivial tests on the local target, end to end.

Run: ``python bench/bench_run_scale.py [--counts 1000 8000]``. Each count is a fresh
``pytest --azl-target=local`` run of N trivial tests using ``azl_host`` (collection,
running, per-image report, terminal summary), timed as a whole. Linear growth means the
time ratio between the largest and smallest count is close to their count ratio; the script
prints both and exits 1 when the time ratio exceeds twice the count ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(count: int) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_many.py").write_text(
            "import pytest\n\n"
            f"@pytest.mark.parametrize('i', range({count}))\n"
            "def test_trivial(azl_host, i):\n    assert i >= 0\n"
        )
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
             "--azl-target=local", "--azl-junit-dir=reports", "test_many.py"],
            cwd=tmp, capture_output=True, text=True, timeout=3600,
        )
        elapsed = time.monotonic() - start
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
        if proc.returncode != 0:
            raise SystemExit(f"{count} tests: pytest exited {proc.returncode}: {tail}")
        return elapsed, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 8000])
    args = parser.parse_args()
    times = {}
    for count in args.counts:
        elapsed, tail = one_run(count)
        times[count] = elapsed
        load = os.getloadavg()[0]
        print(f"{count:6} tests: {elapsed:7.2f} s ({elapsed / count * 1000:.2f} ms/test; "
              f"load {load:.2f}) {tail}")
    low, high = min(times), max(times)
    ratio = times[high] / times[low]
    print(f"time ratio {high}/{low}: {ratio:.1f} (count ratio {high / low:.0f})")
    return 0 if ratio <= 2 * high / low else 1


if __name__ == "__main__":
    sys.exit(main())

"""CI shards of a node pool: ``--azl-shard i/4`` runs merged by ``azl report merge`` hold the
same cases, with the same outcomes, as one run over the whole pool.

A pool of 40 simulated nodes bound in turn to the session lab's hosts (tests/fixtures/
cluster.py), the image suite run through the real exec path: once whole, then as 4 shards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.lab.bed import add_lab_pool, write_targets
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.merge import merge_shards
from tests.fixtures.cluster import BedHandle

ROOT = Path(__file__).resolve().parents[2]
POOL = "shards"
NODES = 40
SHARDS = 4
RUN_WITHIN = 1800.0  # a bound on a hung child only; the image suite on 40 nodes


@pytest.fixture
def shard_pool(cluster_bed: BedHandle, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    nodes = add_lab_pool(cluster_bed.bed, POOL, cluster_bed.lab, nodes=NODES)
    try:
        yield write_targets(cluster_bed.bed, tmp_path / "targets.yaml",
                            {"nodepool-shards": POOL}), nodes
    finally:
        cluster_bed.bed.remove_pool(POOL)


def _run(targets: Path, work: Path, *args: str) -> Path:
    """The image suite on the pool; the directory of its per-image reports."""
    work.mkdir()
    reports = work / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
         "--tb=line", "--rootdir", str(work), "--azl-targets-file", str(targets),
         "--azl-target", "nodepool-shards", f"--azl-junit-dir={reports}", *args,
         str(ROOT / "suites" / "image")],
        cwd=work, capture_output=True, text=True, timeout=RUN_WITHIN,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    return reports


def _cases(reports: Path) -> dict[str, str]:
    """``classname::name`` -> outcome over every per-image report of a directory."""
    out: dict[str, str] = {}
    for path in sorted(reports.glob("*.xml")):
        for case in read_cases(path)[1]:
            key = f"{case.classname}::{case.name}"
            assert key not in out, f"{key} in two reports"
            out[key] = case.outcome
    return out


def test_shards_merge_to_the_cases_of_one_run(
    shard_pool: tuple[Path, list[str]], tmp_path: Path
) -> None:
    targets, nodes = shard_pool
    whole = _cases(_run(targets, tmp_path / "whole"))
    for node in nodes:
        assert any(f"[{node}]" in key for key in whole), f"no case of node {node}"
    shard_dirs = [_run(targets, tmp_path / f"shard{i}", f"--azl-shard={i}/{SHARDS}")
                  for i in range(1, SHARDS + 1)]
    per_shard = [_cases(d) for d in shard_dirs]
    node_cases = [{k for k in cases if any(f"[{n}]" in k for n in nodes)} for cases in per_shard]
    assert all(node_cases), "a shard ran no node"
    assert sum(map(len, node_cases)) == len(set().union(*node_cases)), "shards overlap"
    merged_dir = tmp_path / "merged"
    merged_dir.mkdir()
    merge_shards(merged_dir, shard_dirs)
    merged = _cases(merged_dir)
    assert set(merged) == set(whole)
    differ = {k: (whole[k], merged[k]) for k in whole if merged[k] != whole[k]}
    assert not differ, differ

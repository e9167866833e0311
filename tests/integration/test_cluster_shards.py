"""CI shards of a node pool: ``--azl-shard i/4`` runs merged by ``azl report merge`` hold the
same cases, with the same outcomes, as one run over the whole pool.

A pool of 40 simulated nodes bound in turn to two of the session lab's hosts, azl3 and
mariner2 (tests/fixtures/cluster.py), the image suite run through the real exec path: once
whole, then as 4 shards. Nodes alternate between the two images and shards take every 4th
node, so each shard sees one image and passes ``test_one_image_per_target`` while the whole
pool fails it: the merge must judge it again over every shard's nodes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_azlinux.lab.bed import add_lab_pool, write_targets
from pytest_azlinux.lab.state import LabHost
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.merge import merge_shards
from tests.fixtures.child import ROOT, child_pytest, run_to_end
from tests.fixtures.cluster import BedHandle

POOL = "shards"
NODES = 40
SHARDS = 4
RUN_WITHIN = 1800.0  # a bound on a hung child only; the image suite on 40 nodes
BACKING = ("azl3", "mariner2")  # node i runs on the lab host of BACKING[i % 2]
ONE_IMAGE = "test_one_image_per_target[nodepool-shards]"


@dataclass
class _LabHosts:
    """The session lab seen through some of its hosts: add_lab_pool binds nodes to them."""

    name: str
    hosts: list[LabHost]


@pytest.fixture
def shard_pool(cluster_bed: BedHandle, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    lab = cluster_bed.lab
    backing = _LabHosts(lab.name, [next(h for h in lab.hosts if h.variant == v)
                                   for v in BACKING])
    nodes = add_lab_pool(cluster_bed.bed, POOL, backing, nodes=NODES)  # type: ignore[arg-type]
    try:
        yield write_targets(cluster_bed.bed, tmp_path / "targets.yaml",
                            {"nodepool-shards": POOL}), nodes
    finally:
        cluster_bed.bed.remove_pool(POOL)


def _start(targets: Path, work: Path, *args: str) -> subprocess.Popen[bytes]:
    """The image suite on the pool, started in ``work`` (reports in ``work/reports``)."""
    work.mkdir()
    return child_pytest(
        targets, work, "-p", "no:xdist", "-q", "--tb=line", "--azl-target", "nodepool-shards",
        f"--azl-junit-dir={work / 'reports'}", *args, str(ROOT / "suites" / "image"))


def _reports(proc: subprocess.Popen[bytes], work: Path) -> Path:
    """The directory of a finished run's per-image reports."""
    out = run_to_end(proc, RUN_WITHIN)
    assert proc.returncode in (0, 1), out[-5000:]
    return work / "reports"


def _cases(reports: Path) -> dict[str, str]:
    """``classname::name`` -> outcome over every per-image report of a directory."""
    return {key: outcome for key, (outcome, _) in _results(reports).items()}


def _results(reports: Path) -> dict[str, tuple[str, str]]:
    """``classname::name`` -> (outcome, message) over every per-image report of a directory."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(reports.glob("*.xml")):
        for case in read_cases(path)[1]:
            key = f"{case.classname}::{case.name}"
            assert key not in out, f"{key} in two reports"
            out[key] = (case.outcome, case.message)
    return out


def _one_image(results: dict[str, tuple[str, str]]) -> tuple[str, str]:
    (key,) = (k for k in results if k.endswith(f"::{ONE_IMAGE}"))
    return results[key]


def test_shards_merge_to_the_cases_of_one_run(
    shard_pool: tuple[Path, list[str]], tmp_path: Path
) -> None:
    targets, nodes = shard_pool
    # the whole run and the shards at once, as CI jobs would run (and a core each here)
    works = [tmp_path / "whole", *(tmp_path / f"shard{i}" for i in range(1, SHARDS + 1))]
    procs = [_start(targets, works[0])] + [
        _start(targets, works[i], f"--azl-shard={i}/{SHARDS}") for i in range(1, SHARDS + 1)]
    whole_dir, *shard_dirs = [_reports(proc, work) for proc, work in zip(procs, works, strict=True)]
    whole = _cases(whole_dir)
    for node in nodes:
        assert any(f"[{node}]" in key for key in whole), f"no case of node {node}"
    outcome, whole_message = _one_image(_results(whole_dir))
    assert outcome == "failed" and "2 images" in whole_message, whole_message
    for node in nodes:  # the message names every node under its image
        assert node in whole_message
    per_shard = [_cases(d) for d in shard_dirs]
    node_cases = [{k for k in cases if any(f"[{n}]" in k for n in nodes)} for cases in per_shard]
    assert all(node_cases), "a shard ran no node"
    assert sum(map(len, node_cases)) == len(set().union(*node_cases)), "shards overlap"
    for shard_dir in shard_dirs:  # one image per shard: each shard alone passes
        assert _one_image(_results(shard_dir))[0] == "passed", shard_dir
    merged_dir = tmp_path / "merged"
    merged_dir.mkdir()
    result = merge_shards(merged_dir, shard_dirs, strict=True)
    assert not result.warnings, result.warnings
    merged = _cases(merged_dir)
    assert set(merged) == set(whole)
    differ = {k: (whole[k], merged[k]) for k in whole if merged[k] != whole[k]}
    assert not differ, differ
    assert _one_image(_results(merged_dir)) == ("failed", whole_message)

"""Report tools on real lab runs: a degraded link shows up in ``azl report compare``; two
shards cover every host once and merge to the same test cases as a single run.

The lab is one of its own (three namespaced hosts, one per image variant, so three per-image
reports), because this module degrades a link and must not disturb other tests' lab.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from pytest_azlinux.cli import main
from pytest_azlinux.lab import Lab
from pytest_azlinux.report.junit import read_cases
from tests.fixtures.lab import unique_lab_name

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

TESTS = dedent(
    """
    from pytest_azlinux.network.iperf import IperfParams, measure

    def test_tcp(azl_host_pair, azl_metric):
        client, server = azl_host_pair
        (result,) = measure(client, server, IperfParams(duration=2, omit=0), repetitions=1)
        azl_metric("throughput_gbps", result.throughput_gbps, "Gbit/s", "higher")

    def test_reachable(azl_host):
        assert azl_host.check_output("echo ok").strip() == "ok"
    """
)
# Five repetitions of 1 s, every one kept: compare's rank test decides.
REPEATED = dedent(
    """
    import statistics
    from pytest_azlinux.network.iperf import IperfParams, measure

    def test_tcp(azl_host_pair, azl_metric):
        client, server = azl_host_pair
        runs = measure(client, server, IperfParams(duration=1, omit=0), repetitions=5)
        values = [r.throughput_gbps for r in runs]
        azl_metric("throughput_gbps", statistics.median(values), "Gbit/s", "higher",
                   samples=values)
    """
)
# Per-host tests only: a pair needs both hosts in one shard. (A separate module rather than
# -k: deselected tests would be reported as "not run" errors by the collector.)
PER_HOST = dedent(
    """
    def test_reachable(azl_host):
        assert azl_host.check_output("echo ok").strip() == "ok"

    def test_kernel(azl_host, azl_metric):
        azl_metric("uptime_s", float(azl_host.read_text("/proc/uptime").split()[0]), "s")
        assert azl_host.facts.kernel
    """
)
DEGRADED_RATE_MBIT = 200  # the veth links carry several Gbit/s when healthy


@pytest.fixture(scope="module")
def reports_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(unique_lab_name("r"), state_dir=tmp_path_factory.mktemp("lab") / "state")
    try:
        lab.up(hosts=3, disk_size="64M")
        yield lab
    finally:
        lab.down()


def run_lab(pytester: pytest.Pytester, lab: Lab, out: Path, *args: str,
            source: str = TESTS) -> pytest.RunResult:
    pytester.makepyfile(test_lab_reports=source)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--azl-targets-file", str(lab.targets_file),
        "--azl-target", "lab", "--azl-junit-dir", str(out), *args, timeout=240,
    )
    assert result.ret == 0, result.stdout.str()
    return result


def cases_in(directory: Path) -> dict[str, tuple[str, str | None]]:
    """test id -> (outcome, host), over all per-image reports of a run."""
    out: dict[str, tuple[str, str | None]] = {}
    for path in sorted(directory.glob("*.xml")):
        for case in read_cases(path)[1]:
            out[case.nodeid] = (case.outcome, case.host)
    return out


def test_compare_flags_a_degraded_link(pytester: pytest.Pytester, reports_lab: Lab,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    hosts = [h.name for h in reports_lab.hosts]
    base, degraded = pytester.path / "base", pytester.path / "degraded"
    run_lab(pytester, reports_lab, base)
    victim = hosts[1]
    reports_lab.fault(victim, rate=DEGRADED_RATE_MBIT)
    try:
        run_lab(pytester, reports_lab, degraded)
    finally:
        reports_lab.fault(victim, clear=True)
    assert len(list(base.glob("*.xml"))) == 3  # one report per image variant
    capsys.readouterr()
    # A generous tolerance: the healthy pair's throughput moves with the machine's load,
    # the degraded ones fall by far more.
    code = main(["report", "compare", str(base), str(degraded), "--json", "--tolerance", "0.8"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    regressions = {r["test"].rsplit("[", 1)[1].rstrip("]"): r
                   for image in data["images"] for r in image["metric_regressions"]}
    through_victim = {f"{a}->{b}" for a, b in zip(hosts, hosts[1:] + hosts[:1], strict=True)
                      if victim in (a, b)}
    assert set(regressions) == through_victim, regressions
    for reg in regressions.values():
        assert reg["metric"] == "throughput_gbps" and reg["better"] == "higher"
        assert reg["current"] * 1000 < DEGRADED_RATE_MBIT * 1.2  # capped by the fault
        assert reg["change"] < -0.8
    assert all(not image["new_failures"] for image in data["images"])
    # The Markdown says the same for people.
    assert main(["report", "compare", str(base), str(degraded), "--tolerance", "0.8"]) == 1
    text = capsys.readouterr().out
    assert "**REGRESSED**" in text
    # Listed under the regressions and again among all metrics, with the band used.
    rows = {line for line in text.splitlines() if line.endswith("| regression |")}
    assert len(rows) == 2 and all("| throughput_gbps | higher |" in r for r in rows), rows


def test_compare_decides_a_degraded_link_by_the_rank_test(
        pytester: pytest.Pytester, reports_lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = [h.name for h in reports_lab.hosts]
    base, degraded = pytester.path / "base", pytester.path / "degraded"
    run_lab(pytester, reports_lab, base, source=REPEATED)
    victim = hosts[1]
    reports_lab.fault(victim, rate=DEGRADED_RATE_MBIT)
    try:
        run_lab(pytester, reports_lab, degraded, source=REPEATED)
    finally:
        reports_lab.fault(victim, clear=True)
    capsys.readouterr()
    # the tolerance wide enough for the healthy pair's run-to-run moves on a loaded machine
    code = main(["report", "compare", str(base), str(degraded), "--json", "--tolerance", "0.5"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    rows = {r["test"].rsplit("[", 1)[1].rstrip("]"): r
            for image in data["images"] for r in image["metrics"]}
    through_victim = {f"{a}->{b}" for a, b in zip(hosts, hosts[1:] + hosts[:1], strict=True)
                      if victim in (a, b)}
    assert len(rows) == 3
    for pair, row in rows.items():
        assert row["rule"] == "rank test" and row["base_ci"]["n"] == row["current_ci"]["n"] == 5
        if pair in through_victim:  # every capped repetition below every healthy one
            assert row["verdict"] == "regression" and row["p_value"] < 0.01, row
            assert row["current"] * 1000 < DEGRADED_RATE_MBIT * 1.2
        else:
            assert row["verdict"] != "regression", row
    # Markdown: the medians with their intervals, and how it was decided
    assert main(["report", "compare", str(base), str(degraded), "--tolerance", "0.5"]) == 1
    text = capsys.readouterr().out
    assert "(n=5, 94% CI)" in text
    assert "rank test: beyond 50%; beyond 25%: p=0.00397 (one-sided), significant at 0.01" in text


def test_shards_cover_every_host_once_and_merge(pytester: pytest.Pytester, reports_lab: Lab,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    hosts = sorted(h.name for h in reports_lab.hosts)
    full, s1, s2, merged = (pytester.path / n for n in ("full", "s1", "s2", "merged"))
    run_lab(pytester, reports_lab, full, source=PER_HOST)
    run_lab(pytester, reports_lab, s1, "--azl-shard", "1/2", source=PER_HOST)
    run_lab(pytester, reports_lab, s2, "--azl-shard", "2/2", source=PER_HOST)
    hosts1 = sorted({h for _, h in cases_in(s1).values()})
    hosts2 = sorted({h for _, h in cases_in(s2).values()})
    assert sorted(hosts1 + hosts2) == hosts  # every host exactly once
    assert hosts1 == hosts[0::2] and hosts2 == hosts[1::2]
    assert len(cases_in(full)) == 2 * len(hosts)
    assert all(outcome == "passed" for outcome, _ in cases_in(full).values())
    capsys.readouterr()
    assert main(["report", "merge", str(merged), str(s1), str(s2)]) == 0
    assert cases_in(merged) == cases_in(full)
    names = sorted(p.name for p in full.glob("*.xml"))
    assert sorted(p.name for p in merged.glob("*.xml")) == names
    for path in merged.glob("*.xml"):
        (props,) = read_cases(path)[0].values()
        (expected,) = read_cases(full / path.name)[0].values()
        for key in ("azl.image", "azl.os_id", "azl.version", "azl.variant", "azl.kernels",
                    "azl.target", "azl.hosts"):
            assert props.get(key) == expected.get(key), key
    assert main(["report", "compare", str(full), str(merged)]) == 0

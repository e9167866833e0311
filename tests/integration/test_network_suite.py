"""The network suite on lab hosts with real iperf3: metrics, faults, thresholds, errors, cleanup."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.analyse.iperf import IperfResult, spread
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.network.iperf import (
    PORT_RANGE,
    UDP_SETUP_WAIT,
    IperfParams,
    MeasurementError,
    measure,
)
from pytest_azlinux.report.junit import read_cases
from tests.fixtures.lab import lab_targets_with

SUITE = Path(__file__).resolve().parents[2] / "suites" / "network"
QUICK = IperfParams(duration=2, omit=0)


def iperf3_processes() -> list[str]:
    """Live iperf3 processes on the machine (lab hosts share its PID namespace)."""
    out = subprocess.run(["ps", "-eo", "stat=,pid=,args="], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines()
            if "iperf3" in line and not line.lstrip().startswith("Z")]


@pytest.fixture
def pair(lab: Lab, lab_hosts: dict[str, Host]) -> Iterator[tuple[Host, Host]]:
    names = [h.name for h in lab.hosts]
    client, server = lab_hosts[names[0]], lab_hosts[names[1]]
    yield client, server
    lab.fault(server.name, clear=True)
    assert iperf3_processes() == []


# What the lab target should carry so the default lab run is quick (see docs/network.md):
# 1 s runs, as the built-in lab target has them; two repetitions (the range, the samples).
LAB_SETTINGS = {"duration": 1, "omit": 0, "repetitions": 2, "udp_rate": "10M",
                "max_udp_loss_pct": 5, "reference": "loopback", "noise_tolerance": 0.2}


def test_suite_run_records_plausible_metrics(lab: Lab, tmp_path: Path,
                                             pytester: pytest.Pytester) -> None:
    targets = lab_targets_with(lab, tmp_path, suites={"network": LAB_SETTINGS})
    result = pytester.runpytest_subprocess(
        str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}", "-p", "no:cacheprovider",
        f"--azl-junit-dir={tmp_path / 'reports'}", "-k", "single_stream or udp",
        timeout=300,
    )
    result.assert_outcomes(passed=6)  # 3 hosts in a ring, 2 tests each
    metrics = {}
    for report in (tmp_path / "reports").glob("*.xml"):
        for case in read_cases(report)[1]:
            metrics[case.name] = {m.name: m for m in case.metrics}
    tcp = [m for name, m in metrics.items() if name.startswith("test_tcp_single_stream")]
    udp = [m for name, m in metrics.items() if name.startswith("test_udp")]
    assert len(tcp) == 3 and len(udp) == 3
    for m in tcp:
        thr = m["throughput_gbps"]
        assert 0.5 < thr.value < 400, m  # veth on one machine
        assert thr.unit == "Gbit/s" and thr.better == "higher"
        # The range of the repetitions travels with the median, for compare's noise band.
        assert thr.low is not None and thr.high is not None and thr.low <= thr.value <= thr.high
        assert thr.threshold == "none"  # no floor set: said, not hidden
        # compare gates the share of the client's loopback throughput, not the raw figure
        share = m["throughput_loopback_share"]
        assert share.gated and not thr.gated and share.better == "higher"
        assert 0.01 < share.value < 10 and share.threshold.startswith("none (loopback median")
        assert share.low is not None and share.high is not None
        assert share.low <= share.value <= share.high
        # every repetition kept: the pair's runs, each over the loopback run just before it
        loop = m["loopback_gbps"]
        assert len(thr.samples) == len(share.samples) == len(loop.samples) == 2
        for got, gbps, ref in zip(share.samples, thr.samples, loop.samples, strict=True):
            assert got == pytest.approx(gbps / ref, rel=1e-3)
        assert not loop.gated
        assert share.tolerance == 0.2 and thr.tolerance is None  # declared noise, in the report
        assert m["retransmits"].better == "lower" and not m["retransmits"].gated
        assert 0 <= m["cpu_client_pct"].value <= 100.5
    for m in udp:
        assert len(m["loss_pct"].samples) == 2 and len(m["jitter_ms"].samples) == 2
        assert m["throughput_gbps"].value == pytest.approx(0.01, rel=0.2)
        assert not m["throughput_gbps"].gated  # the rate it was sent at
        assert m["jitter_ms"].value >= 0 and m["loss_pct"].value < 5
        assert m["loss_pct"].threshold == "<= 5 % (suites.network.max_udp_loss_pct)"
    assert iperf3_processes() == []


def test_rate_and_loss_faults_lower_throughput_and_raise_loss(
        lab: Lab, pair: tuple[Host, Host]) -> None:
    client, server = pair
    normal = spread([r.throughput_gbps for r in measure(client, server, QUICK, repetitions=2)])
    lab.fault(server.name, rate=100)
    limited = spread([r.throughput_gbps for r in measure(client, server, QUICK, repetitions=2)])
    assert limited.median < 0.12 < normal.median, (normal, limited)
    lab.fault(server.name, clear=True)
    udp = IperfParams(duration=2, omit=0, udp=True, udp_rate="50M")
    clean = measure(client, server, udp, repetitions=1)[0]
    tcp_clean = measure(client, server, QUICK, repetitions=1)[0]
    lab.fault(server.name, loss=5)  # per direction
    lossy = measure(client, server, udp, repetitions=1)[0]
    tcp_lossy = measure(client, server, QUICK, repetitions=1)[0]
    assert clean.lost_percent is not None and lossy.lost_percent is not None
    assert lossy.lost_percent > max(3.0, clean.lost_percent), (clean, lossy)
    # Retransmits per gigabit sent: a lossy link sends far less, so compare rates.
    def retransmit_rate(r: IperfResult) -> float:
        return (r.retransmits or 0) / max(r.throughput_gbps * QUICK.duration, 1e-6)

    assert retransmit_rate(tcp_lossy) > 10 * retransmit_rate(tcp_clean), (tcp_clean, tcp_lossy)
    lab.fault(server.name, clear=True)
    recovered = spread([r.throughput_gbps for r in measure(client, server, QUICK, repetitions=2)])
    assert recovered.median > 5 * limited.median


@contextlib.contextmanager
def first_udp_datagram_dropped(lab: Lab, host: Host) -> Iterator[None]:
    """nftables in ``host``'s namespace drops the first UDP datagram to an iperf3 port."""
    netns = lab.host(host.name).netns
    nft = ["ip", "netns", "exec", netns, "nft"]
    low, high = PORT_RANGE
    subprocess.run([*nft, "add table inet azltest; "
                    "add chain inet azltest in { type filter hook input priority 0; }; "
                    f"add rule inet azltest in udp dport {low}-{high} "
                    "numgen inc mod 1000000 0 counter drop"], check=True)
    try:
        yield
    finally:
        subprocess.run([*nft, "delete table inet azltest"], check=True)


def test_lost_udp_setup_is_started_again(lab: Lab, pair: tuple[Host, Host]) -> None:
    """iperf3 sends its UDP setup datagram once; losing it is retried, not reported as a result."""
    client, server = pair
    udp = IperfParams(duration=1, omit=0, udp=True, udp_rate="50M")
    started = time.monotonic()
    with first_udp_datagram_dropped(lab, server):
        result = measure(client, server, udp, repetitions=1)[0]
    # The first attempt waited out iperf3's fixed 30 s setup timeout, the second one measured.
    assert time.monotonic() - started > UDP_SETUP_WAIT
    assert result.lost_percent is not None and result.lost_percent < 5
    assert result.throughput_gbps == pytest.approx(0.05, rel=0.2)


def test_floor_above_line_rate_fails_readably(lab: Lab, tmp_path: Path,
                                              pytester: pytest.Pytester) -> None:
    targets = lab_targets_with(lab, tmp_path, suites={"network": {
        "duration": 1, "omit": 0, "repetitions": 1, "min_gbps": 100000}})
    result = pytester.runpytest_subprocess(
        str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}", "-p", "no:cacheprovider",
        f"--azl-junit-dir={tmp_path / 'reports'}", "-k", "single_stream", timeout=300,
    )
    result.assert_outcomes(failed=3)
    result.stdout.re_match_lines([
        r".*->.*: TCP 1 stream median [\d.]+ Gbit/s \(range [\d.]+-[\d.]+ over 1 runs\) is below "
        r"the floor of 100000 Gbit/s \(suites.network.min_gbps\)"
    ])
    assert iperf3_processes() == []


def test_defaults_decide_loss_and_a_known_link_sets_a_floor(lab: Lab, tmp_path: Path,
                                                             pytester: pytest.Pytester) -> None:
    """No loss limit set: the default 1 % fails a lossy link; a link_gbps gives a floor."""
    names = [h.name for h in lab.hosts]
    victim = names[1]
    targets = lab_targets_with(lab, tmp_path, suites={"network": {
        "duration": 1, "omit": 0, "repetitions": 1, "udp_rate": "10M", "link_gbps": 100000}})
    lab.fault(victim, loss=10)  # per direction
    try:
        result = pytester.runpytest_subprocess(
            str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}",
            "-p", "no:cacheprovider", f"--azl-junit-dir={tmp_path / 'reports'}",
            "-k", "single_stream or udp", timeout=600,
        )
    finally:
        lab.fault(victim, clear=True)
    outcomes, loss = {}, {}
    for report in (tmp_path / "reports").glob("*.xml"):
        for case in read_cases(report)[1]:
            outcomes[case.name] = (case.outcome, case.message)
            loss.update((case.name, m.value) for m in case.metrics if m.name == "loss_pct")
    udp = {name: o for name, o in outcomes.items() if name.startswith("test_udp")}
    tcp = {name: o for name, o in outcomes.items() if name.startswith("test_tcp")}
    through_victim = {n for n in udp if victim in n.split("[")[1]}
    assert len(through_victim) == 2 and len(udp) == 3
    for name in through_victim:
        outcome, message = udp[name]
        assert outcome == "failed", (name, message)
        assert "above 1% (suites.network.max_udp_loss_pct)" in message
    # The third pair has no fault: whatever this busy machine costs it, far less.
    (clean,) = set(udp) - through_victim
    assert loss[clean] < min(loss[n] for n in through_victim) / 2, loss
    # No veth carries 50 Tbit/s: half the stated link is a floor every pair misses.
    assert [o for o, _ in tcp.values()] == ["failed"] * 3, tcp
    assert all("of the link's 100000 Gbit/s" in m for _, m in tcp.values())
    assert result.ret == 1
    assert iperf3_processes() == []


@contextlib.contextmanager
def iperf3_hidden(host: Host) -> Iterator[None]:
    """Make iperf3 unavailable on one lab host only (a bind mount in its mount namespace)."""
    host.run("touch /tmp/azl-no-iperf3 && chmod 644 /tmp/azl-no-iperf3 && "
             "mount --bind /tmp/azl-no-iperf3 $(command -v iperf3)", sudo=True, check=True)
    try:
        yield
    finally:
        host.run("umount /usr/bin/iperf3; rm -f /tmp/azl-no-iperf3", sudo=True, check=True)


def test_missing_iperf3_on_peer_is_an_infra_error(pair: tuple[Host, Host]) -> None:
    client, server = pair
    with iperf3_hidden(server), pytest.raises(MeasurementError, match="iperf3 is not installed"):
        measure(client, server, QUICK, repetitions=1)


def test_missing_iperf3_reported_as_error_by_the_suite(lab: Lab, lab_hosts: dict[str, Host],
                                                       tmp_path: Path,
                                                       pytester: pytest.Pytester) -> None:
    server = lab_hosts[lab.hosts[1].name]
    targets = lab_targets_with(lab, tmp_path, suites={"network": {
        "duration": 1, "omit": 0, "repetitions": 1}})
    with iperf3_hidden(server):
        result = pytester.runpytest_subprocess(
            str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}",
            "-p", "no:cacheprovider", f"--azl-junit-dir={tmp_path / 'reports'}",
            "-k", "single_stream", timeout=300,
        )
    outcomes = result.parseoutcomes()
    # the host is the server of one ring pair and the client of the next
    assert outcomes.get("errors") == 2 and outcomes.get("passed") == 1, outcomes
    result.stdout.fnmatch_lines([f"*{server.name}: iperf3 is not installed*"])


def test_blocked_port_is_an_infra_error(lab: Lab, pair: tuple[Host, Host]) -> None:
    client, server = pair
    netns = lab.host(server.name).netns
    nft = ["ip", "netns", "exec", netns, "nft"]
    subprocess.run([*nft, "add table inet azltest"], check=True)
    try:
        subprocess.run([*nft, "add chain inet azltest in "
                        "{ type filter hook input priority 0 ; }"], check=True)
        subprocess.run([*nft, "add rule inet azltest in tcp dport 20000-45000 drop"], check=True)
        with pytest.raises(MeasurementError, match=r"iperf3 error: .*(timed out|refused)"):
            measure(client, server, QUICK, repetitions=1)
    finally:
        subprocess.run([*nft, "delete table inet azltest"], check=True)

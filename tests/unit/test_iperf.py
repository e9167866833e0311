"""iperf3 JSON parsing on real recordings (iperf 3.12, loopback) and threshold verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.analyse.iperf import IperfFormatError, parse_iperf_json, spread
from pytest_azlinux.network.settings import NetworkSettings, throughput_verdicts

DATA = Path(__file__).parent.parent / "data" / "iperf3"


def load(name: str) -> str:
    return (DATA / f"{name}.json").read_text()


def test_tcp_goodput_is_received_rate_and_retransmits_from_sender() -> None:
    r = parse_iperf_json(load("tcp"))
    assert r.protocol == "TCP" and r.error is None
    assert r.throughput_gbps == pytest.approx(36.82397404807105)
    assert r.retransmits == 55
    assert r.cpu_client_pct == pytest.approx(99.28886889738527)
    assert r.cpu_server_pct == pytest.approx(45.304627271203366)


def test_parallel_and_reverse_are_flagged() -> None:
    assert parse_iperf_json(load("tcp_parallel")).streams == 2
    reverse = parse_iperf_json(load("tcp_reverse"))
    assert reverse.reverse and reverse.throughput_gbps > 1


def test_udp_has_jitter_and_loss() -> None:
    r = parse_iperf_json(load("udp"))
    assert r.protocol == "UDP"
    assert r.jitter_ms == pytest.approx(0.011345285839066568)
    assert r.lost_percent == 0
    assert r.throughput_gbps == pytest.approx(0.1, rel=0.01)


def test_error_key_is_kept() -> None:
    r = parse_iperf_json(load("error_refused"))
    assert r.error == "unable to connect to server: Connection refused"


@pytest.mark.parametrize("text", ["", "iperf3: error - unable to connect", "[]", "{}"])
def test_non_json_is_a_format_error(text: str) -> None:
    with pytest.raises(IperfFormatError):
        parse_iperf_json(text)


def test_spread_median_and_range() -> None:
    s = spread([3.0, 1.0, 2.0])
    assert (s.median, s.low, s.high, s.runs) == (2.0, 1.0, 3.0, 3)
    assert "range 1-3 over 3 runs" in s.describe("Gbit/s")


def test_floor_and_baseline_verdicts_name_pair_median_and_threshold() -> None:
    measured = spread([9.0, 9.5, 10.0])
    settings = NetworkSettings(min_gbps=12, baseline_gbps=11, tolerance=0.1)
    problems = throughput_verdicts("a->b", "TCP 1 stream", measured, settings)
    assert len(problems) == 2
    assert problems[0].startswith("a->b: TCP 1 stream median 9.5 Gbit/s")
    assert "floor of 12 Gbit/s" in problems[0]
    assert "baseline of 11 Gbit/s (minimum 9.9)" in problems[1]
    assert throughput_verdicts("a->b", "x", measured, NetworkSettings(min_gbps=9)) == []

"""iperf3 JSON parsing on real recordings (iperf 3.12, loopback) and threshold verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.analyse.iperf import IperfFormatError, parse_iperf_json, spread
from pytest_azlinux.builtin import SUITES
from pytest_azlinux.errors import SettingsError
from pytest_azlinux.network.settings import (
    NetworkSettings,
    loss_threshold,
    loss_verdict,
    throughput_threshold,
    throughput_verdicts,
)
from pytest_azlinux.settings import parse
from pytest_azlinux.suite_table import load_suites

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


def test_link_floor_applies_only_where_the_link_is_known() -> None:
    measured = spread([3.0, 3.2, 3.4])
    assert throughput_verdicts("a->b", "TCP", measured, NetworkSettings()) == []
    (problem,) = throughput_verdicts("a->b", "TCP", measured, NetworkSettings(link_gbps=10))
    assert "below 50% of the link's 10 Gbit/s (minimum 5" in problem
    assert throughput_verdicts("a->b", "TCP", measured,
                               NetworkSettings(link_gbps=10, min_link_fraction=0.3)) == []


def test_defaults_decide_udp_loss_and_say_when_throughput_has_no_threshold() -> None:
    defaults = NetworkSettings()
    lossy = spread([43.0, 44.5, 45.0])  # what the default lab measured before: all passed
    problem = loss_verdict("a->b", "1G", lossy, defaults)
    assert problem == ("a->b: UDP at 1Gbit/s lost median 44.5 % (range 43-45 over 3 runs), "
                       "above 1% (suites.network.max_udp_loss_pct)")
    assert loss_verdict("a->b", "1G", spread([0.0, 0.4]), defaults) is None
    assert loss_verdict("a->b", "1G", lossy, NetworkSettings(max_udp_loss_pct=None)) is None
    assert throughput_threshold(defaults) == "none"
    assert loss_threshold(defaults) == "<= 1 % (suites.network.max_udp_loss_pct)"
    assert loss_threshold(NetworkSettings(max_udp_loss_pct=None)) == "none"
    both = NetworkSettings(min_gbps=8, link_gbps=25)
    assert throughput_threshold(both) == (">= 8 Gbit/s (suites.network.min_gbps); "
                                          ">= 12.5 Gbit/s (50% of suites.network.link_gbps 25)")


def test_settings_are_the_registered_suite_model() -> None:
    assert load_suites(SUITES)["network"].model is NetworkSettings
    quick = parse(NetworkSettings, {"duration": 2, "repetitions": 2, "omit": 0,
                                    "udp_rate": "100M"}, "lab")
    assert (quick.duration, quick.repetitions, quick.omit) == (2, 2, 0)
    with pytest.raises(SettingsError) as err:
        parse(NetworkSettings, {"udp_rate": "fast"}, "lab")
    assert str(err.value).startswith("target 'lab': field 'suites.network.udp_rate': ")
    with pytest.raises(SettingsError, match=r"suites.network.max_udp_los': Extra inputs"):
        parse(NetworkSettings, {"max_udp_los": 1}, "lab")

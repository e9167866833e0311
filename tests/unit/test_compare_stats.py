"""The statistics behind ``azl report compare``, on numbers recorded by the lab.

The repetitions below are real: ``throughput_loopback_share`` (a pair's iperf3 throughput
over a loopback run on its client taken just before it, 5 repetitions of 1 s) and the raw
throughput, from unchanged lab runs of ``bench/bench_compare_noise.py`` with a second lab
running the suites beside them (load average 10-12 on 2 cores), and from the run with one
host's link limited to 70 % of its measured throughput (``azl lab fault --rate``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy.stats import mannwhitneyu

from pytest_azlinux.errors import ReportError
from pytest_azlinux.report.compare import load_tolerances
from pytest_azlinux.report.compare_metrics import judge_history, judge_metric
from pytest_azlinux.report.junit import from_testcase, to_testcase
from pytest_azlinux.report.model import CaseRecord, Metric, format_samples, parse_samples
from pytest_azlinux.report.stats import (
    can_decide,
    mann_whitney_p,
    median_ci,
    robust_spread,
    smallest_p,
)

# test_tcp_single_stream[stcmp-1->stcmp-2], throughput_loopback_share, unchanged runs
SHARE_RUN1 = (0.72382, 0.665641, 0.721091, 0.765714, 0.685442)
SHARE_RUN2 = (0.59298, 0.820307, 0.670563, 0.744145, 0.696508)
# the run where the loopback figures jumped (10-15 Gbit/s against 6-8 before): -28 % median
SHARE_RUN3 = (0.450849, 0.75348, 0.411862, 0.522771, 0.56629)
# the same pair's raw throughput (Gbit/s), runs 1 and 2: the run moved as a whole
GBPS_RUN1 = (5.13528, 5.30656, 4.96076, 4.81795, 4.4824)
GBPS_RUN2 = (3.48714, 4.29749, 4.39963, 4.50622, 4.70162)


def share(samples: tuple[float, ...], *, gate: bool = True, tolerance: float | None = 0.2,
          name: str = "throughput_loopback_share") -> Metric:
    ordered = sorted(samples)
    return Metric(name, ordered[len(ordered) // 2], "ratio", "higher", low=ordered[0],
                  high=ordered[-1], gate=gate, tolerance=tolerance, samples=samples)


# -- medians and their intervals --------------------------------------------------------------
def test_median_ci_of_five_repetitions_is_their_range_at_94_percent() -> None:
    ci = median_ci(SHARE_RUN1)
    assert ci.median == 0.721091 and ci.n == 5
    assert (ci.low, ci.high) == (0.665641, 0.765714)
    assert ci.level == pytest.approx(1 - 2 / 32)  # no narrower pair reaches 95 %
    assert ci.describe("ratio") == "0.7211 [0.6656, 0.7657] ratio (n=5, 94% CI)"


def test_median_ci_narrows_with_more_repetitions() -> None:
    pooled = SHARE_RUN1 + SHARE_RUN2 + SHARE_RUN3  # 15 values
    ci = median_ci(pooled)
    ordered = sorted(pooled)
    # [x(4), x(12)]: coverage 1 - 2 P(B(15, .5) <= 3) = 96.5 %; [x(5), x(11)] would be 88 %
    assert (ci.low, ci.high) == (ordered[3], ordered[11])
    assert ci.level == pytest.approx(0.9648, abs=1e-4)
    assert median_ci([4.2]).describe("s") == "4.2 s (n=1)"


# -- the rank test ----------------------------------------------------------------------------
def test_how_many_repetitions_can_decide() -> None:
    assert smallest_p(5, 5) == pytest.approx(2 / 252)
    assert not can_decide(2, 2) and not can_decide(3, 3)  # p >= 0.33, >= 0.1
    assert can_decide(5, 5) and can_decide(45, 5)
    assert not can_decide(4, 4) and can_decide(4, 4, alpha=0.05)  # p >= 0.029
    assert not can_decide(0, 5)


def test_mann_whitney_p_is_scipys_two_sided_exact_value() -> None:
    p = mann_whitney_p(SHARE_RUN1, SHARE_RUN3)
    assert p == pytest.approx(mannwhitneyu(SHARE_RUN1, SHARE_RUN3, method="exact").pvalue)
    assert p == pytest.approx(0.0952, abs=1e-4)  # one of 25 pairs out of order: not < 0.05
    assert mann_whitney_p(GBPS_RUN1, GBPS_RUN2) == pytest.approx(0.0317, abs=1e-4)
    assert mann_whitney_p([1.0, 1.0], [1.0, 1.0]) == 1.0  # nothing to rank


# -- one metric against one base run ----------------------------------------------------------
def test_unchanged_runs_are_within_noise() -> None:
    row = judge_metric("t", "h", share(SHARE_RUN1), share(SHARE_RUN2), 0.2)
    assert row.rule == "rank test" and row.verdict == "within noise"
    assert row.p_value is not None and row.p_value > 0.5
    assert row.base_ci is not None and row.current_ci is not None


def test_a_run_shifted_beyond_the_tolerance_but_not_significant_is_not_a_regression() -> None:
    # -27.5 %: beyond the 20 % tolerance; but one repetition of five is as high as the
    # base's, and p = 0.095 is not < 0.05.
    row = judge_metric("t", "h", share(SHARE_RUN1), share(SHARE_RUN3), 0.2)
    assert row.change == pytest.approx(0.522771 / 0.721091 - 1)
    assert row.verdict == "within noise" and "not significant" in row.note


def test_significant_but_within_the_tolerance_is_not_a_regression() -> None:
    # The raw throughput fell 11 %, one of 25 pairs out of order (p = 0.032, significant at
    # benchstat's 0.05): a whole run moved with the machine's load; 20 % is what matters.
    row = judge_metric("t", "h", share(GBPS_RUN1, name="throughput_gbps"),
                       share(GBPS_RUN2, name="throughput_gbps"), 0.2, alpha=0.05)
    assert row.p_value is not None and row.p_value < 0.05
    assert row.verdict == "within noise" and "within 20% tolerance" in row.note
    strict = judge_metric("t", "h", share(GBPS_RUN1), share(GBPS_RUN2), 0.05)  # alpha 0.01
    assert strict.verdict == "within noise"
    assert strict.note == "beyond 5%; beyond 2.5%: p=0.0476 (one-sided), not significant"


def test_a_cut_beyond_the_tolerance_and_significant_is_a_regression() -> None:
    cut = tuple(v * 0.7 for v in SHARE_RUN2)  # the same noise, 30 % lower
    row = judge_metric("t", "h", share(SHARE_RUN1), share(cut), 0.2)
    assert row.verdict == "regression" and row.p_value == pytest.approx(1 / 252)
    improved = judge_metric("t", "h", share(cut), share(SHARE_RUN1), 0.2)
    assert improved.verdict == "improvement"
    info = judge_metric("t", "h", share(SHARE_RUN1, gate=False), share(cut, gate=False), 0.2)
    assert info.verdict == "worse, not a gate"


def test_too_few_repetitions_are_inconclusive_not_a_regression() -> None:
    cut = tuple(v * 0.5 for v in SHARE_RUN2[:3])
    row = judge_metric("t", "h", share(SHARE_RUN1[:3]), share(cut), 0.2)
    assert row.verdict == "inconclusive" and row.p_value is None
    assert row.note == "3 vs 3 repetitions: p >= 0.05, cannot reach 0.01"
    # inside the tolerance the count does not matter
    same = judge_metric("t", "h", share(SHARE_RUN1[:3]), share(SHARE_RUN1[:3]), 0.2)
    assert same.verdict == "within noise"


def test_reports_without_repetitions_keep_the_range_rule() -> None:
    old = Metric("throughput_gbps", 10.0, "Gbit/s", "higher", low=9.0, high=11.0)
    now = Metric("throughput_gbps", 7.0, "Gbit/s", "higher", low=6.8, high=7.2)
    row = judge_metric("t", "h", old, now, 0.05)
    assert row.rule == "range" and row.verdict == "regression"
    assert row.band == 2.0 and row.band_from == "base range"
    assert row.note == "neither run kept repetitions: range rule"
    with_samples = share((7.0, 6.9, 7.1, 6.8, 7.2), name="throughput_gbps", tolerance=None)
    mixed = judge_metric("t", "h", old, with_samples, 0.05)
    assert mixed.rule == "range" and mixed.note == "the base run kept no repetitions: range rule"


# -- a metric against a history of runs ------------------------------------------------------
def test_one_noisy_night_does_not_set_the_bar() -> None:
    history = [share(SHARE_RUN1), share(SHARE_RUN2), share(SHARE_RUN3), share(SHARE_RUN1)]
    # Against run 3 alone, run 1's values look like a +28 % jump; against the history, the
    # centre is the median of the nightly medians and the noisy night is one of four.
    row = judge_history("t", "h", history, share(SHARE_RUN2), 0.2)
    assert row.rule == "history" and row.history_runs == 4
    assert row.base == pytest.approx((0.696508 + 0.721091) / 2)
    assert row.verdict == "within noise" and row.note.startswith("inside the history")
    assert row.base_ci is not None and row.base_ci.n == 20


def test_a_cut_falls_outside_the_history() -> None:
    history = [share(SHARE_RUN1), share(SHARE_RUN2), share(SHARE_RUN3)]
    cut = share(tuple(v * 0.6 for v in SHARE_RUN2))
    row = judge_history("t", "h", history, cut, 0.2)
    assert row.verdict == "regression" and row.p_value is not None and row.p_value < 0.01
    assert "outside the history (3 runs" in row.note
    # The band is the wider of the tolerance and three robust spreads of the nightly medians.
    medians = [0.721091, 0.696508, 0.522771]
    assert row.band == pytest.approx(max(0.2 * 0.696508, 3 * robust_spread(medians)))


# -- the report keeps the repetitions ---------------------------------------------------------
def test_repetitions_round_trip_through_junit() -> None:
    metric = share(SHARE_RUN3)
    record = CaseRecord("suites.x::test[a]", "suites.x", "test[a]", metrics=[metric])
    props = {p.get("name"): p.get("value") for p in to_testcase(record).iter("property")}
    assert props["metric.throughput_loopback_share.values"] == \
        "0.450849,0.75348,0.411862,0.522771,0.56629"
    (back,) = from_testcase(to_testcase(record), "image").metrics
    assert back.samples == SHARE_RUN3 and back == metric


def test_unreadable_repetitions_are_dropped_not_fatal() -> None:
    assert parse_samples("1.5, x,2,nan,inf,") == (1.5, 2.0)
    assert parse_samples(None) == () and parse_samples("") == ()
    assert format_samples([1 / 3, 2.0]) == "0.333333,2"
    assert not math.isnan(sum(parse_samples("nan,1")))


def test_alpha_comes_from_the_config_or_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "tolerances.yaml"
    config.write_text("tolerances: {default: 0.2}\nalpha: 0.05\n")
    assert load_tolerances(config).alpha == 0.05 and load_tolerances(None).alpha == 0.01
    assert load_tolerances(config, alpha=0.001).alpha == 0.001
    config.write_text("alpha: 5\n")
    with pytest.raises(ReportError, match=r"tolerances.yaml: alpha: expected a significance "
                       r"level between 0 and 1 \(e.g. 0.01\), got 5$"):
        load_tolerances(config)
    with pytest.raises(ReportError, match=r"^--alpha: expected"):
        load_tolerances(None, alpha=0.0)


def test_p_values_kept_per_order_are_scipys() -> None:
    """Untied runs are looked up by the order their values interleave in: the same answer as
    SciPy's on the values themselves, for every pair of the recorded series; tied values
    (the escape probe's centisecond times) go to SciPy directly."""
    series = [SHARE_RUN1, SHARE_RUN2, SHARE_RUN3, GBPS_RUN1, GBPS_RUN2]
    for base in series:
        for current in series:
            if base is not current:
                expected = mannwhitneyu(base, current, alternative="two-sided").pvalue
                assert mann_whitney_p(base, current) == pytest.approx(expected, rel=1e-12)
    tied = ([200.0, 180.0, 200.0, 190.0, 210.0], [200.0, 460.0, 230.0, 250.0, 240.0])
    assert mann_whitney_p(*tied) == pytest.approx(mannwhitneyu(*tied).pvalue, rel=1e-12)


# The 4-stream share of two unchanged lab runs on a busy machine (bench/bench_compare_noise.py,
# second bench, runs 5 and 8; docs/network.md): every repetition of run 8 is lower (the plain
# rank test: p = 0.008), but by a few per cent each; the median moved -25 % with the load.
BUSY_RUN5 = (0.929357, 0.999303, 0.867788, 1.12338, 0.968595)
BUSY_RUN8 = (0.85076, 0.624731, 0.825544, 0.726426, 0.667216)


def test_a_whole_run_drifting_with_the_load_is_not_a_regression() -> None:
    assert mann_whitney_p(BUSY_RUN5, BUSY_RUN8) == pytest.approx(2 / 252)
    row = judge_metric("t", "h", share(BUSY_RUN5), share(BUSY_RUN8), 0.2)
    assert row.change == pytest.approx(-0.25, abs=0.005)
    assert row.verdict == "within noise" and row.p_value is not None and row.p_value > 0.01
    assert "beyond 10%" in row.note and "not significant" in row.note
    # the same two runs 30 % further apart are a regression
    cut = tuple(v * 0.7 for v in BUSY_RUN8)
    assert judge_metric("t", "h", share(BUSY_RUN5), share(cut), 0.2).verdict == "regression"

"""How ``azl report compare`` judges one metric: against one base run, or a history of runs.

The rule (docs/reports.md, "How a metric is judged"):

- **rank test** (both runs kept their repetitions): a regression is a change of the median
  in the metric's bad direction, larger than the tolerance, whose repetitions show a change
  of at least half the tolerance: the one-sided Mann-Whitney U test of the current run
  against the base run moved by that margin gives p < alpha (0.01 unless set). Beyond the
  tolerance but with too few repetitions for the test ever to reach alpha: *inconclusive*,
  shown, not a gate.
- **history** (several base runs): the centre is the median of the runs' medians; the
  change must exceed the tolerance *and* three robust standard deviations of those medians
  (what the history shows from night to night), and be significant against all the
  history's repetitions pooled.
- **range** (a run without repetitions, e.g. a report written before they were kept, or a
  value measured once): the old rule, a change beyond the widest of the tolerance and the
  range either run measured.

Metrics that are not gates (durations unless declared, and what a suite records with
``gate=False``) get ``worse, not a gate`` where a gate would regress.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .model import Better, Metric
from .stats import (
    ALPHA,
    MedianCI,
    beyond_margin_p,
    can_decide,
    mann_whitney_p,
    median_ci,
    robust_spread,
    smallest_p,
)

MetricVerdict = Literal["regression", "improvement", "within noise", "worse, not a gate",
                        "inconclusive"]
Rule = Literal["rank test", "history", "range"]
HISTORY_SPREADS = 3.0  # how many robust standard deviations of the nightly medians are noise
# The share of the tolerance the repetitions must show beyond doubt. Testing for any change
# at all (a margin of 0) flagged 2 of 45 unchanged lab pairs on a busy machine, each a drift
# of every repetition by a few per cent between two runs; half the tolerance flagged none in
# the three kept benches and still caught the 30 % cut wherever the plain test did
# (docs/network.md).
MARGIN = 0.5


@dataclass(frozen=True)
class MetricChange:
    """One metric compared.

    ``base`` is the base run's median (the history's centre), ``change`` the relative change
    (absolute where the base is 0), ``band`` the absolute change it had to exceed and
    ``band_from`` where that width came from. ``p_value`` is the rank test's (None where the
    rule has none or the repetitions cannot decide); ``base_ci``/``current_ci`` the medians'
    confidence intervals with their level and repetitions; ``note`` says in words how it was
    decided.
    """

    test: str
    host: str | None
    metric: str
    unit: str
    better: Better
    base: float
    current: float
    change: float
    tolerance: float
    band: float = 0.0
    band_from: str = "tolerance"  # tolerance | base range | current range | history
    verdict: MetricVerdict = "within noise"
    rule: Rule = "range"
    p_value: float | None = None
    base_ci: MedianCI | None = None
    current_ci: MedianCI | None = None
    history_runs: int = 1
    gated: bool = True
    note: str = ""


def _relative(delta: float, base: float) -> float:
    return delta / abs(base) if base else delta


def _direction(delta: float, better: Better) -> bool:
    """Whether a change of ``delta`` is worse."""
    return delta < 0 if better == "higher" else delta > 0


def _verdict(worse: bool, gated: bool) -> MetricVerdict:
    if not worse:
        return "improvement"
    return "regression" if gated else "worse, not a gate"


def judge_metric(test: str, host: str | None, base: Metric, current: Metric,
                 tolerance: float, alpha: float = ALPHA) -> MetricChange:
    """One metric of one test against one base run: the rank test where both runs kept
    their repetitions, the range rule otherwise."""
    if base.samples and current.samples:
        return _rank_test(test, host, base, current, tolerance, alpha)
    return _range_rule(test, host, base, current, tolerance)


def _rank_test(test: str, host: str | None, base: Metric, current: Metric,
               tolerance: float, alpha: float) -> MetricChange:
    before, now = median_ci(base.samples), median_ci(current.samples)
    delta = now.median - before.median
    scale = abs(before.median) or 1.0
    band = tolerance * scale
    gated = base.gated and current.gated
    row = MetricChange(test, host, current.name, current.unit or base.unit, current.better,
                       before.median, now.median, _relative(delta, before.median), tolerance,
                       band, "tolerance", rule="rank test", base_ci=before, current_ci=now,
                       gated=gated)
    beyond = abs(delta) > band + 1e-12 * scale
    if not can_decide(before.n, now.n, alpha, "less"):
        if not beyond:
            return replace(row, note=f"within {tolerance:.0%} tolerance")
        return replace(row, verdict="inconclusive",
                       note=f"{before.n} vs {now.n} repetitions: p >= "
                       f"{smallest_p(before.n, now.n, 'less'):.2g}, cannot reach {alpha:g}")
    if not beyond:
        p = mann_whitney_p(base.samples, current.samples)
        note = (f"p={p:.3g}, not significant" if p >= alpha
                else f"p={p:.3g}, within {tolerance:.0%} tolerance")
        return replace(row, p_value=p, note=note)
    margin = MARGIN * tolerance
    p = beyond_margin_p(base.samples, current.samples, MARGIN * band, lower=delta < 0)
    if p < alpha:
        return replace(row, verdict=_verdict(_direction(delta, current.better), gated),
                       p_value=p, note=f"beyond {tolerance:.0%}; beyond {margin * 100:.3g}%: "
                       f"p={p:.3g} (one-sided), significant at {alpha:g}")
    return replace(row, p_value=p, note=f"beyond {tolerance:.0%}; beyond {margin * 100:.3g}%: "
                   f"p={p:.3g} (one-sided), not significant")


def _range_rule(test: str, host: str | None, base: Metric, current: Metric,
                tolerance: float) -> MetricChange:
    """The rule of reports without repetitions: the widest of the tolerance and either
    run's measured range is noise."""
    delta = current.value - base.value
    scale = abs(base.value) or 1.0  # a base of 0 has no scale: the tolerance is absolute
    band, band_from = tolerance * scale, "tolerance"
    for spread, source in ((base.spread, "base range"), (current.spread, "current range")):
        if spread > band:
            band, band_from = spread, source
    gated = base.gated and current.gated
    verdict: MetricVerdict = "within noise"
    if abs(delta) > band + 1e-12 * scale:
        verdict = _verdict(_direction(delta, current.better), gated)
    if not (base.samples or current.samples):
        missing = "neither run kept repetitions"
    else:
        missing = f"the {'base' if not base.samples else 'current'} run kept no repetitions"
    return MetricChange(test, host, current.name, current.unit or base.unit, current.better,
                        base.value, current.value, _relative(delta, base.value), tolerance,
                        band, band_from, verdict, "range", gated=gated,
                        note=f"{missing}: range rule")


def judge_history(test: str, host: str | None, history: Sequence[Metric], current: Metric,
                  tolerance: float, alpha: float = ALPHA) -> MetricChange:
    """One metric against several earlier runs (oldest first): outside what they show."""
    medians = [statistics.median(m.samples) if m.samples else m.value for m in history]
    center = statistics.median(medians)
    scale = abs(center) or 1.0
    spread = robust_spread(medians)
    band, band_from = tolerance * scale, "tolerance"
    if HISTORY_SPREADS * spread > band:
        band, band_from = HISTORY_SPREADS * spread, "history"
    pooled = [v for m in history for v in (m.samples or (m.value,))]
    now = median_ci(current.samples) if current.samples else None
    value = now.median if now else current.value
    delta = value - center
    gated = current.gated and all(m.gated for m in history)
    row = MetricChange(test, host, current.name, current.unit or history[-1].unit,
                       current.better, center, value, _relative(delta, center), tolerance,
                       band, band_from, rule="history", base_ci=median_ci(pooled),
                       current_ci=now, history_runs=len(history), gated=gated)
    shown = f"{len(history)} runs, medians {min(medians):.4g}-{max(medians):.4g}"
    worse = _verdict(_direction(delta, current.better), gated)
    if abs(delta) <= band + 1e-12 * scale:
        return replace(row, note=f"inside the history ({shown})")
    if now is None or not any(m.samples for m in history):
        return replace(row, verdict=worse,
                       note=f"outside the history ({shown}); no repetitions to test")
    if not can_decide(len(pooled), now.n, alpha):
        return replace(row, verdict="inconclusive",
                       note=f"{len(pooled)} vs {now.n} repetitions cannot reach {alpha:g}")
    p = mann_whitney_p(pooled, current.samples)
    if p >= alpha:
        return replace(row, p_value=p, note=f"outside the history ({shown}) but p={p:.3g}")
    return replace(row, verdict=worse, p_value=p,
                   note=f"outside the history ({shown}), p={p:.3g}")

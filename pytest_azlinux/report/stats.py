"""The statistics behind ``azl report compare``: medians, their confidence intervals, and a
rank test of two sets of repetitions (after Go's benchstat).

A change between two runs is called significant only when the Mann-Whitney U test over the
repetitions of both runs gives a p-value below ``ALPHA``; the test makes no assumption about
the shape of the noise (throughput on a loaded machine is skewed, with slow outliers). With
few repetitions no outcome of the test can reach ``ALPHA`` (2 against 2 gives at best
p = 0.33, 4 against 4 0.029, 5 against 5 0.008): such a pair is *inconclusive*, never a
regression.

The p-values come from SciPy (``scipy.stats.mannwhitneyu``: the exact distribution for
small samples without ties, the normal approximation with the tie correction otherwise;
imported on use, so writing a report never loads it); the interval from the binomial
distribution of order statistics, exact in integers.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# Significance level of the rank test. benchstat's 0.05 is for a person reading one table; a
# gate tests every metric of every host at once, and on the lab at 0.05 one unchanged pair of
# 45 showed a significant -31 % (p = 0.016) while the cut it must catch gave p = 0.008
# (docs/reports.md, docs/network.md). Settable per compare (--alpha, the config's alpha).
ALPHA = 0.01
CONFIDENCE = 0.95  # level of the confidence interval of a median


@dataclass(frozen=True, slots=True)
class MedianCI:
    """The median of repetitions and a distribution-free confidence interval around it.

    ``level`` is the confidence the interval really has: with fewer than 6 repetitions no
    pair of order statistics reaches 95 %, and the interval is then the whole range at the
    level it has (e.g. 94 % for 5 repetitions, 75 % for 3).
    """

    median: float
    low: float
    high: float
    n: int
    level: float

    def describe(self, unit: str = "") -> str:
        """``9.41 [8.9, 9.6] Gbit/s (n=5, 94% CI)``: what the Markdown and HTML show."""
        if self.n == 1:
            return f"{self.median:.4g} {unit} (n=1)".replace("  ", " ")
        return (f"{self.median:.4g} [{self.low:.4g}, {self.high:.4g}] {unit} "
                f"(n={self.n}, {self.level:.0%} CI)").replace("  ", " ")


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> MedianCI:
    """Median and the narrowest order-statistic interval ``[x(k), x(n-k+1)]`` whose coverage
    ``1 - 2 * P(Binomial(n, 1/2) < k)`` is at least ``confidence`` (or the full range, with
    its own coverage, when even that falls short)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    n = len(ordered)
    if n == 1:
        return MedianCI(ordered[0], ordered[0], ordered[0], 1, 0.0)
    k = 1
    level = _coverage(n, 1)
    while k + 1 <= (n + 1) // 2 and _coverage(n, k + 1) >= confidence:
        k += 1
        level = _coverage(n, k)
    return MedianCI(statistics.median(ordered), ordered[k - 1], ordered[n - k], n, level)


def _coverage(n: int, k: int) -> float:
    """Coverage of ``[x(k), x(n-k+1)]`` for the median of ``n`` values."""
    below = sum(math.comb(n, i) for i in range(k))  # P(Binomial(n, 1/2) < k), exactly
    return 1.0 - 2.0 * below / (1 << n)


Alternative = Literal["two-sided", "less", "greater"]  # how ``current`` lies against ``base``


def smallest_p(n: int, m: int, alternative: Alternative = "two-sided") -> float:
    """The smallest p-value the rank test can give for ``n`` against ``m`` repetitions
    (every value of one run beyond every value of the other)."""
    if n < 1 or m < 1:
        return 1.0
    sides = 2.0 if alternative == "two-sided" else 1.0
    return min(1.0, sides / math.comb(n + m, n))


def can_decide(n: int, m: int, alpha: float = ALPHA,
               alternative: Alternative = "two-sided") -> bool:
    """Whether ``n`` against ``m`` repetitions can show a significant difference at all
    (two-sided at 0.01: 5 against 5 yes, p >= 0.008; 4 against 4 no, p >= 0.029)."""
    return smallest_p(n, m, alternative) < alpha


def mann_whitney_p(base: Sequence[float], current: Sequence[float],
                   alternative: Alternative = "two-sided") -> float:
    """p-value of the Mann-Whitney U test (1.0 when all values are equal); ``less``: that
    ``current`` lies below ``base``."""
    if not base or not current:
        raise ValueError("both samples need values")
    if len(set(base) | set(current)) == 1:
        return 1.0  # no ranks to tell apart (SciPy would warn and return NaN)
    if len(set(base)) + len(set(current)) == len(base) + len(current) and \
            not set(base) & set(current):
        # No ties: the p-value depends only on the order in which the two runs' values
        # interleave, so SciPy's answer for that order is kept (5 against 5 have 252 orders;
        # a fleet's thousands of metrics then cost one SciPy call per order, not per metric).
        merged = sorted([(v, False) for v in base] + [(v, True) for v in current])
        return _p_of_order(tuple(now for _, now in merged), alternative)
    return _scipy_p(list(base), list(current), alternative)


def beyond_margin_p(base: Sequence[float], current: Sequence[float], margin: float,
                    lower: bool) -> float:
    """One-sided p-value that ``current`` lies more than ``margin`` (absolute) below
    ``base`` (``lower``) or above it: the rank test of ``current`` against ``base`` moved by
    the margin. Run-to-run drift (the load of a shared machine between two runs) moves every
    repetition of a run a little, which the plain test calls significant; this asks whether
    the repetitions show a change of a size that matters."""
    if lower:
        return mann_whitney_p([v - margin for v in base], current, "less")
    return mann_whitney_p([v + margin for v in base], current, "greater")


@functools.lru_cache(maxsize=4096)
def _p_of_order(order: tuple[bool, ...], alternative: Alternative) -> float:
    """The p-value of untied runs whose merged order is ``order`` (True: current run)."""
    ranks = list(range(len(order)))
    return _scipy_p([r for r, now in zip(ranks, order, strict=True) if not now],
                    [r for r, now in zip(ranks, order, strict=True) if now], alternative)


def _scipy_p(base: list[float], current: list[float], alternative: Alternative) -> float:
    from scipy.stats import mannwhitneyu  # imported on use: writing a report never needs it

    return float(mannwhitneyu(current, base, alternative=alternative, method="auto").pvalue)


def robust_spread(values: Sequence[float]) -> float:
    """1.4826 x the median absolute deviation: the standard deviation a normal sample would
    have, unmoved by one outlier (one noisy night in a history)."""
    if len(values) < 2:
        return 0.0
    center = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - center) for v in values)

"""``azl report compare`` on reports the plugin wrote with repetitions: the rank test, the
inconclusive verdict, a history of runs, reports written before repetitions were kept, and
the HTML page's verdict column.

The runs use the real plugin (pytester, ``local`` target); the values each test records are
repetitions recorded by the lab (``throughput_loopback_share`` of one pair in unchanged runs,
see tests/unit/test_compare_stats.py), handed to the test as its source, so every verdict is
known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

# Loaded before pytester snapshots sys.modules: numpy (under SciPy) cannot be imported a
# second time in one process, and pytester drops what a test imported when it ends.
import scipy.stats  # noqa: F401

from pytest_azlinux.cli import main
from pytest_azlinux.report.junit import read_cases

SHARE_RUN1 = (0.72382, 0.665641, 0.721091, 0.765714, 0.685442)
SHARE_RUN2 = (0.59298, 0.820307, 0.670563, 0.744145, 0.696508)
SHARE_RUN3 = (0.450849, 0.75348, 0.411862, 0.522771, 0.56629)
CUT = tuple(round(v * 0.7, 6) for v in SHARE_RUN2)  # the same noise, 30 % lower

SUITE = dedent(
    """
    import statistics

    def test_share(azl_host, azl_metric):
        values = {values}
        if {with_samples}:
            azl_metric("throughput_loopback_share", statistics.median(values), "ratio",
                       "higher", samples=values, gate=True, threshold="none", tolerance=0.2)
        else:  # what the plugin wrote before repetitions were kept
            azl_metric("throughput_loopback_share", statistics.median(values), "ratio",
                       "higher", spread=(min(values), max(values)), gate=True,
                       threshold="none", tolerance=0.2)
    """
)


def run(pytester: pytest.Pytester, name: str, values: tuple[float, ...],
        with_samples: bool = True) -> Path:
    out = pytester.path / name
    pytester.makepyfile(test_share=SUITE.format(values=values, with_samples=with_samples))
    result = pytester.runpytest("-p", "no:cacheprovider", "--azl-target", "local",
                                "--azl-junit-dir", str(out))
    assert result.ret == 0, result.stdout.str()
    return out


def azl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def share_row(text: str) -> str:
    (row,) = [line for line in text.splitlines()
              if "| throughput_loopback_share |" in line and "**" not in line][-1:]
    return row


def test_the_report_keeps_every_repetition(pytester: pytest.Pytester) -> None:
    out = run(pytester, "base", SHARE_RUN1)
    (xml,) = out.glob("*.xml")
    assert ('name="metric.throughput_loopback_share.values" '
            'value="0.72382,0.665641,0.721091,0.765714,0.685442"') in xml.read_text()
    ((metric,),) = [c.metrics for c in read_cases(xml)[1]]
    assert metric.samples == SHARE_RUN1 and metric.value == 0.721091
    assert (metric.low, metric.high) == (0.665641, 0.765714)  # the range, from the values


def test_unchanged_runs_compare_within_noise_with_medians_and_intervals(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    base, noisy, shifted = (run(pytester, "base", SHARE_RUN1), run(pytester, "noisy", SHARE_RUN2),
                            run(pytester, "shifted", SHARE_RUN3))
    code, text = azl(capsys, "report", "compare", str(base), str(noisy))
    assert code == 0 and "**OK**" in text
    row = share_row(text)
    assert "| 0.7211 [0.6656, 0.7657] ratio (n=5, 94% CI) | 0.6965 [0.593, 0.8203] ratio " \
           "(n=5, 94% CI) | -3.4% | rank test: p=1, not significant | within noise |" in row
    # -27.5 %, beyond the 20 % the test declared, but not significant (p = 0.095): not a gate
    code, text = azl(capsys, "report", "compare", str(base), str(shifted))
    assert code == 0, text
    assert ("| -27.5% | rank test: beyond 20%; beyond 10%: p=0.0754 (one-sided), not significant "
            "| within noise |") in share_row(text)


def test_a_significant_cut_beyond_the_tolerance_regresses(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    base, cut = run(pytester, "base", SHARE_RUN1), run(pytester, "cut", CUT)
    capsys.readouterr()
    code = main(["report", "compare", str(base), str(cut), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["regressed"]
    ((reg,),) = [i["metric_regressions"] for i in data["images"]]
    assert reg["verdict"] == "regression" and reg["rule"] == "rank test"
    assert reg["p_value"] == pytest.approx(1 / 252)  # every repetition lower by over 10 %
    assert reg["base_ci"]["n"] == 5 and reg["current_ci"]["median"] == 0.487556
    code, text = azl(capsys, "report", "compare", str(base), str(cut))
    assert code == 1 and "**Metric regressions** (1)" in text
    assert ("| -32.4% | rank test: beyond 20%; beyond 10%: p=0.00397 (one-sided), significant at "
            "0.01 | regression |") in text


def test_too_few_repetitions_are_inconclusive_and_do_not_fail_the_gate(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    base = run(pytester, "base", SHARE_RUN1[:3])
    halved = run(pytester, "halved", tuple(round(v / 2, 6) for v in SHARE_RUN1[:3]))
    code, text = azl(capsys, "report", "compare", str(base), str(halved))
    assert code == 0, text
    assert "**Inconclusive (beyond the tolerance, too few repetitions to tell; not a gate)** " \
           "(1)" in text
    assert "3 vs 3 repetitions: p >= 0.05, cannot reach 0.01 | inconclusive |" in text
    assert "1 metric value(s) compared (1 inconclusive)" in text


def test_a_history_of_runs_sets_the_bar(pytester: pytest.Pytester,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # the last night was the noisy one
    nights = [run(pytester, name, values) for name, values in
              (("n1", SHARE_RUN1), ("n2", SHARE_RUN2), ("n3", SHARE_RUN1), ("n4", SHARE_RUN3))]
    tonight = run(pytester, "tonight", SHARE_RUN2)
    cut = run(pytester, "cut", CUT)
    # Against the noisy night alone, tonight looks like +33 %: the history centres it.
    code, text = azl(capsys, "report", "compare", str(nights[-1]), str(tonight))
    assert "| +33.2% |" in share_row(text)
    code, text = azl(capsys, "report", "compare", *map(str, nights), str(tonight))
    assert code == 0, text
    assert "Metrics judged against a history of 4 runs" in text
    assert "inside the history (4 runs, medians 0.5228-0.7211)" in share_row(text)
    code, text = azl(capsys, "report", "compare", *map(str, nights), str(cut))
    assert code == 1
    row = share_row(text)
    assert "| 0.7088 ratio (median of 4 runs, 0.691 [0.6656, 0.7238] ratio (n=20, 96% CI) " \
           "pooled) |" in row
    assert "history: outside the history (4 runs, medians 0.5228-0.7211), p=0.00884;" in row
    assert row.endswith("| regression |")


def test_a_report_without_repetitions_compares_by_the_range_rule(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    old = run(pytester, "old", SHARE_RUN1, with_samples=False)
    cut = run(pytester, "cut", CUT)
    code, text = azl(capsys, "report", "compare", str(old), str(cut))
    assert code == 1  # -32 %: beyond the 20 % tolerance and both ranges (the widest here)
    assert ("the base run kept no repetitions: range rule, band ±0.1591 ratio (current range) "
            "| regression |") in share_row(text)


def test_the_html_page_shows_repetitions_intervals_and_the_verdict(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    base, cut = run(pytester, "base", SHARE_RUN1), run(pytester, "cut", CUT)
    page = pytester.path / "page.html"
    assert azl(capsys, "report", "html", str(cut), "--history", str(base),
               "--out", str(page))[0] == 0
    html = page.read_text()
    assert '<td class="num nowrap">[0.4151, 0.5742] 94%</td>' in html
    assert '<td class="num" title="0.4151, 0.5742, 0.4694, 0.5209, 0.4876">5</td>' in html
    assert ('title="beyond 20%; beyond 10%: p=0.00397 (one-sided), significant at 0.01">'
            'regression</td>') in html

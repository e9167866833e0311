"""The per-run HTML report, rendered in headless Chromium (Debian's ``chromium``).

A run with passes, failures, an infrastructure error, a waiver, a flaky test and metrics is
written by the real plugin (pytester, ``local`` target); the page the collector wrote and the
one ``azl report html --history`` writes are loaded in Chromium: the text a reader needs is
in the rendered DOM, the page's script ran (it marks ``<body data-ready>``), the console has
no errors, and a screenshot is kept under the test's tmp dir.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest

from pytest_azlinux.cli import main
from pytest_azlinux.report.compare import load_run
from pytest_azlinux.report.run_dir import HTML_GENERATOR, HTML_NAME

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium is not installed (.ci/apt-packages.txt)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
# Chromium logs page console messages as `... CONSOLE(12)] "Uncaught TypeError: ..."`.
CONSOLE_ERROR = re.compile(r"CONSOLE\(\d+\)\].*|Uncaught \w*Error")

SUITE = dedent(
    """
    import pytest
    from pytest_azlinux.errors import MeasurementError
    from pytest_azlinux.posture.findings import Finding, format_findings

    def test_identity(azl_host):
        pass

    def test_fips(azl_host):
        pytest.fail(format_findings(
            [Finding("fips", expected="fips=1", found="fips missing", source="/proc/cmdline")],
            "azl3-fips", "FIPS image"), pytrace=False)

    def test_iperf3_present(azl_host):
        raise MeasurementError("peer-9: iperf3 is not installed (command -v iperf3 failed)")

    def test_kernel_flavour(azl_host, record_property):
        # Stand-in for a waiver: its properties, then the skip it turns into.
        record_property("azl.waiver.reason", "lab hosts run Debian's kernel")
        record_property("azl.waiver.expires", "2027-01-31")
        record_property("azl.waiver.tracker", "https://tracker.invalid/azl/17")
        record_property("azl.waiver.finding", "kernel: expected 6.6.*, found 6.1.0-28")
        pytest.skip("waived until 2027-01-31: lab hosts run Debian's kernel")

    def test_reconnect(azl_host, record_property):
        record_property("azl.flaky", "2")

    def test_not_here(azl_host):
        pytest.skip("not applicable: no OS Guard on this image")

    def test_throughput(azl_host, azl_metric):
        azl_metric("throughput_gbps", {thr}, "Gbit/s", "higher", spread=({thr} - 0.2, {thr} + 0.3),
                   threshold="none")
        azl_metric("jitter_ms", 0.02, "ms", "lower")
    """
)


def run(pytester: pytest.Pytester, out: Path, thr: float) -> None:
    pytester.makepyfile(test_html_suite=SUITE.format(thr=thr))
    result = pytester.runpytest("-p", "no:cacheprovider", "--azl-target", "local",
                                "--azl-junit-dir", str(out))
    assert result.ret == 1, result.stdout.str()


def chromium(page: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    profile.mkdir(parents=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    )


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_ERROR.search(line)]


def rendered(page: Path, work: Path) -> str:
    """The DOM after the page's script ran; fails on any console error."""
    done = chromium(page, work, "--dump-dom")
    assert console_errors(done.stderr) == [], done.stderr
    return done.stdout


@needs_chromium
def test_console_errors_are_caught(tmp_path: Path) -> None:
    """The check used below does see a failing script."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>document.nothing.here = 1;</script></body></html>")
    done = chromium(page, tmp_path, "--dump-dom")
    assert console_errors(done.stderr), done.stderr


@needs_chromium
def test_html_report_renders_in_chromium(pytester: pytest.Pytester, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    nights = pytester.path / "nights"
    for night, thr in (("2026-11-26", 9.0), ("2026-11-27", 9.6)):
        run(pytester, nights / night, thr)
    out = pytester.path / "reports"
    run(pytester, out, 7.5)
    image = next(iter(load_run(out)))
    page = out / HTML_NAME  # written by the collector at the end of the run
    text = page.read_text()
    assert HTML_GENERATOR in text
    # Self-contained: nothing is loaded from anywhere (links only).
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=", text)
    assert "default-src 'none'" in text

    dom = rendered(page, tmp_path)
    rows = int(re.search(r'<body data-ready="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert rows >= 7  # the page's script ran and found the test rows
    for expected in (
        f"{image}", "FAIL 1 · ERROR 1 · PASS 3 · WAIVED 1 · FLAKY 1 · SKIP 1",
        "Failures and errors (2 in 2 checks)", "failed on 1 of 1 host",
        # the finding itself, and the infrastructure error with its host
        "profile azl3-fips: fips: expected fips=1, found fips missing",
        "peer-9: iperf3 is not installed",
        "Waived (1: failing, accepted by a waiver)",
        "until 2027-01-31: lab hosts run Debian's kernel (https://tracker.invalid/azl/17)",
        "kernel: expected 6.6.*, found 6.1.0-28",
        "Flaky (1: passed after infrastructure errors)",
        "throughput_gbps", "7.3 to 7.8", "▲ higher", "▼ lower", "no threshold",
        "1 measured without a threshold",
        "Image facts", "Hosts (1)",
    ):
        assert expected in dom, expected
    # Tests link to their host, the host lists its tests.
    assert re.search(r'href="#h-[^"]*-localhost"', dom)
    assert re.search(r'id="h-[^"]*-localhost"', dom)
    assert 'href="#t-' in dom
    assert "<polyline" not in dom  # no history given to the collector: no trends

    capsys.readouterr()
    trend_page = tmp_path / "with-history.html"
    assert main(["report", "html", str(out), "--history", str(nights), "--out",
                 str(trend_page)]) == 0
    dom = rendered(trend_page, tmp_path)
    assert "trends over 2 earlier run(s)" in dom
    # One sparkline per metric; its label carries the values, oldest first.
    assert "9 → 9.6 → 7.5" in dom
    assert dom.count("<polyline") == 2

    shot = tmp_path / "html-report.png"
    done = chromium(trend_page, tmp_path, "--window-size=1280,1800", f"--screenshot={shot}")
    assert console_errors(done.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    print(f"screenshot kept: {shot}")


def test_html_cli_bad_input_is_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "html", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("azl: error: ") and "no JUnit reports" in err
    assert len(err.strip().splitlines()) == 1

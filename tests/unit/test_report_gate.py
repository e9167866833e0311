"""What the report tools make of waived, flaky and hardening-control tests, of metrics with a
measured range, and of findings; the verdict lines; a run owning its report directory.

Reports are written by the real plugin (pytester, ``local`` target). Waivers, reruns and
controls are other features of the plugin: here a test stands in for them by recording the
properties they put on a test (``azl.waiver.*``, ``azl.flaky``, ``azl.control.*``) and, for a
waiver, skipping with the waiver's text, which is what the report tools read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from textwrap import dedent

import pytest

from pytest_azlinux.cli import main
from pytest_azlinux.report.compare import load_run
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.model import Metric
from pytest_azlinux.report.run_dir import HTML_NAME

GATE_SUITE = dedent(
    """
    import pytest
    from pytest_azlinux.posture.findings import Finding, format_findings

    def test_kernel(azl_host, record_property):
        if {waive_kernel}:
            # Stand-in for a waiver: the properties it records, then the skip it turns into.
            record_property("azl.waiver.reason", "lab hosts run Debian's kernel")
            record_property("azl.waiver.expires", "2027-01-31")
            record_property("azl.waiver.tracker", "https://tracker.invalid/azl/17")
            record_property("azl.waiver.owner", "image-team")
            record_property("azl.waiver.finding", "kernel: expected 6.6.*, found 6.1.0-28")
            pytest.skip("waived until 2027-01-31: lab hosts run Debian's kernel")

    def test_flaky(azl_host, record_property):
        record_property("azl.flaky", "2")  # stand-in for a rerun that passed on attempt 2

    def test_posture(azl_host):
        if {posture_fails}:
            pytest.fail(format_findings(
                [Finding("fips", expected="fips=1 on the kernel command line",
                         found="fips missing", source="/proc/cmdline")],
                "azl3-fips", "FIPS image"), pytrace=False)

    @pytest.mark.parametrize("control,severity", [
        ("AZL-SSH-01", "high"), ("AZL-SSH-02", "medium"), ("AZL-LOG-01", "low"),
        ("AZL-NA-01", "low")])
    def {control_test}(azl_host, record_property, control, severity):
        record_property("azl.control.id", control)
        record_property("azl.control.severity", severity)
        if control == "AZL-NA-01":
            pytest.skip("not applicable: no auditd on this image")
        assert control not in {failing_controls}, (
            f"{{control}}: expected PermitRootLogin no, found yes")

    def test_throughput(azl_host, azl_metric):
        azl_metric("throughput_gbps", {thr}, "Gbit/s", "higher", spread=({low}, {high}),
                   gate=True, threshold="none", tolerance={tolerance})
        azl_metric("probe_ms", {probe}, "ms", "lower")  # a run time: not a gate
    """
)


def gate_run(pytester: pytest.Pytester, out: Path, *, waive_kernel: bool = False,
             posture_fails: bool = False, control_test: str = "test_control",
             failing_controls: tuple[str, ...] = (), thr: float = 10.0,
             spread: tuple[float, float] = (9.5, 10.5), probe: float = 50.0,
             tolerance: float | None = None, conftest: str = "") -> pytest.RunResult:
    pytester.makepyfile(test_gate=GATE_SUITE.format(
        waive_kernel=waive_kernel, posture_fails=posture_fails, control_test=control_test,
        failing_controls=set(failing_controls) or "()", thr=thr, low=spread[0],
        high=spread[1], probe=probe, tolerance=tolerance))
    if conftest:
        pytester.makeconftest(conftest)
    result = pytester.runpytest("-p", "no:cacheprovider", "--azl-target", "local",
                                "--azl-junit-dir", str(out))
    assert result.ret in (0, 1), result.stdout.str()
    return result


def azl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def cases(directory: Path) -> dict[str, object]:
    (path,) = directory.glob("*.xml")
    return {c.name.split("[")[0] + (f"[{c.name.split('[')[1]}" if "[" in c.name else ""): c
            for c in read_cases(path)[1]}


def test_waived_test_is_written_as_a_waived_skip_with_its_properties(
        pytester: pytest.Pytester) -> None:
    out = pytester.path / "run"
    gate_run(pytester, out, waive_kernel=True)
    (path,) = out.glob("*.xml")
    xml = path.read_text()
    assert '<skipped message="waived until 2027-01-31: lab hosts run Debian\'s kernel" ' \
           'type="azl.waived"' in xml or 'type="azl.waived"' in xml
    kernel = next(c for c in read_cases(path)[1] if c.name.startswith("test_kernel"))
    assert kernel.outcome == "waived"
    assert kernel.properties["azl.waiver.reason"] == "lab hosts run Debian's kernel"
    assert kernel.waiver_text() == ("until 2027-01-31: lab hosts run Debian's kernel "
                                    "(https://tracker.invalid/azl/17) [owner image-team]")
    # Standard readers see a skip: the suite counts it as skipped.
    assert 'skipped="2"' in xml  # the waived test and the not-applicable control


def test_summary_counts_waived_flaky_and_shows_findings_and_scores(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    out = pytester.path / "run"
    gate_run(pytester, out, waive_kernel=True, posture_fails=True,
             failing_controls=("AZL-SSH-02",))
    code, text = azl(capsys, "report", "summary", str(out))
    assert code == 0
    image = next(iter(load_run(out)))
    # image | result | passed | failed | errors | waived | flaky | skipped
    assert f"| {image} | ❌ failed | 4 | 2 | 0 | 1 | 1 | 1 | localhost |" in text
    # The finding itself, not "profile azl3-fips: 1 finding".
    assert ("profile azl3-fips: fips: expected fips=1 on the kernel command line, "
            "found fips missing") in text
    assert "AZL-SSH-02: expected PermitRootLogin no, found yes" in text
    assert "**Waived** (1: failing, accepted by a waiver)" in text
    assert ("until 2027-01-31: lab hosts run Debian's kernel (https://tracker.invalid/azl/17)"
            " [owner image-team] | kernel: expected 6.6.*, found 6.1.0-28 |") in text
    assert "**Flaky** (1: passed after infrastructure errors)" in text
    # Skipped controls do not apply; the failing medium one counts against its severity.
    assert ("**Hardening score** (controls passed / applicable): high 1/1, medium 0/1, "
            "low 1/1, all 2/3") in text
    assert "1 measured without a threshold" in text
    assert "| throughput_gbps | 10 Gbit/s | 9.5 to 10.5 | higher | no threshold |" in text


def test_compare_shows_passed_to_waived_and_flaky_counts(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    base, cur = pytester.path / "base", pytester.path / "cur"
    gate_run(pytester, base)
    gate_run(pytester, cur, waive_kernel=True)
    code, text = azl(capsys, "report", "compare", str(base), str(cur), "--json")
    assert code == 0  # a waiver is not a regression...
    (image,) = json.loads(text)["images"]
    assert image["waived"] == [0, 1] and image["flaky"] == [1, 1]
    (waived,) = image["newly_waived"]  # ...but it is never hidden
    assert waived["base"] == "passed" and waived["current"] == "waived"
    assert "lab hosts run Debian's kernel" in waived["message"]
    code, text = azl(capsys, "report", "compare", str(base), str(cur))
    assert "**Newly waived (failing, accepted by a waiver)** (1)" in text
    assert "| passed | waived | until 2027-01-31: lab hosts run Debian's kernel" in text
    assert "waived 0 → 1, flaky 1 (before → now)" in text


def test_compare_treats_a_control_failing_again_as_a_regression(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Matched by control id and host, so a renamed test still counts."""
    base, cur = pytester.path / "base", pytester.path / "cur"
    gate_run(pytester, base, control_test="test_control")
    gate_run(pytester, cur, control_test="test_hardening_control",
             failing_controls=("AZL-SSH-01",))
    code, text = azl(capsys, "report", "compare", str(base), str(cur), "--json")
    assert code == 1
    (image,) = json.loads(text)["images"]
    (again,) = image["control_regressions"]
    assert "test_hardening_control[" in again["test"] and "AZL-SSH-01" in again["test"]
    assert again["base"] == "passed" and again["current"] == "failed"
    assert again["message"] == ("AZL-SSH-01 (high): AssertionError: AZL-SSH-01: expected "
                                "PermitRootLogin no, found yes")
    assert [c["test"] for c in image["new_failures"]] == [again["test"]]  # counted once
    code, text = azl(capsys, "report", "compare", str(base), str(cur))
    assert "**Hardening controls that passed before (among the new failures)** (1)" in text


# How compare says it judged reports without repetitions (written before they were kept).
RANGE = "neither run kept repetitions: range rule, band "


def test_compare_is_noise_aware(pytester: pytest.Pytester,
                                capsys: pytest.CaptureFixture[str]) -> None:
    base, noisy, cut = (pytester.path / n for n in ("base", "noisy", "cut"))
    gate_run(pytester, base, thr=10.0, spread=(9.0, 11.0), probe=50.0)
    # -8 %: beyond a 5 % tolerance but inside the measured range of both runs.
    gate_run(pytester, noisy, thr=9.2, spread=(8.0, 11.0), probe=150.0)
    gate_run(pytester, cut, thr=7.0, spread=(6.8, 7.2), probe=50.0)  # a 30 % cut
    code, text = azl(capsys, "report", "compare", str(base), str(noisy), "--tolerance", "0.05")
    assert code == 0, text
    assert ("| throughput_gbps | higher | 10 Gbit/s | 9.2 Gbit/s | -8.0% | "
            f"{RANGE}±3 Gbit/s (current range) | within noise |") in text
    # The probe's run time tripled: shown, but a duration is not a gate.
    assert f"| probe_ms | lower | 50 ms | 150 ms | +200.0% | {RANGE}±2.5 ms (5% tolerance) | " \
           "worse, not a gate |" in text
    code, text = azl(capsys, "report", "compare", str(base), str(cut), "--tolerance", "0.05")
    assert code == 1
    assert ("| throughput_gbps | higher | 10 Gbit/s | 7 Gbit/s | -30.0% | "
            f"{RANGE}±2 Gbit/s (base range) | regression |") in text


def test_compare_takes_the_noise_a_metric_declares(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """The lab declares 20 % for its throughput share: -15 % is noise there, -30 % is not;
    the declared tolerance travels in the report (written by the run, read by compare)."""
    base, noisy, cut = (pytester.path / n for n in ("base", "noisy", "cut"))
    gate_run(pytester, base, thr=10.0, spread=(9.9, 10.1), tolerance=0.2)
    gate_run(pytester, noisy, thr=8.5, spread=(8.4, 8.6), tolerance=0.2)
    gate_run(pytester, cut, thr=7.0, spread=(6.9, 7.1), tolerance=0.2)
    (image,) = load_run(noisy).values()
    (thr,) = [m for c in image.cases.values() for m in c.metrics if m.name == "throughput_gbps"]
    assert thr.tolerance == 0.2
    code, text = azl(capsys, "report", "compare", str(base), str(noisy))
    assert code == 0, text
    assert ("| throughput_gbps | higher | 10 Gbit/s | 8.5 Gbit/s | -15.0% | "
            f"{RANGE}±2 Gbit/s (20% tolerance) | within noise |") in text
    code, text = azl(capsys, "report", "compare", str(base), str(cut))
    assert code == 1 and f"| -30.0% | {RANGE}±2 Gbit/s (20% tolerance) | regression |" in text
    # without a declared tolerance, compare's own 10 % decides
    gate_run(pytester, base, thr=10.0, spread=(9.9, 10.1))
    gate_run(pytester, noisy, thr=8.5, spread=(8.4, 8.6))
    code, text = azl(capsys, "report", "compare", str(base), str(noisy))
    assert code == 1 and f"| -15.0% | {RANGE}±1 Gbit/s (10% tolerance) | regression |" in text


def test_metric_gate_defaults() -> None:
    assert Metric("escape_probe_ms", 5, "ms").gated is False  # a duration
    assert Metric("fio_read_lat_ms", 5, "ms", gate=True).gated is True  # declared a gate
    assert Metric("throughput_gbps", 5, "Gbit/s").gated is True
    assert Metric("retransmits", 5, "count", gate=False).gated is False


VERDICT_CONFTEST = dedent(
    """
    from pytest_azlinux.runstate import WRITTEN_KEY
    from pytest_azlinux.report.verdict import verdict_lines

    def pytest_terminal_summary(terminalreporter, config):
        reports = config.stash.get(WRITTEN_KEY, None) or []
        html = reports[0].path.parent / "index.html" if reports else None
        for line in verdict_lines(reports, html):
            terminalreporter.line("VERDICT " + line)
    """
)


def test_verdict_lines_at_the_end_of_a_run(pytester: pytest.Pytester) -> None:
    out = pytester.path / "run"
    result = gate_run(pytester, out, waive_kernel=True, posture_fails=True,
                      conftest=VERDICT_CONFTEST)
    image = next(iter(load_run(out)))
    lines = [line[len("VERDICT "):] for line in result.outlines if line.startswith("VERDICT ")]
    assert lines[0] == (f"{image}: FAIL 1 · PASS 5 · WAIVED 1 · FLAKY 1 · SKIP 1 "
                        "(1 measured without a threshold)")
    assert lines[1] == ("    test_gate.py::test_posture[localhost]: profile azl3-fips: fips: "
                        "expected fips=1 on the kernel command line, found fips missing")
    assert lines[-1] == f"reports: {out}/ (open {out / HTML_NAME})"
    result = gate_run(pytester, pytester.path / "ok", conftest=VERDICT_CONFTEST)
    lines = [line for line in result.outlines if line.startswith("VERDICT ")]
    assert lines[0] == f"VERDICT {image}: PASS 7 · FLAKY 1 · SKIP 1 " \
                       "(1 measured without a threshold)"


def test_a_run_owns_its_report_directory(pytester: pytest.Pytester,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Files an earlier run of the plugin wrote go; everything else stays."""
    out = pytester.path / "reports"
    gate_run(pytester, out)
    (first,) = out.glob("*.xml")
    stale = out / "azurelinux-2.0.old.xml"
    stale.write_text(first.read_text().replace(f'"{first.stem}"', '"azurelinux-2.0.old"'))
    foreign = out / "other-tool.xml"
    pytester.makepyfile(test_other="def test_x():\n    pass\n")
    assert pytester.runpytest("test_other.py", "-p", "no:cacheprovider",
                              f"--junitxml={foreign}").ret == 0
    notes = out / "notes.txt"
    notes.write_text("kept\n")
    (out / "shard-1").mkdir()
    shutil.copy(first, out / "shard-1" / first.name)
    assert "azurelinux-2.0.old" in load_run(out)  # would be mixed into the next run
    (pytester.path / "test_other.py").unlink()
    gate_run(pytester, out)
    assert not stale.exists()
    assert foreign.exists() and notes.exists() and (out / "shard-1" / first.name).exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [first.name, f"{first.stem}.image.json", HTML_NAME, "notes.txt", "other-tool.xml",
         "shard-1"])
    assert "azurelinux-2.0.old" not in (out / HTML_NAME).read_text()

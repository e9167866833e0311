"""azl report compare / summary / trend / merge and the GitHub publisher, on reports written
by the real plugin (pytester runs against the ``local`` target)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from textwrap import dedent

import pytest

# Imported here, before any pytester snapshot of sys.modules: pytester drops modules imported
# during a test, and matplotlib's extension modules cannot be loaded twice in one process.
from matplotlib import figure as _figure  # noqa: F401 - loaded once, see above
from matplotlib import image as mpimg
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pytest_azlinux.cli import main
from pytest_azlinux.report.collector import ImageReport
from pytest_azlinux.report.compare import load_run
from pytest_azlinux.report.github import escape_data, escape_property, publish
from pytest_azlinux.report.junit import read_cases

SUITE = dedent(
    """
    import pytest

    def test_throughput(azl_host, azl_metric):
        azl_metric("throughput_gbps", {thr}, "Gbit/s")
        # A latency the suite declares a gate; the probe's run time is a duration, not one.
        azl_metric("latency_ms", {lat}, "ms", better="lower", gate=True)
        azl_metric("probe_ms", {probe}, "ms", better="lower")

    def test_state(azl_host):
        assert {state_ok}, "state is broken: found 3 stray units"
    {extra}
    """
)


def run_suite(pytester: pytest.Pytester, out: Path, *, thr: float = 10.0, lat: float = 1.0,
              probe: float = 50.0, state_ok: bool = True, extra: str = "",
              args: tuple[str, ...] = (), targets: str | None = None) -> pytest.RunResult:
    pytester.makepyfile(test_suite=SUITE.format(thr=thr, lat=lat, probe=probe,
                                                state_ok=state_ok, extra=extra))
    opts = ["-p", "no:cacheprovider", "--azl-junit-dir", str(out)]
    if targets is None:
        opts += ["--azl-target", "local"]
    result = pytester.runpytest(*opts, *args)
    assert result.ret in (0, 1), result.stdout.str()
    assert list(out.glob("*.xml")), "the plugin wrote no report"
    return result


def azl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what in-process pytester runs printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def compare_json(capsys: pytest.CaptureFixture[str], base: Path, cur: Path,
                 *extra: str) -> tuple[int, dict[str, object]]:
    code, out, _ = azl(capsys, "report", "compare", str(base), str(cur), "--json", *extra)
    return code, json.loads(out)


# -- compare ----------------------------------------------------------------------------------
def test_compare_same_values_exits_zero(pytester: pytest.Pytester,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base, cur = pytester.path / "base", pytester.path / "cur"
    run_suite(pytester, base)
    run_suite(pytester, cur)
    code, data = compare_json(capsys, base, cur)
    assert code == 0
    (image,) = data["images"]  # type: ignore[misc]
    assert image["metrics_compared"] == 3
    assert not image["metric_regressions"] and not image["new_failures"]
    assert data["regressed"] is False


def test_compare_flags_throughput_drop_and_exits_one(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = pytester.path / "base", pytester.path / "cur"
    run_suite(pytester, base, thr=10.0)
    run_suite(pytester, cur, thr=8.0)  # higher is better: -20 % is a regression
    code, data = compare_json(capsys, base, cur)
    assert code == 1
    (image,) = data["images"]  # type: ignore[misc]
    (reg,) = image["metric_regressions"]
    assert reg["metric"] == "throughput_gbps" and reg["better"] == "higher"
    assert reg["base"] == 10.0 and reg["current"] == 8.0
    assert reg["change"] == pytest.approx(-0.2)
    assert reg["test"].endswith("test_throughput[localhost]")
    code, out, _ = azl(capsys, "report", "compare", str(base), str(cur))
    assert code == 1
    assert "**REGRESSED**" in out
    # reports without repetitions: the range rule, said in the row
    assert ("| throughput_gbps | higher | 10 Gbit/s | 8 Gbit/s | -20.0% | neither run kept "
            "repetitions: range rule, band ±1 Gbit/s (10% tolerance) | regression |") in out


def test_compare_uses_each_metrics_own_direction(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    base, worse, better = (pytester.path / n for n in ("base", "worse", "better"))
    run_suite(pytester, base, thr=10.0, lat=1.0)
    run_suite(pytester, worse, thr=10.0, lat=1.5)  # lower is better: latency up 50 %
    run_suite(pytester, better, thr=12.0, lat=0.5)  # both improved well beyond 10 %
    code, data = compare_json(capsys, base, worse)
    assert code == 1
    regs = data["images"][0]["metric_regressions"]  # type: ignore[index]
    assert [(r["metric"], r["better"]) for r in regs] == [("latency_ms", "lower")]
    code, data = compare_json(capsys, base, better)
    assert code == 0
    image = data["images"][0]  # type: ignore[index]
    assert not image["metric_regressions"]
    assert sorted(m["metric"] for m in image["metric_improvements"]) == [
        "latency_ms", "throughput_gbps"]


def test_compare_tolerance_from_config(pytester: pytest.Pytester,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base, cur = pytester.path / "base", pytester.path / "cur"
    run_suite(pytester, base, thr=10.0)
    run_suite(pytester, cur, thr=9.2)  # -8 %: inside the default 10 %
    assert compare_json(capsys, base, cur)[0] == 0
    config = pytester.path / "tol.yaml"
    config.write_text("tolerances:\n  throughput_gbps: 0.05\n  default: 0.10\n")
    code, data = compare_json(capsys, base, cur, "--config", str(config))
    assert code == 1
    (reg,) = data["images"][0]["metric_regressions"]  # type: ignore[index]
    assert reg["tolerance"] == 0.05
    config.write_text("tolerances:\n  default: 0.01\n")  # the default applies to every metric
    assert compare_json(capsys, base, cur, "--config", str(config))[0] == 1
    assert compare_json(capsys, base, cur, "--tolerance", "0.09")[0] == 0


def test_compare_new_fixed_removed_and_still_failing(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = pytester.path / "base", pytester.path / "cur"
    old = "\ndef test_old(azl_host):\n    pass\n"
    new = "\ndef test_new(azl_host):\n    assert 0, 'new check found 2 problems'\n"
    run_suite(pytester, base, state_ok=False, extra=old)
    run_suite(pytester, cur, state_ok=True, extra=new)
    code, data = compare_json(capsys, base, cur)
    assert code == 1  # a new test that fails is a new failure
    image = data["images"][0]  # type: ignore[index]
    names = {k: [c["test"].split("::")[-1] for c in image[k]]
             for k in ("new_failures", "fixed", "still_failing", "new_tests", "removed_tests")}
    assert names == {
        "new_failures": ["test_new[localhost]"],
        "fixed": ["test_state[localhost]"],
        "still_failing": [],
        "new_tests": ["test_new[localhost]"],
        "removed_tests": ["test_old[localhost]"],
    }
    assert "new check found 2 problems" in image["new_failures"][0]["message"]
    # Failing in both runs: listed as still failing, not a regression.
    again = pytester.path / "again"
    run_suite(pytester, again, state_ok=False, extra=old)
    code, data = compare_json(capsys, base, again)
    assert code == 0
    assert [c["current"] for c in data["images"][0]["still_failing"]] == ["failed"]  # type: ignore[index]


def test_compare_pairs_a_new_image_version_with_the_previous_one(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = pytester.path / "base", pytester.path / "cur"
    run_suite(pytester, base, thr=10.0)
    run_suite(pytester, cur, thr=5.0)
    (report,) = cur.glob("*.xml")
    # The nightly tests a newer image of the same lineage: rename the current image.
    text = report.read_text()
    name = load_run(cur).popitem()[0]
    report.write_text(text.replace(f'"{name}"', f'"{name}.next"'))
    code, data = compare_json(capsys, base, cur)
    assert code == 1
    image = data["images"][0]  # type: ignore[index]
    assert (image["image"], image["base_image"]) == (f"{name}.next", name)
    assert image["metric_regressions"][0]["metric"] == "throughput_gbps"


def test_compare_bad_input_exits_two_with_one_line(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    good = pytester.path / "good"
    run_suite(pytester, good)
    empty = pytester.path / "empty"
    empty.mkdir()
    text = pytester.path / "notes.xml"
    text.write_text("this is not xml\n")
    foreign = pytester.path / "pom.xml"
    foreign.write_text("<project><x/></project>\n")
    bad_config = pytester.path / "tol.yaml"
    bad_config.write_text("tolerances:\n  throughput_gbps: fast\n")
    cases = [
        ((str(pytester.path / "missing"), str(good)), "missing: no such file or directory"),
        ((str(empty), str(good)), "no JUnit reports (*.xml) in this directory"),
        ((str(good), str(text)), "notes.xml: not a JUnit report (not XML)"),
        ((str(good), str(foreign)), "pom.xml: not a JUnit report"),
        ((str(good), str(good), "--config", str(bad_config)),
         "tol.yaml: tolerances.throughput_gbps: expected a number >= 0"),
    ]
    for argv, expected in cases:
        code, out, err = azl(capsys, "report", "compare", *argv)
        assert code == 2, argv
        assert out == ""
        assert err.startswith("azl: error: ") and expected in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- summary and GitHub -----------------------------------------------------------------------
def test_summary_table_per_image(pytester: pytest.Pytester,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = pytester.path / "run"
    run_suite(pytester, out_dir, thr=9.41, state_ok=False)
    code, out, _ = azl(capsys, "report", "summary", str(out_dir))
    assert code == 0
    image = load_run(out_dir).popitem()[0]
    assert f"| {image} | ❌ failed | 1 | 1 | 0 | 0 | 0 | 0 | localhost |" in out
    assert "state is broken: found 3 stray units" in out
    assert "| throughput_gbps | 9.41 Gbit/s |  | higher |  |" in out
    assert "| latency_ms | 1 ms |  | lower |  |" in out
    target = pytester.path / "summary.md"
    assert azl(capsys, "report", "summary", str(out_dir), "--out", str(target))[0] == 0
    assert target.read_text() == out


def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("img: a,b%") == "img%3A a%2Cb%25"


def test_github_publish(pytester: pytest.Pytester) -> None:
    out_dir = pytester.path / "run"
    run_suite(pytester, out_dir, state_ok=False)
    (path,) = out_dir.glob("*.xml")
    reports = [ImageReport(path.stem, path, {"passed": 1, "failed": 1, "error": 0,
                                             "skipped": 0})]
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    stream = io.StringIO()
    assert not publish(reports, env={}, stream=stream)
    assert stream.getvalue() == "" and summary.read_text() == "earlier step\n"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert publish(reports, env=env, stream=stream)
    text = summary.read_text()
    assert text.startswith("earlier step\n## azl test reports")  # appended, not replaced
    assert "state is broken" in text
    lines = stream.getvalue().splitlines()
    assert lines[0] == ""  # starts a fresh line after pytest's progress output
    (annotation,) = [line for line in lines if line.startswith("::error ")]
    title, message = annotation[len("::error title="):].split("::", 1)
    # One annotation per failing check, its findings counted with their hosts.
    assert title == f"{path.stem}%3A test_state failed on 1 of 1 host"
    assert message.startswith("1 x AssertionError: state is broken: found 3 stray units")
    assert message.endswith("(localhost)")
    assert "\n" not in message


def test_plugin_publishes_in_github_actions(pytester: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_suite(pytester, pytester.path / "run", state_ok=False)
    assert "state is broken: found 3 stray units" in summary.read_text()
    errors = [line for line in result.outlines if line.startswith("::error title=")]
    assert len(errors) == 1 and "test_state failed on 1 of 1 host::1 x AssertionError" in errors[0]
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    summary.unlink()
    result = run_suite(pytester, pytester.path / "again", state_ok=False)
    assert not summary.exists()
    assert not [line for line in result.outlines if "::error" in line]


# -- trend ------------------------------------------------------------------------------------
def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_trend_png(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_azlinux.report.trend import collect_series, load_runs

    nights = pytester.path / "nights"
    values = {"2026-11-26": 9.0, "2026-11-27": 9.5, "2026-11-28": 7.0}
    for night, thr in values.items():
        run_suite(pytester, nights / night, thr=thr)
    out = pytester.path / "charts" / "trend.png"
    code, text, _ = azl(capsys, "report", "trend", str(nights), "--out", str(out))
    assert code == 0 and "3 series over 3 runs" in text
    width, height = png_size(out)
    assert (width, height) == (1200, 1080)  # three metric panels
    pixels = mpimg.imread(out)
    assert pixels.shape[:2] == (height, width)
    assert (pixels[..., :3] < 0.5).any()  # something was drawn
    runs = load_runs([nights])
    assert [r.label for r in runs] == sorted(values)  # subdirectories in name order
    (series,) = collect_series(runs, ["throughput_gbps"])
    assert series.values == list(values.values()) and series.points == 3
    one = pytester.path / "one.png"
    code, text, _ = azl(capsys, "report", "trend", *(str(nights / n) for n in values),
                        "--metric", "throughput_gbps", "--out", str(one))
    assert code == 0 and "1 series over 3 runs" in text
    assert png_size(one) == (1200, 360)
    code, _, err = azl(capsys, "report", "trend", str(nights), "--metric", "nope",
                       "--out", str(one))
    assert code == 2 and "no metrics named nope in the 3 run(s) given" in err


def test_trend_lines_look_distinct_and_title_has_its_own_room() -> None:
    """12 lines in one panel: 12 colours; the figure title does not overlap the first panel."""
    from pytest_azlinux.report.trend import Run, Series, build_figure, line_style

    styles = [line_style(i) for i in range(40)]
    assert len({colour for colour, _, _ in styles[:20]}) == 20
    assert len(set(styles)) == 40  # beyond 20, dash or marker tell them apart
    runs = [Run(f"night-{i}", {}) for i in range(5)]
    series = [Series("img", f"test_tcp[h{i}->h{i + 1}]", "throughput_gbps", "Gbit/s", "higher",
                     [float(i + n) for n in range(5)]) for i in range(12)]
    series += [Series("img", "test_udp[h0->h1]", "loss_pct", "%", "lower", [0.0] * 5)]
    fig = build_figure(runs, series, title="a long title " * 6)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    first, throughput = fig.axes[0], fig.axes[1]  # panels in metric name order
    colours = {line.get_color() for line in throughput.get_lines()}
    assert len(throughput.get_lines()) == 12 and len(colours) == 12
    title = fig._suptitle.get_window_extent(renderer)  # type: ignore[union-attr]
    panel_title = first.title.get_window_extent(renderer)
    panel = first.get_window_extent(renderer)
    assert title.y0 >= panel_title.y1 and title.y0 >= panel.y1, (title, panel_title, panel)


# -- shards and merge -------------------------------------------------------------------------
TARGETS = dedent(
    """
    targets:
      t-c: {kind: local, name: host-c}
      t-a: {kind: local, name: host-a}
      t-d: {kind: local, name: host-d}
      t-b: {kind: local, name: host-b}
      t-e: {kind: local, name: host-e}
    """
)


def hosts_of(directory: Path) -> list[str]:
    hosts: list[str] = []
    for path in directory.glob("*.xml"):
        _, cases = read_cases(path)
        hosts += [c.host for c in cases if c.host]
    return hosts


def case_outcomes(directory: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in directory.glob("*.xml"):
        out.update({c.nodeid: c.outcome for c in read_cases(path)[1]})
    return out


def test_shards_cover_every_host_once_and_merge_to_the_full_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makefile(".yaml", **{"azl-targets": TARGETS})
    names = ["t-c,t-a,t-d,t-b,t-e"]
    full, s1, s2, merged = (pytester.path / n for n in ("full", "s1", "s2", "merged"))
    run_suite(pytester, full, targets="x", args=("--azl-target", *names))
    run_suite(pytester, s1, targets="x", args=("--azl-target", *names, "--azl-shard", "1/2"))
    # Another order of the targets must not change the split.
    run_suite(pytester, s2, targets="x",
              args=("--azl-target", "t-e,t-d,t-c,t-b,t-a", "--azl-shard", "2/2"))
    h1, h2 = hosts_of(s1), hosts_of(s2)
    assert set(h1) == {"host-a", "host-c", "host-e"}  # every 2nd of (target, host) sorted
    assert set(h2) == {"host-b", "host-d"}
    assert not set(h1) & set(h2)
    assert sorted(set(h1) | set(h2)) == sorted(set(hosts_of(full)))
    code, _, err = azl(capsys, "report", "merge", str(merged), str(s1), str(s2))
    assert code == 0, err
    assert case_outcomes(merged) == case_outcomes(full)
    assert len(case_outcomes(full)) == 10
    props, cases = read_cases(next(merged.glob("*.xml")))
    (suite,) = props.values()
    assert suite["azl.hosts"] == "host-a,host-b,host-c,host-d,host-e"
    assert suite["azl.target"] == "t-a,t-b,t-c,t-d,t-e"
    assert suite["azl.shards"] == "2"
    assert all(c.host for c in cases)
    thr = [m for c in cases for m in c.metrics if m.name == "throughput_gbps"]
    assert len(thr) == 5 and {m.unit for m in thr} == {"Gbit/s"}
    # The merged file is a valid report for the other tools: counts recomputed.
    xml = next(merged.glob("*.xml")).read_text()
    assert 'tests="10"' in xml and 'failures="0"' in xml
    assert azl(capsys, "report", "compare", str(full), str(merged))[0] == 0
    # The shards' image records become one: every host, one package list for all of them.
    [record] = merged.glob("*.image.json")
    doc = json.loads(record.read_text())
    assert sorted(doc["hosts"]) == ["host-a", "host-b", "host-c", "host-d", "host-e"]
    assert len(doc["package_lists"]) == 1
    code, out, _ = azl(capsys, "report", "diff", str(full), str(merged))
    assert code == 0 and "no difference" in out


def test_merge_conflicting_outcomes(pytester: pytest.Pytester,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    a, b, merged = (pytester.path / n for n in ("a", "b", "merged"))
    run_suite(pytester, a, state_ok=True)
    run_suite(pytester, b, state_ok=False)  # the same host in two shards, different outcome
    code, _, err = azl(capsys, "report", "merge", str(merged), str(a), str(b))
    assert code == 0
    assert "test_state[localhost] differs between shards" in err and "kept failed" in err
    _, cases = read_cases(next(merged.glob("*.xml")))
    state = next(c for c in cases if c.name == "test_state[localhost]")
    assert state.outcome == "failed"  # the worst outcome is kept
    assert state.properties["azl.merge.conflict"] == f"{a}: passed; {b}: failed"
    code, _, err = azl(capsys, "report", "merge", str(pytester.path / "strict"), str(a),
                       str(b), "--strict")
    assert code == 2 and "has different outcomes in the shards" in err
    code, _, err = azl(capsys, "report", "merge", str(a), str(a), str(b))
    assert code == 2 and "the output directory cannot also be a shard" in err
    code, _, err = azl(capsys, "report", "merge", str(merged), str(pytester.path / "gone"))
    assert code == 2 and "gone: no such file or directory" in err

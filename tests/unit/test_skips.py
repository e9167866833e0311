"""Skipped tests grouped by reason (``report/skips.py``) and where the groups are shown: the
verdict lines and the Markdown summary (the GitHub step summary).

The reasons are the product's own skip texts: the hardening baseline's on the built-in lab
target (``hardening/baseline.skip_reason`` with the lab's ``suites.hardening.skip`` from
``targets.BUILTIN_TARGETS``), and suites' skips naming their host.
"""

from __future__ import annotations

from pathlib import Path

from pytest_azlinux.report.collector import ImageReport
from pytest_azlinux.report.compare import ImageRun
from pytest_azlinux.report.model import PROP_CONTROL_ID, CaseRecord
from pytest_azlinux.report.skips import Skip, group_skips, skip_lines, skip_of
from pytest_azlinux.report.summary import render_summary
from pytest_azlinux.report.verdict import verdict_lines
from pytest_azlinux.targets import BUILTIN_TARGETS

LAB_SKIP = ("not applicable: suites.hardening.skip: "
            + BUILTIN_TARGETS["lab"]["suites"]["hardening"]["skip"])
HOSTS = ("azl-1", "azl-2", "azl-3")


def lab_skips() -> list[Skip]:
    """What the default lab skips: 141 controls on each of 3 hosts, destructive tests, and a
    storage test whose reason names its host."""
    skips = [Skip(LAB_SKIP, "test_control", True, h) for h in HOSTS for _ in range(141)]
    skips += [Skip("destructive: run with --azl-allow-destructive", t, False, h)
              for h in HOSTS for t in ("test_snapshot_restore", "test_format_scratch")]
    skips += [Skip(f"{h}: no btrfs on the scratch disk /dev/loop{i}", "test_snapshot", False, h)
              for i, h in enumerate(HOSTS)]
    return skips


def test_the_lab_skips_read_as_three_sentences_largest_first() -> None:
    groups = group_skips(lab_skips())
    assert [g.line() for g in groups] == [
        f"423 hardening controls: {LAB_SKIP}",
        "6 tests (test_format_scratch, test_snapshot_restore): destructive: run with "
        "--azl-allow-destructive",
        "3 tests (test_snapshot): <host>: no btrfs on the scratch disk /dev/loop<n>",
    ]


def test_what_varies_is_folded_and_what_is_shared_is_kept() -> None:
    one_host = group_skips([Skip("azl-2: no btrfs on /dev/loop3", "test_a", host="azl-2"),
                            Skip("azl-2: no btrfs on /dev/loop3", "test_b", host="azl-2")])
    assert [g.reason for g in one_host] == ["azl-2: no btrfs on /dev/loop3"]
    # Numbers that are the same in every member stay; the one that differs is <n>.
    levels = group_skips([Skip(f"level 2 control; level 1 selected; took {n} s", "t")
                          for n in (12, 14, 12)])
    assert [(g.count, g.reason) for g in levels] == [
        (3, "level 2 control; level 1 selected; took <n> s")]


def test_different_words_stay_different_reasons() -> None:
    groups = group_skips([Skip("azl-1: no btrfs", "t", host="azl-1"),
                          Skip("azl-2: no xfs", "t", host="azl-2"),
                          Skip("azl-3: no btrfs", "t", host="azl-3")])
    assert [(g.count, g.reason) for g in groups] == [(2, "<host>: no btrfs"),
                                                     (1, "azl-2: no xfs")]


def test_a_host_is_a_whole_name_never_part_of_a_longer_one() -> None:
    # azl-1 is a host of the run; azl-10 (a peer outside the run) is not, so only its digits
    # fold, and an address is numbers, not a host.
    groups = group_skips([Skip("peer azl-10 at 198.18.0.10 unreachable", "t", host="azl-1"),
                          Skip("peer azl-11 at 198.18.0.11 unreachable", "t", host="azl-2")])
    assert [g.reason for g in groups] == ["peer azl-<n> at 198.18.0.<n> unreachable"]


def test_a_case_record_becomes_a_skip() -> None:
    case = CaseRecord("s/test_h.py::test_control[azl-1-AZL-SSH-01]", "s.test_h",
                      "test_control[azl-1-AZL-SSH-01]", outcome="skipped",
                      message="Skipped: not applicable:\n  no auditd", host="azl-1",
                      properties={PROP_CONTROL_ID: "AZL-SSH-01"})
    assert skip_of(case) == Skip("not applicable: no auditd", "test_control", True, "azl-1")


def test_what_a_group_counts() -> None:
    many = group_skips([Skip("r", f"test_{c}") for c in "abcde" for _ in range(ord(c) - 96)])
    assert many[0].what == "15 tests (test_e, test_d, test_c and 2 more)"
    assert group_skips([Skip("r", "test_x", True)])[0].what == "1 hardening control"
    mixed = group_skips([Skip("r", "test_control", True), Skip("r", "test_x")])
    assert mixed[0].what == "2 tests (test_control, test_x)"


def test_lines_cut_long_reasons_and_sum_up_the_rest() -> None:
    groups = group_skips(lab_skips())
    lines = skip_lines(groups, shown=1, limit=40)
    assert lines == ["423 hardening controls: not applicable: suites.hardening.skip: …",
                     "… 9 more skipped for 2 other reasons"]
    assert len(lines[0]) == len("423 hardening controls: ") + 40


def _report(name: str, skips: list[Skip]) -> ImageReport:
    counts = {"passed": 14, "skipped": len(skips)}
    return ImageReport(name, Path("reports") / f"{name}.xml", counts, skips=skips)


def test_verdict_lines_group_skips_over_the_run() -> None:
    skips = lab_skips()
    reports = [_report(f"image-{h}", [s for s in skips if s.host == h]) for h in HOSTS]
    lines = verdict_lines(reports)
    start = lines.index("skipped 432, by reason:")
    assert lines[:start] == [f"image-{h}: PASS 14 · SKIP 144" for h in HOSTS]
    assert lines[start + 1].startswith(f"    423 hardening controls: {LAB_SKIP[:40]}")
    assert lines[start + 1].endswith("…") and len(lines[start + 1]) < 200
    assert lines[start + 2].startswith("    6 tests (test_format_scratch, test_snapshot_")
    assert lines[start + 3] == ("    3 tests (test_snapshot): <host>: no btrfs on the scratch "
                                "disk /dev/loop<n>")
    assert lines[start + 4] == "reports: reports/"


def test_no_skips_no_block() -> None:
    assert not any("by reason" in line for line in verdict_lines([_report("i", [])]))


def test_the_markdown_summary_has_a_row_per_reason() -> None:
    cases = {}
    for index, skip in enumerate(lab_skips()):
        nodeid = f"suites/x.py::{skip.test}[{skip.host}-{index}]"
        cases[nodeid] = CaseRecord(
            nodeid, "suites.x", nodeid.split("::")[1], outcome="skipped",
            message=skip.reason, host=skip.host,
            properties={PROP_CONTROL_ID: f"AZL-{index}"} if skip.control else {})
    text = render_summary({"img": ImageRun("img", {}, cases, [])})
    block = text[text.index("**Skipped, by reason** (432)"):].splitlines()
    assert block[2:4] == ["| skipped | reason |", "|---|---|"]
    assert block[4].startswith("| 423 hardening controls | not applicable: suites.hardening")
    assert block[6] == ("| 3 tests (test_snapshot) | &lt;host>: no btrfs on the scratch disk "
                        "/dev/loop&lt;n> |")

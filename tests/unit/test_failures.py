"""Failures grouped by check across hosts (``report/failures.py``) and where the groups are
shown: the HTML page, the Markdown summary (the GitHub step summary) and the annotations.

A pool of 1000 hosts where one check fails on 312 of them, two ways: a finding that names
its host (folded into one finding) and one with a different value (a finding of its own).
"""

from __future__ import annotations

import re

from pytest_azlinux.report.compare import ImageRun
from pytest_azlinux.report.failures import group_failures
from pytest_azlinux.report.github import annotation_lines
from pytest_azlinux.report.html import render_html
from pytest_azlinux.report.model import CaseRecord, Outcome, split_nodeid
from pytest_azlinux.report.summary import render_summary

HOSTS = [f"aks-pool-{i:04d}" for i in range(1000)]
AUDIT = "profile azl3: 1 finding\n  kernel cmdline: expected audit=1, found audit=0"


def case(test: str, host: str, outcome: Outcome = "passed", message: str = "") -> CaseRecord:
    nodeid = f"suites/image/test_posture.py::{test}[{host}]"
    classname, name = split_nodeid(nodeid)
    return CaseRecord(nodeid, classname, name, outcome, message, host=host)


def pool() -> list[CaseRecord]:
    cases = []
    for i, host in enumerate(HOSTS):
        if i % 3 == 0 and i < 900:  # 300 hosts: the same finding
            cases.append(case("test_kernel_cmdline", host, "failed", AUDIT))
        elif i % 3 == 1 and i < 36:  # 12 hosts: unreachable, each message names its host
            cases.append(case("test_kernel_cmdline", host, "error",
                              f"{host}: unreachable (connection refused)"))
        else:
            cases.append(case("test_kernel_cmdline", host))
        cases.append(case("test_selinux_mode", host))
    cases.append(case("test_tcp", "aks-pool-0001->aks-pool-0002", "failed",
                      "throughput 1.2 Gbit/s below 8 Gbit/s"))
    cases[-1].host = "aks-pool-0001"
    return cases


def test_a_check_failing_on_many_hosts_is_one_group_by_finding() -> None:
    groups = group_failures(pool())
    cmdline, tcp = groups
    assert cmdline.headline == "test_kernel_cmdline failed on 300 and errored on 12 of 1000 hosts"
    assert [f.line() for f in cmdline.findings] == [
        "300 x profile azl3: kernel cmdline: expected audit=1, found audit=0 "
        "(aks-pool-0000, aks-pool-0003, aks-pool-0006 and 297 more)",
        "12 x ERROR <host>: unreachable (connection refused) "
        "(aks-pool-0001, aks-pool-0004, aks-pool-0007 and 9 more)",
    ]
    # A pair test's hosts are folded into the check's name; it ran once.
    assert tcp.headline == "test_tcp[<host>-><host>] failed on 1 of 1 host"


def test_the_summary_and_the_page_list_a_check_once_not_a_row_per_host() -> None:
    images = {"img": ImageRun("img", {}, {c.nodeid: c for c in pool()}, [])}
    summary = render_summary(images)
    assert ("| test_kernel_cmdline | failed on 300 and errored on 12 of 1000 hosts | "
            "300 x profile azl3: kernel cmdline: expected audit=1, found audit=0 | "
            "aks-pool-0000, aks-pool-0003, aks-pool-0006 and 297 more |") in summary
    assert "aks-pool-0009" not in summary  # hosts beyond the first three are counted
    assert summary.count("test_kernel_cmdline") == 1

    page = render_html(images)
    table = page[page.index('<table class="tests failures">'):]
    table = table[:table.index("</table>")]
    assert table.count('<tr id="f-') == 2  # one row per check
    assert "failed on 300 and errored on 12 of 1000 hosts" in table
    # Every failing host is still reachable: named in the folded list, its card linked.
    assert "aks-pool-0897" in table and 'href="#h-img-aks-pool-0000"' in table
    assert len(re.findall(r'href="#h-img-', table)) == 3 + 3 + 1  # first hosts per finding
    # The host cards are folded at pool scale; a failing host's card links to its check.
    assert '<details class="host-cards">' in page
    card = page[page.index('id="h-img-aks-pool-0003"'):]
    assert card[:card.index("</div>")].count(
        'href="#f-img-suites.image.test_posture-test_kernel_cmdline"') == 1

    cmdline_line, tcp_line = annotation_lines(images)  # most failures first
    assert cmdline_line.startswith(
        "::error title=img%3A test_kernel_cmdline failed on 300 and errored on 12 of 1000 "
        "hosts::300 x profile azl3: kernel cmdline: expected audit=1, found audit=0")
    assert "%0A12 x ERROR <host>: unreachable" in cmdline_line
    assert "test_tcp" in tcp_line

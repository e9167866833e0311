"""A new hardening check kind, added through exactly the steps docs/architecture.md gives,
then run on this machine through the suite's own read and judgement:

1. write the kind: a ``Strict`` model with ``kind: Literal["<name>"]``, the ``SectionRead``
   it reads (name, shell, parser), ``plan``, ``reads``, ``expects`` and ``judge``;
2. add the class to ``KINDS`` in ``pytest_azlinux/hardening/checks/__init__.py`` (here: a
   table with the entry added, which the loader takes as its argument);
3. use it in a control of a ``controls/<area>.yaml`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from pytest_azlinux.errors import ControlsError
from pytest_azlinux.hardening.base import CheckKind, Compare, Strict, Verdict
from pytest_azlinux.hardening.baseline import gather, plan_for
from pytest_azlinux.hardening.checks import KINDS, kind_names
from pytest_azlinux.hardening.evidence import Evidence
from pytest_azlinux.hardening.loader import load_controls_from
from pytest_azlinux.hardening.readplan import ReadPlan, SectionRead, gather_script
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

# step 1: the kind, its read and its parser
OSTYPE = SectionRead("toy.ostype", "cat /proc/sys/kernel/ostype", str.strip, rc_ok=(0,))


class OstypeCheck(Strict):
    """The kernel's type (``/proc/sys/kernel/ostype``)."""

    kind: Literal["toy_ostype"]
    expect: Compare

    def plan(self, plan: ReadPlan) -> None:
        plan.need(OSTYPE)

    def reads(self) -> str:
        return "`/proc/sys/kernel/ostype`"

    def expects(self) -> str:
        return f"kernel type {self.expect.describe()}"

    def judge(self, ev: Evidence) -> Verdict:
        value = ev.get(OSTYPE)
        if value is None:
            return Verdict("unavailable", "cannot read /proc/sys/kernel/ostype", self.expects())
        return Verdict.judged(self.expect.matches(value), f"ostype {value}", self.expects())


# step 2: the table with the new entry
TABLE: tuple[type[CheckKind], ...] = (*KINDS, OstypeCheck)

# step 3: controls that use it
CONTROLS = """\
area: TOY
title: A toy area
controls:
  - id: AZL-TOY-001
    title: The kernel is Linux
    severity: low
    level: 1
    rationale: A control of a kind added by a test, to show the steps work.
    check: {kind: toy_ostype, expect: {one_of: [Linux]}}
    remediation: run Linux
    references: [{url: "https://www.kernel.org/"}]
  - id: AZL-TOY-002
    title: The kernel is the Hurd
    severity: low
    level: 1
    rationale: The same read judged against another value, so it can fail.
    check: {kind: toy_ostype, expect: {one_of: [GNU]}}
    remediation: run the Hurd
    references: [{url: "https://www.gnu.org/software/hurd/"}]
"""


@pytest.fixture
def controls_dir(tmp_path: Path) -> Path:
    (tmp_path / "toy.yaml").write_text(CONTROLS)
    return tmp_path


@pytest.mark.root  # the hardening read runs as root
def test_a_new_kind_reads_and_judges_through_the_suite(controls_dir: Path) -> None:
    controls = load_controls_from(controls_dir, TABLE)
    plan = plan_for(controls)
    assert "toy.ostype" in plan.section_names()
    assert "cat /proc/sys/kernel/ostype" in gather_script(plan)
    host = Host(HostSpec(name="here", target="t", access="local"), LocalTransport("here"))
    evidence = gather(host, plan)  # the suite's one read, as root
    verdicts = {c.id: c.check.judge(evidence) for c in controls}
    assert verdicts["AZL-TOY-001"] == Verdict("passed", "ostype Linux", "kernel type Linux")
    assert verdicts["AZL-TOY-002"].outcome == "failed"


def test_without_the_table_entry_the_kind_is_refused(controls_dir: Path) -> None:
    with pytest.raises(ControlsError, match=r"toy\.yaml: control AZL-TOY-001: field 'check'"):
        load_controls_from(controls_dir)


def test_a_broken_table_entry_is_refused() -> None:
    class NoKind(Strict):
        pass

    with pytest.raises(TypeError, match="NoKind: needs kind"):
        kind_names((*KINDS, NoKind))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'toy_ostype' registered twice"):
        kind_names((*TABLE, OstypeCheck))

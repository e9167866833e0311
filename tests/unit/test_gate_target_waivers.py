"""Waivers a target brings with it reach the gate through the target's context (the gate
names no kind): the lab's own file, loaded once, scoped to the targets that use it."""

from __future__ import annotations

from pytest_azlinux.gate.plugin import ShipsWaivers, targets_waivers
from pytest_azlinux.lab import Lab
from pytest_azlinux.session import SelectedTarget
from pytest_azlinux.targets import parse_targets

TARGETS = """
targets:
  lab-a: {kind: lab, lab: gw1}
  lab-b: {kind: lab, lab: gw1}
  here: {kind: local}
"""


def _selected() -> list[SelectedTarget]:
    parsed = parse_targets(TARGETS, "t.yaml", env={})
    lab = Lab("gw1", state_dir="/nonexistent/gw1")  # only its waivers file is asked for
    return [
        SelectedTarget("lab-a", parsed["lab-a"], (), context=lab),
        SelectedTarget("lab-b", parsed["lab-b"], (), context=lab),
        SelectedTarget("here", parsed["here"], (), context=None),
    ]


def test_the_labs_waivers_come_from_its_context_once_for_both_targets() -> None:
    selected = _selected()
    assert isinstance(selected[0].context, ShipsWaivers)
    assert not isinstance(selected[2].context, ShipsWaivers)
    found = targets_waivers(selected)
    assert found.files == (selected[0].context.builtin_waivers(),)
    assert found.waivers, "the lab ships waivers"
    assert {w.source.split("[")[0] for w in found.waivers} == {"lab:waivers.yaml"}
    assert all(w.waiver.targets == ["lab-a", "lab-b"] for w in found.waivers)


def test_no_target_that_ships_waivers_adds_none() -> None:
    assert not targets_waivers(_selected()[2:])

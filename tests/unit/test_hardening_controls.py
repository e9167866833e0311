"""Hardening controls as data: the shipped set, loading errors, profiles, settings, docs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from pytest_azlinux.errors import ControlsError, SettingsError
from pytest_azlinux.hardening import load_controls
from pytest_azlinux.hardening.baseline import LevelChoice, skip_reason, unknown_profile_ids
from pytest_azlinux.hardening.checks import NAMES
from pytest_azlinux.hardening.docs import render
from pytest_azlinux.hardening.loader import load_controls_from, parse_controls_file
from pytest_azlinux.hardening.settings import HardeningSettings
from pytest_azlinux.profiles import load_profiles
from pytest_azlinux.settings import parse

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
area: TST
title: Test controls
controls:
  - id: AZL-TST-001
    title: A test control
    severity: low
    level: 1
    rationale: A rationale long enough to pass the check.
    check: {kind: sysctl, key: kernel.dmesg_restrict, expect: {one_of: ["1"]}}
    remediation: "`kernel.dmesg_restrict = 1`"
    references: [{cac: sysctl_kernel_dmesg_restrict, cce: CCE-83952-2}]
"""


# --- the shipped controls ------------------------------------------------------------------


def test_at_least_sixty_controls_with_unique_stable_ids() -> None:
    controls = load_controls()
    ids = [c.id for c in controls]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    for control in controls:
        assert re.fullmatch(r"AZL-[A-Z]{2,6}-\d{3}", control.id)
        assert control.references, control.id


def test_ids_are_numbered_without_gaps_per_area() -> None:
    by_area: dict[str, list[int]] = {}
    for control in load_controls():
        by_area.setdefault(control.area, []).append(int(control.id.rsplit("-", 1)[1]))
    for area, numbers in by_area.items():
        assert numbers == list(range(1, len(numbers) + 1)), area


def test_the_issue_s_areas_are_covered() -> None:
    """sshd, modules, sysctls, mounts, files, accounts, audit, time, packages, FIPS."""
    areas = Counter(c.area for c in load_controls())
    for area in ("SSH", "MOD", "NET", "KRN", "MNT", "FILE", "ACC", "AUD", "TIME", "PKG", "CRY"):
        assert areas[area] >= 1, area
    modules = {c.check.module for c in load_controls() if c.check.kind == "kernel_module"}
    assert modules >= {"cramfs", "freevxfs", "hfs", "udf", "usb-storage", "dccp", "sctp", "rds",
                       "tipc"}  # fmt: skip
    sysctls = {c.check.key for c in load_controls() if c.check.kind == "sysctl"}
    assert sysctls >= {
        "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.accept_redirects",
        "kernel.randomize_va_space", "kernel.kptr_restrict", "kernel.dmesg_restrict",
        "kernel.unprivileged_bpf_disabled", "kernel.yama.ptrace_scope", "fs.protected_symlinks",
        "fs.protected_hardlinks",
    }  # fmt: skip


def test_every_check_kind_is_used_and_described() -> None:
    used = {c.check.kind for c in load_controls()}
    assert used == NAMES
    for control in load_controls():
        assert control.check.reads() and control.check.expects(), control.id


def test_ssh_controls_need_sshd_and_fips_controls_need_fips() -> None:
    for control in load_controls():
        if control.area == "SSH":
            assert control.applies_if == {"sshd": True}, control.id
        if control.area == "CRY":
            assert control.applies_if == {"fips": True}, control.id


def test_no_benchmark_text_only_rule_ids() -> None:
    """References are ids (and CCEs), never copied titles or descriptions."""
    for control in load_controls():
        for ref in control.references:
            assert ref.cac is None or re.fullmatch(r"[a-z0-9_-]+", ref.cac)
            assert ref.cce is None or re.fullmatch(r"CCE-\d{4,5}-\d", ref.cce)


# --- loading errors: one line naming file, control and field --------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("severity: low", "severity: severe"), "control AZL-TST-001: field 'severity'"),
        (("level: 1", "level: 3"), "control AZL-TST-001: field 'level'"),
        (("kind: sysctl", "kind: registry"), "control AZL-TST-001: field 'check'"),
        (("key: kernel.dmesg_restrict", "key: Kernel Dmesg"), "field 'check.key'"),
        (('expect: {one_of: ["1"]}', "expect: {}"), "set exactly one of one_of"),
        (("references: [{cac: sysctl_kernel_dmesg_restrict, cce: CCE-83952-2}]",
          "references: []"), "field 'references'"),
        (("references: [{cac: sysctl_kernel_dmesg_restrict, cce: CCE-83952-2}]",
          "references: [{cce: CCE-83952-2}]"), "needs a cac rule id or a url"),
        (("    level: 1\n", "    level: 1\n    colour: red\n"), "field 'colour'"),
        (("id: AZL-TST-001", "id: AZL-OTHER-001"), "not in this file's area TST"),
        (("id: AZL-TST-001", "id: azl-tst-1"), "field 'id'"),
        (("title: A test control", "title: [unclosed"), "invalid YAML"),
    ],
)
def test_a_bad_controls_file_is_one_line_naming_file_control_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "test.yaml"
    text = GOOD.replace(*change)
    with pytest.raises(ControlsError) as exc:
        parse_controls_file(text, path)
    assert str(path) in str(exc.value)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD.replace("area: TST", "area: TSU").replace(
        "AZL-TST-001", "AZL-TSU-001"))  # fmt: skip
    assert len(load_controls_from(tmp_path)) == 2
    (tmp_path / "c.yaml").write_text(GOOD.replace("area: TST", "area: TSV"))
    with pytest.raises(ControlsError, match="area TSV"):
        load_controls_from(tmp_path)
    (tmp_path / "c.yaml").write_text(GOOD)
    with pytest.raises(ControlsError, match="TST is also the area of"):
        load_controls_from(tmp_path)


def test_file_applies_if_is_the_default_of_its_controls(tmp_path: Path) -> None:
    text = GOOD.replace("controls:\n", "applies_if: {sshd: true}\ncontrols:\n")
    _, (control,) = parse_controls_file(text, tmp_path / "x.yaml")
    assert control.applies_if == {"sshd": True}
    bad = GOOD.replace("    level: 1\n", "    level: 1\n    applies_if: {kubelet: true}\n")
    with pytest.raises(ControlsError, match="unknown profile attribute 'kubelet'"):
        parse_controls_file(bad, tmp_path / "x.yaml")


# --- profiles, settings, level -----------------------------------------------------------------


def test_profiles_name_only_known_controls_and_inherit_along_extends() -> None:
    profiles = load_profiles()
    ids = [c.id for c in load_controls()]
    for profile in profiles.all():
        assert unknown_profile_ids(profile, ids) == [], profile.name
    aks = profiles.get("aks-node-3.0-fips")  # -> aks-node-3.0 -> pre-202511 -> azl-3.0-base
    assert set(aks.hardening_not_applicable) >= {"AZL-NET-001", "AZL-NET-002", "AZL-MOD-006"}
    assert "AZL-NET-001" not in profiles.get("azl-3.0").hardening_not_applicable
    assert "udf is built into the Azure Linux 3.0 kernel" in (
        profiles.get("azl-3.0").hardening_not_applicable["AZL-MOD-006"]
    )


def test_a_profile_can_drop_an_inherited_not_applicable(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "extends: aks-node-3.0\nhardening_not_applicable:\n  AZL-NET-001: null\n"
        "  AZL-SSH-019: our jump hosts forward ports\n"
    )
    mine = load_profiles([tmp_path]).get("mine")
    assert "AZL-NET-001" not in mine.hardening_not_applicable
    assert mine.hardening_not_applicable["AZL-SSH-019"] == "our jump hosts forward ports"
    assert "AZL-NET-002" in mine.hardening_not_applicable


def test_settings_refuse_unknown_ids_and_empty_reasons() -> None:
    ok = parse(HardeningSettings, {"level": 2, "not_applicable": {"AZL-NET-001": "a router"}}, "t")
    assert ok.level == 2
    with pytest.raises(SettingsError) as exc:
        parse(HardeningSettings, {"not_applicable": {"AZL-NET-999": "x"}}, "t")
    assert str(exc.value) == (
        "target 't': field 'suites.hardening.not_applicable': unknown control id 'AZL-NET-999'"
    )
    with pytest.raises(SettingsError, match="give the reason"):
        parse(HardeningSettings, {"not_applicable": {"AZL-NET-001": " "}}, "t")
    with pytest.raises(SettingsError, match=r"suites\.hardening\.level"):
        parse(HardeningSettings, {"level": 3}, "t")


def test_level_comes_from_the_option_then_the_target_then_1() -> None:
    two = parse(HardeningSettings, {"level": 2}, "fleet")
    assert LevelChoice.choose(1, two, "fleet") == LevelChoice(1, "--azl-hardening-level 1")
    assert LevelChoice.choose(None, two, "fleet").origin == "target fleet suites.hardening.level"
    assert LevelChoice.choose(None, HardeningSettings(), "fleet") == LevelChoice(
        1, "the default level"
    )


def test_skip_reasons_name_where_they_come_from() -> None:
    controls = load_controls()
    profiles = load_profiles()
    plain = HardeningSettings()
    level1 = LevelChoice(1, "the default level")
    level2 = LevelChoice(2, "--azl-hardening-level 2")
    azl3, osguard, aks = (profiles.get(n) for n in ("azl-3.0", "azl-3.0-osguard", "aks-node-3.0"))
    level_two = controls.get("AZL-SSH-019")
    assert "level 2 control; level 1 selected (the default level)" in str(
        skip_reason(level_two, azl3, plain, level1))  # fmt: skip
    assert skip_reason(level_two, azl3, plain, level2) is None
    sshd = controls.get("AZL-SSH-001")
    assert skip_reason(sshd, azl3, plain, level1) is None
    reason = skip_reason(sshd, osguard, plain, level1)
    assert reason is not None and reason.startswith(
        "not applicable: profile azl-3.0-osguard has sshd=false (OS Guard disables sshd")
    fips = controls.get("AZL-CRY-001")
    assert "has fips=false" in str(skip_reason(fips, azl3, plain, level1))
    assert skip_reason(fips, osguard, plain, level1) is None
    forward = controls.get("AZL-NET-001")
    assert "profile aks-node-3.0: an AKS node routes pod traffic" in str(
        skip_reason(forward, aks, plain, level1))  # fmt: skip
    router = parse(HardeningSettings, {"not_applicable": {"AZL-NET-001": "a router"}}, "t")
    assert skip_reason(forward, azl3, router, level1) == (
        "not applicable: suites.hardening.not_applicable: a router"
    )


# --- docs/hardening.md ----------------------------------------------------------------------


def test_committed_docs_are_the_generated_ones() -> None:
    committed = (ROOT / "docs" / "hardening.md").read_text()
    assert committed == render(), (
        "docs/hardening.md is out of date: python -m pytest_azlinux.hardening.docs > "
        "docs/hardening.md"
    )


def test_docs_list_every_control_with_its_remediation() -> None:
    text = render()
    for control in load_controls():
        assert f"### {control.id}: {control.title}" in text
        assert " ".join(control.remediation.split()) in text
    assert f"{len(load_controls())} controls" in text

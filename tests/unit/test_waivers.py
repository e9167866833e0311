"""The waivers file: schema, one-line errors, expiry, matching; the lab's own waivers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_azlinux.errors import ConfigError, WaiversError
from pytest_azlinux.gate.waivers import (
    Loaded,
    Subject,
    find_waivers_file,
    glob_match,
    load_waivers,
    parse_waivers,
)

TODAY = dt.date(2026, 12, 1)
NODE = "suites/image/test_kernel.py::test_kernel_flavour_and_release[vm-1]"


def waivers(text: str, label: str | None = None,
            targets: list[str] | None = None) -> list[Loaded]:
    return list(parse_waivers(text, "azl-waivers.yaml", TODAY, label=label,
                              targets=targets).waivers)


def error(text: str) -> str:
    with pytest.raises(WaiversError) as info:
        parse_waivers(text, "azl-waivers.yaml", TODAY)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_waiver_with_every_field() -> None:
    (loaded,) = waivers("""
waivers:
  - match: "suites/image/test_kernel.py::*"
    targets: [canary]
    images: ["azurelinux-3.0.*"]
    hosts: vm-1
    reason: HWE kernel not in the profile yet
    tracker: https://example.net/OPS-42
    owner: platform
    expires: 2027-01-31
""")
    w = loaded.waiver
    assert loaded.source == "azl-waivers.yaml[0]"
    assert w.hosts == ["vm-1"]  # one name is a list of one
    assert w.message() == ("waived until 2027-01-31: HWE kernel not in the profile yet "
                           "(https://example.net/OPS-42)")
    subject = Subject(NODE, target="canary", image="azurelinux-3.0.20251021", host="vm-1")
    assert w.matches(subject)
    assert not w.matches(Subject(NODE, target="canary", image="azurelinux-3.0.20251021",
                                 host="vm-2"))
    assert not w.matches(Subject(NODE, target="nightly", image="azurelinux-3.0.20251021",
                                 host="vm-1"))
    assert not w.matches(Subject(NODE, target="canary", image=None, host="vm-1"))


@pytest.mark.parametrize(("text", "expected"), [
    ("waivers:\n - match: a\n   reason: r\n",
     "azl-waivers.yaml: waiver [0] (a): field 'expires': required (an ISO date), or "
     "permanent: true for a limit that stays"),
    ("waivers:\n - match: a\n   expires: 2027-01-01\n",
     "azl-waivers.yaml: waiver [0] (a): field 'reason': Field required"),
    ("waivers:\n - match: a\n   reason: '  '\n   expires: 2027-01-01\n",
     "azl-waivers.yaml: waiver [0] (a): field 'reason': must say why the deviation is accepted"),
    ("waivers:\n - match: a\n   reason: r\n   expires: 2027-06-01\n",
     "azl-waivers.yaml: waiver [0] (a): field 'expires': 2027-06-01 is 182 days away, more "
     "than max_days 90; shorten it, or set permanent: true (with its reason)"),
    ("waivers:\n - match: a\n   reason: r\n   expires: 2027-01-01\n   tracker: OPS-1\n",
     "azl-waivers.yaml: waiver [0] (a): field 'tracker': must be a URL (https://...): 'OPS-1'"),
    ("waivers:\n - match: a\n   reason: r\n   expires: '2027-01-01 10:00'\n",
     "azl-waivers.yaml: waiver [0] (a): field 'expires': not an ISO date (YYYY-MM-DD): "
     "'2027-01-01 10:00'"),
    ("waivers:\n - match: a\n   reason: r\n   expires: 2027-13-01\n",
     "azl-waivers.yaml: invalid YAML: month must be in 1..12"),
    ("waivers:\n - match: a\n   reason: r\n   permanent: true\n   colour: red\n",
     "azl-waivers.yaml: waiver [0] (a): field 'colour': Extra inputs are not permitted"),
    ("waivers:\n - match: {contol: X}\n   reason: r\n   permanent: true\n",
     "azl-waivers.yaml: waiver [0]: field 'match.control': Field required (and 1 more)"),
    ("waivers:\n - match: ''\n   reason: r\n   permanent: true\n",
     "azl-waivers.yaml: waiver [0] (): field 'match': must be a node id glob or {control: ID}"),
    ("waivers:\n - reason: r\n   reason: s\n",
     "azl-waivers.yaml: line 3: invalid YAML: duplicate key 'reason' (first on line 2)"),
    ("waiver: []\n", "azl-waivers.yaml: unknown top-level key(s): waiver"),
    ("waivers: {a: 1}\n", "azl-waivers.yaml: 'waivers' must be a list of waivers"),
    ("max_days: 0\n", "azl-waivers.yaml: field 'max_days': must be a whole number of days >= 1"),
    ("waivers: [match]\n",
     "azl-waivers.yaml: waiver [0]: must be a mapping with match, reason and expires"),
])
def test_one_line_errors(text: str, expected: str) -> None:
    assert error(text) == expected


def test_a_waivers_error_is_a_usage_error() -> None:
    assert issubclass(WaiversError, ConfigError)


def test_max_days_and_permanent() -> None:
    far = "  - match: a\n    reason: r\n    expires: 2027-06-01\n"
    assert len(waivers("max_days: 200\nwaivers:\n" + far)) == 1
    (loaded,) = waivers("waivers:\n" + far + "    permanent: true\n")
    assert loaded.waiver.permanent
    (forever,) = waivers("waivers:\n  - match: a\n    reason: the lab's kernel\n"
                         "    permanent: true\n")
    assert forever.waiver.message() == "waived permanently: the lab's kernel"
    assert not forever.waiver.expired(dt.date(2100, 1, 1))


def test_expiry_is_the_day_written() -> None:
    (loaded,) = waivers("waivers:\n  - match: a\n    reason: r\n    expires: 2026-12-01\n")
    assert loaded.waiver.expired(TODAY)  # until 2026-12-01: gone on that day
    assert loaded.waiver.active(TODAY - dt.timedelta(days=1))


@pytest.mark.parametrize(("pattern", "nodeid", "hit"), [
    ("suites/image/test_kernel.py::*", NODE, True),
    ("suites/image/test_kernel.py::test_kernel_flavour_and_release", NODE, True),
    ("suites/image/test_kernel.py::test_kernel_flavour_and_release[vm-1]", NODE, True),
    ("suites/image/test_kernel.py::test_kernel_flavour_and_release[vm-2]", NODE, False),
    ("suites/image/test_kernel.py::test_kernel_flavour", NODE, False),
    ("*test_kernel_flavour_and_release[vm-?]", NODE, True),
    ("*suites/image/test_kernel.py::test_kernel_flavour_and_release", NODE, True),
    ("suites/image/*", "suites/image/test_x.py::test_y", True),
    ("suites/image/test_x.py::test_y[", "suites/image/test_x.py::test_y[a]", False),
])
def test_node_id_globs(pattern: str, nodeid: str, hit: bool) -> None:
    (loaded,) = waivers(f"waivers:\n  - match: {pattern!r}\n    reason: r\n    permanent: true\n")
    assert loaded.waiver.matches(Subject(nodeid)) is hit


def test_brackets_are_literal_in_globs() -> None:
    assert glob_match("a[b]", "a[b]")
    assert not glob_match("a[bc]", "ab")


def test_control_waivers_match_the_control_id_only() -> None:
    (loaded,) = waivers("waivers:\n  - match: {control: AZL-SSH-*}\n    reason: r\n"
                        "    permanent: true\n")
    w = loaded.waiver
    assert w.matches(Subject("suites/hardening/test_x.py::test_y[h]", control="AZL-SSH-01"))
    assert not w.matches(Subject("suites/hardening/test_x.py::test_y[h]", control="AZL-FS-01"))
    assert not w.matches(Subject("AZL-SSH-01"))  # a node id is not a control id
    assert w.describe_match() == "control AZL-SSH-*"


def test_the_first_active_waiver_wins_and_expired_ones_are_remembered() -> None:
    found = parse_waivers("""
waivers:
  - match: "*"
    reason: old
    expires: 2026-11-01
  - match: "*test_kernel*"
    reason: current
    expires: 2027-01-01
  - match: "*"
    reason: broad
    expires: 2027-01-01
""", "w.yaml", TODAY)
    hit = found.lookup(Subject(NODE), TODAY)
    assert hit.active is not None and hit.active.waiver.reason == "current"
    assert hit.expired is not None and hit.expired.waiver.reason == "old"
    other = found.lookup(Subject("suites/x.py::test_y"), TODAY)
    assert other.active is not None and other.active.waiver.reason == "broad"
    later = found.lookup(Subject(NODE), dt.date(2027, 1, 1))
    assert later.active is None and later.expired is not None
    assert [w.waiver.reason for w in found.expired(TODAY)] == ["old"]


def test_a_kinds_waivers_are_scoped_to_its_targets() -> None:
    (scoped, own) = waivers(
        "waivers:\n  - match: a\n    reason: r\n    permanent: true\n"
        "  - match: a\n    targets: [x]\n    reason: r\n    permanent: true\n",
        label="lab:waivers.yaml", targets=["lab", "lab2"],
    )
    assert scoped.source == "lab:waivers.yaml[0]"
    assert scoped.waiver.targets == ["lab", "lab2"]
    assert own.waiver.targets == ["x"]
    assert not scoped.waiver.matches(Subject("a", target="here"))


def test_finding_the_file(tmp_path: Path) -> None:
    targets = tmp_path / "conf" / "azl-targets.yaml"
    targets.parent.mkdir()
    assert find_waivers_file(None, None, targets, tmp_path) is None
    beside = targets.parent / "azl-waivers.yaml"
    beside.write_text("waivers: []\n")
    assert find_waivers_file(None, None, targets, tmp_path) == beside
    (tmp_path / "azl-waivers.yaml").write_text("waivers: []\n")
    assert find_waivers_file(None, None, None, tmp_path) == tmp_path / "azl-waivers.yaml"
    assert find_waivers_file(None, "conf/azl-waivers.yaml", None, tmp_path) == beside
    assert find_waivers_file(str(beside), "other.yaml", None, tmp_path) == beside
    with pytest.raises(WaiversError, match=r"^--azl-waivers: .*missing.yaml: no such file$"):
        find_waivers_file(str(tmp_path / "missing.yaml"), None, targets, tmp_path)
    with pytest.raises(WaiversError, match=r"^ini azl_waivers_file: .*nope.yaml: no such file$"):
        find_waivers_file(None, "nope.yaml", targets, tmp_path)


def test_loading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"waivers:\n  - match: a\n    reason: caf\xe9\n    permanent: true\n")
    with pytest.raises(WaiversError,
                       match=r"w.yaml: line 3: not UTF-8 text \(byte 0xe9 at offset 37\)$"):
        load_waivers(path, TODAY)
    path.write_text("waivers:\n  - match: a\n    reason: r\n    permanent: true\n")
    loaded = load_waivers(path, TODAY)
    assert loaded.files == (path,) and len(loaded.waivers) == 1
    with pytest.raises(WaiversError, match="cannot read waivers file"):
        load_waivers(tmp_path / "none.yaml", TODAY)


def test_the_lab_waivers_are_valid_permanent_and_explained() -> None:
    path = Path(__file__).parents[2] / "pytest_azlinux" / "lab" / "waivers.yaml"
    found = load_waivers(path, TODAY, label="lab:waivers.yaml", targets=["lab"])
    assert len(found.waivers) >= 8
    for loaded in found.waivers:
        w = loaded.waiver
        assert w.permanent and w.expires is None
        assert len(w.reason) > 20
        assert w.targets == ["lab"]
        assert isinstance(w.match, str) and w.match.startswith("*suites/")
    kernel = Subject("suites/image/test_kernel.py::test_kernel_flavour_and_release[azl-1]",
                     target="lab", image="azurelinux-3.0.20251021", host="azl-1")
    assert found.lookup(kernel, TODAY).active is not None
    # scoped to the images it fails on: mariner passes the command line check
    cmdline = Subject("suites/image/test_kernel.py::test_kernel_cmdline[azl-3]", target="lab",
                      image="mariner-2.0.20250925", host="azl-3")
    assert found.lookup(cmdline, TODAY).active is None

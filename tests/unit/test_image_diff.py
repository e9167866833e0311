"""``azl report diff``: the diff engine, the run's image record file, and the command, on
real recorded node images.

The recorded images are AgentBaker release notes of AKSAzureLinuxV3/gen2 (copied byte for
byte from Azure/AgentBaker ``vhdbuilder/release-notes/AKSAzureLinuxV3/gen2/<version>.txt``;
commits and blob ids in ``tests/data/agentbaker/PROVENANCE.md``): two pairs of consecutive
weekly releases, 202511.07.0 -> 202511.12.0 and 202608.14.0 -> 202608.20.0. What each pair
changes was read off the files by hand (``diff`` of their ``Installed Packages`` sections,
os-release sections and ``Using kernel:`` lines), and the tests assert exactly that.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_azlinux.errors import ReportError
from pytest_azlinux.report.image_diff import (
    ImageRecord,
    Installed,
    diff_images,
    diff_packages,
    render_markdown,
    render_text,
)
from pytest_azlinux.report.image_file import (
    host_entry,
    is_own_image_file,
    read_image_file,
    write_image_file,
)
from pytest_azlinux.report.image_source import load_side

GEN2 = Path(__file__).parents[1] / "data" / "agentbaker" / "AKSAzureLinuxV3" / "gen2"
ACL = Path(__file__).parents[1] / "data" / "agentbaker" / "AKSAzureContainerLinux" / "gen2tl"
AUG14, AUG20 = GEN2 / "202608.14.0.txt", GEN2 / "202608.20.0.txt"
NOV07, NOV12 = GEN2 / "202511.07.0.txt", GEN2 / "202511.12.0.txt"


def pkgs(**versions: str | tuple[str, ...]) -> dict[str, tuple[Installed, ...]]:
    out = {}
    for name, v in versions.items():
        out[name.replace("_", "-")] = tuple(Installed(e, "x86_64") for e in
                                            ((v,) if isinstance(v, str) else v))
    return out


# -- version order: epoch first, tilde, caret, release ----------------------------------------
@pytest.mark.parametrize(("old", "new", "kind"), [
    ("2.0-1", "1:1.0-1", "upgraded"),         # an epoch outranks any version
    ("1:1.0-1", "2.0-1", "downgraded"),
    ("1.0~rc1-1", "1.0-1", "upgraded"),       # ~ sorts before the release it precedes
    ("1.0-1", "1.0~rc1-1", "downgraded"),
    ("1.0-1", "1.0^git1-1", "upgraded"),      # ^ sorts after the base version
    ("1.4.4-2.azl3", "1.4.4-5.azl3", "upgraded"),  # the release alone
    ("1.10-1", "1.9-1", "downgraded"),        # numerically, not as text
    ("1.0-1", "0:1.0-1", "rebuilt"),          # epoch 0 is no epoch: same version
])
def test_versions_are_ordered_as_rpm_orders_them(old: str, new: str, kind: str) -> None:
    [change] = diff_packages(pkgs(p=old), pkgs(p=new))
    assert (change.kind, change.old, change.new) == (kind, Installed(old, "x86_64"),
                                                     Installed(new, "x86_64"))


def test_a_package_in_several_versions_is_compared_version_by_version() -> None:
    changes = diff_packages(pkgs(kernel=("6.6.1-1", "6.6.2-1")),
                            pkgs(kernel=("6.6.2-1", "6.6.3-1")))
    assert [(c.kind, c.describe()) for c in changes] == [
        ("removed", "kernel 6.6.1-1 (x86_64) (6.6.2-1 stays)"),
        ("added", "kernel 6.6.3-1 (x86_64) (6.6.2-1 stays)"),
    ]


def test_multilib_packages_are_compared_per_arch() -> None:
    old = {"glibc": (Installed("2.38-1", "i686"), Installed("2.38-1", "x86_64"))}
    new = {"glibc": (Installed("2.38-2", "x86_64"), Installed("2.38-2", "i686"))}
    assert [c.describe() for c in diff_packages(old, new)] == [
        "glibc 2.38-1 -> 2.38-2 (i686)", "glibc 2.38-1 -> 2.38-2 (x86_64)"]
    gone = {"glibc": (Installed("2.38-2", "x86_64"),)}
    assert [(c.kind, c.describe()) for c in diff_packages(new, gone)] == [
        ("removed", "glibc 2.38-2 (i686)")]


def test_unchanged_packages_are_not_listed_and_order_is_by_name() -> None:
    old = pkgs(zlib="1.3-1", bash="5.2-1", curl="8.0-1", gone="1-1")
    new = pkgs(curl="8.1-1", bash="5.2-1", zlib="1.3-1", added="2-1")
    assert [(c.name, c.kind) for c in diff_packages(old, new)] == [
        ("added", "added"), ("curl", "upgraded"), ("gone", "removed")]


# -- real recorded images of consecutive weeks ------------------------------------------------
def test_august_2026_week_lists_the_kernel_and_containerd_changes_it_contains() -> None:
    old, new = load_side(AUG14), load_side(AUG20)
    assert (old.package_count, new.package_count) == (395, 394)
    diff = diff_images(old, new)
    # the running kernel is the same (/proc/version in both: 6.6.150.1-1.azl3) ...
    assert (old.kernel, new.kernel, diff.kernel) == ("6.6.150.1-1.azl3",) * 2 + (None,)
    # ... but 202608.14.0 still carried the previous kernel package, 202608.20.0 does not
    assert [(c.name, c.kind, c.old, c.stays) for c in diff.of_kind("removed")] == [
        ("kernel", "removed", Installed("6.6.143.1-1.azl3", "x86_64"),
         (Installed("6.6.150.1-1.azl3", "x86_64"),))]
    assert {c.name: (c.old.evr, c.new.evr) for c in diff.of_kind("upgraded")  # type: ignore[union-attr]
            } == {
        "containerd-accelerated-container-image": ("1.4.4-2.azl3", "1.4.4-5.azl3"),
        "expat": ("2.8.2-1.azl3", "2.8.3-1.azl3"),
        "expat-libs": ("2.8.2-1.azl3", "2.8.3-1.azl3"),
        "gawk": ("5.2.2-1.azl3", "5.2.2-2.azl3"),
        "ig": ("0.54.1-6.azl3", "0.55.0-2.azl3"),
        "ig-gadgets": ("0.54.1-1.azl3", "0.55.0-1.azl3"),
        "kubernetes-cri-tools": ("1.34.0-12.azl3", "1.34.0-16.azl3"),
        "libssh2": ("1.11.1-5.azl3", "1.11.1-6.azl3"),
        "python3": ("3.12.9-14.azl3", "3.12.14-1.azl3"),
        "python3-cryptography": ("42.0.5-4.azl3", "42.0.5-5.azl3"),
        "python3-curses": ("3.12.9-14.azl3", "3.12.14-1.azl3"),
        "python3-libs": ("3.12.9-14.azl3", "3.12.14-1.azl3"),
    }
    assert diff.counts() == {"upgraded": 12, "downgraded": 0, "added": 0, "removed": 1,
                             "rebuilt": 0}
    assert len(diff.packages) == 13  # nothing else: containerd2 2.2.4-6.azl3 stayed
    assert "containerd2" not in {c.name for c in diff.packages}
    assert diff.os_release == [] and diff.arch is None  # VERSION 3.0.20260809 in both
    assert diff.node_image_version is not None
    assert (diff.node_image_version.old, diff.node_image_version.new) == (
        "AKSAzureLinux-V3gen2-202608.14.0", "AKSAzureLinux-V3gen2-202608.20.0")
    text = render_text(diff)
    assert "  removed    kernel 6.6.143.1-1.azl3 (x86_64) (6.6.150.1-1.azl3 stays)\n" in text
    assert ("  upgraded   containerd-accelerated-container-image 1.4.4-2.azl3 -> 1.4.4-5.azl3 "
            "(x86_64)\n") in text
    assert "packages: 12 upgraded, 1 removed\n" in text
    assert "kernel:" not in text and "os-release" not in text


def test_november_2025_week_adds_three_packages_and_nothing_else() -> None:
    diff = diff_images(load_side(NOV07), load_side(NOV12))
    assert [(c.kind, c.name, c.new.evr if c.new else None) for c in diff.packages] == [
        ("added", "acr-mirror", "0.2.14-1"),
        ("added", "overlaybd", "1.0.16-20250818.4601fb2.azurelinux.3.0"),
        ("added", "overlaybd-snapshotter", "1.2.2-20240912104945.f5593f5"),
    ]
    assert diff.kernel is None and diff.os_release == [] and diff.arch is None
    assert diff.old.kernel == "6.6.104.2-4.azl3"  # containerd2 2.0.0-14.azl3 in both
    assert diff.node_image_version is not None


def test_the_same_image_on_both_sides_has_no_difference() -> None:
    diff = diff_images(load_side(AUG20), load_side(AUG20))
    assert not diff.changed and diff.packages == []
    assert "no difference" in render_text(diff)


def test_an_image_without_a_recorded_package_list_is_not_compared_by_packages() -> None:
    """ACL's release notes hold a stub where the packages would be: nothing is invented."""
    [acl] = sorted(ACL.glob("*.txt"))
    diff = diff_images(load_side(AUG20), load_side(acl))
    assert diff.packages == []
    assert "the recording does not list its packages" in diff.packages_unknown
    assert "packages: not compared" in render_text(diff)
    variant = {c.key: (c.old, c.new) for c in diff.os_release}["VARIANT_ID"]
    assert variant == (None, "azurecontainerlinux")


def test_markdown_section_has_a_row_per_change() -> None:
    lines = render_markdown(diff_images(load_side(AUG14), load_side(AUG20)))
    rows = [line for line in lines if line.startswith("| ") and "|---" not in line]
    assert rows[:2] == ["| what | before | now |", "| node image version | "
                        "AKSAzureLinux-V3gen2-202608.14.0 | AKSAzureLinux-V3gen2-202608.20.0 |"]
    assert "| kernel | removed | 6.6.143.1-1.azl3 (x86_64) | (6.6.150.1-1.azl3 stays) |" in rows
    assert len([r for r in rows if " upgraded " in r]) == 12


# -- the run's image record file ---------------------------------------------------------------
def entry(packages: dict[str, list[tuple[str, str]]] | None, note: str = "") -> dict[str, object]:
    return host_entry({"ID": "azurelinux", "VERSION": "3.0.1"}, "6.6.1-1.azl3", "x86_64",
                      None, packages, source="rpm database", note=note)


def test_image_file_stores_a_package_list_once_for_alike_hosts(tmp_path: Path) -> None:
    same = {"bash": [("5.2-1.azl3", "x86_64")], "kernel": [("6.6.1-1.azl3", "x86_64")]}
    path = write_image_file(tmp_path / "img.image.json", "img",
                            {"b": entry(same), "a": entry(same), "c": entry(None, "rpm: exit 1")},
                            "0.1.0", "2026-12-07T22:00:00Z")
    doc = json.loads(path.read_text())
    assert len(doc["package_lists"]) == 1 and list(doc["hosts"]) == ["a", "b", "c"]
    assert doc["hosts"]["c"]["packages"] is None
    assert doc["hosts"]["c"]["packages_note"] == "rpm: exit 1"
    assert is_own_image_file(path)
    back = read_image_file(path)
    assert back.hosts["a"].packages == {"bash": (Installed("5.2-1.azl3", "x86_64"),),
                                        "kernel": (Installed("6.6.1-1.azl3", "x86_64"),)}
    assert back.hosts["c"].packages is None and back.hosts["c"].packages_note == "rpm: exit 1"
    with pytest.raises(ReportError, match=r"the hosts of image img differ .*--host"):
        load_side(tmp_path)
    assert load_side(tmp_path, host="a").packages == back.hosts["a"].packages


@pytest.mark.parametrize(("text", "error"), [
    ("{", "not an image record \\(not JSON"),
    ('{"generator": "other"}', "not an image record of pytest-azlinux"),
    ('{"generator": "pytest-azlinux", "format": 9}', "image record format 9 is not 1"),
    ('{"generator": "pytest-azlinux", "format": 1, "image": "x", "hosts": {"h": '
     '{"packages": 3}}, "package_lists": []}', "hosts.h.packages: expected an index"),
    ('{"generator": "pytest-azlinux", "format": 1, "image": "x", "hosts": {}, '
     '"package_lists": [{"bash": "5.2"}]}', "package_lists\\[0\\].bash: expected"),
])
def test_a_malformed_image_file_is_an_error_naming_it(tmp_path: Path, text: str,
                                                       error: str) -> None:
    path = tmp_path / "x.image.json"
    path.write_text(text)
    with pytest.raises(ReportError, match=f"^{path}: {error}"):
        read_image_file(path)


# -- the command, as a user runs it ------------------------------------------------------------
def azl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_azlinux.cli", "report", "diff", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_command_prints_the_real_differences() -> None:
    done = azl(str(AUG14), str(AUG20))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"old: {AUG14}\n     AKSAzureLinux-V3gen2-202608.14.0, "
                                  "azurelinux 3.0.20260809, kernel 6.6.150.1-1.azl3, x86_64, "
                                  "395 packages (release notes)\n")
    assert "node image version: AKSAzureLinux-V3gen2-202608.14.0 -> " \
           "AKSAzureLinux-V3gen2-202608.20.0\n" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("  ") and
            not line.startswith("     ")]
    assert len(rows) == 13
    as_json = json.loads(azl("--json", str(AUG14), str(AUG20)).stdout)
    assert as_json["counts"]["upgraded"] == 12 and as_json["kernel"] is None
    markdown = azl("--markdown", str(AUG14), str(AUG20)).stdout
    assert markdown.startswith("## azl report diff\n")
    assert "| python3 | upgraded | 3.12.9-14.azl3 (x86_64) | 3.12.14-1.azl3 (x86_64) |" in markdown
    assert azl("--host", "a", "--host", "b", "--host", "c", str(AUG14), str(AUG20)).stderr == (
        "azl: error: --host: give it once (both sides) or twice (OLD, NEW), not 3 times\n")


@pytest.mark.parametrize("make", ["missing", "empty dir", "text file", "truncated notes",
                                  "junit without record"])
def test_bad_input_is_one_line_exit_4_naming_the_path(tmp_path: Path, make: str) -> None:
    path = tmp_path / "side"
    if make == "empty dir":
        path.mkdir()
    elif make == "text file":
        path.write_text("hello\n")
    elif make == "truncated notes":  # cut inside the package list: its End marker is gone
        path = tmp_path / "202608.20.0.txt"
        path.write_text("".join(AUG20.read_text().splitlines(keepends=True)[:300]))
    elif make == "junit without record":
        path.mkdir()
        (path / "img.xml").write_text("<testsuites/>")
    done = azl(str(path), str(AUG20))
    assert done.returncode == 4, done.stdout
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"azl: error: {path}")


def test_a_run_with_several_images_asks_which(tmp_path: Path) -> None:
    for image in ("img-a", "img-b"):
        write_image_file(tmp_path / f"{image}.image.json", image,
                         {"h": entry({"bash": [("5.2-1", "x86_64")]})}, "0.1.0", "t")
    done = azl(str(tmp_path), str(AUG20))
    assert done.returncode == 4
    assert done.stderr == f"azl: error: {tmp_path}: 2 images (img-a, img-b): pick one with " \
                          "--image\n"
    done = azl("--image", "img-b", "--image", "x", str(tmp_path), str(tmp_path))
    assert done.returncode == 4 and "no image 'x' here (images: img-a, img-b)" in done.stderr
    assert azl("--image", "img-a", str(tmp_path), str(tmp_path)).returncode == 0


def test_old_and_new_may_be_a_run_and_a_recorded_image(tmp_path: Path) -> None:
    old = load_side(AUG14)
    assert old.packages is not None
    packages = {n: [(i.evr, i.arch) for i in v] for n, v in old.packages.items()}
    write_image_file(tmp_path / "node.image.json", "node",
                     {"aks-1": host_entry(old.os_release, old.kernel, old.arch,
                                          old.node_image_version, packages, "rpm database")},
                     "0.1.0", "t")
    run = load_side(tmp_path)
    assert run.packages == old.packages and run.label.endswith("node on aks-1")
    diff = diff_images(run, load_side(AUG20))
    assert diff.counts() == diff_images(old, load_side(AUG20)).counts()


def test_render_of_a_record_built_in_memory() -> None:
    old = ImageRecord("a", {"ID": "azurelinux", "VERSION": "3.0.1"}, "6.6.1", "x86_64", None,
                      pkgs(bash="5.2-1"))
    new = ImageRecord("b", {"ID": "azurelinux", "VERSION": "3.0.2"}, "6.6.2", "x86_64", None,
                      pkgs(bash="1:5.1-1"))
    text = render_text(diff_images(old, new))
    assert "kernel: 6.6.1 -> 6.6.2\n" in text
    assert "os-release VERSION: '3.0.1' -> '3.0.2'\n" in text
    assert "  upgraded   bash 5.2-1 -> 1:5.1-1 (x86_64)\n" in text

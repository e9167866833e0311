"""A run records its image (``<image>.image.json``), written by the real plugin on the
``local`` target (this machine: Debian, packages from dpkg), and the report tools read it:
``azl report diff`` on two runs, ``compare`` and the HTML page when the image changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from pytest_azlinux.report.image_diff import diff_images
from pytest_azlinux.report.image_file import host_entry, read_image_file, write_image_file
from pytest_azlinux.report.image_source import load_side
from tests.unit.test_html_report import CHROMIUM, rendered

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
GEN2 = Path(__file__).parents[1] / "data" / "agentbaker" / "AKSAzureLinuxV3" / "gen2"
SUITE = dedent(
    """
    def test_one(azl_host):
        pass

    def test_two(azl_host):
        pass
    """
)


def local_run(pytester: pytest.Pytester, out: Path, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest(*RUN, "--azl-target", "local", "--azl-junit-dir", str(out),
                                *args)
    assert result.ret == 0, result.stdout.str()
    return result


def dpkg_installed() -> dict[str, set[tuple[str, str]]]:
    """What dpkg itself says is installed here, asked directly (not through the plugin)."""
    text = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"],
        capture_output=True, text=True, check=True).stdout
    out: dict[str, set[tuple[str, str]]] = {}
    for line in text.splitlines():
        name, version, arch, status = line.split("\t")
        if status[1:2] == "i":
            out.setdefault(name, set()).add((version, arch))
    return out


def test_a_run_writes_its_image_record_beside_the_report(pytester: pytest.Pytester) -> None:
    out = pytester.path / "reports"
    local_run(pytester, out)
    [junit] = out.glob("*.xml")
    record = out / f"{junit.stem}.image.json"
    found = read_image_file(record)
    assert list(found.hosts) == ["localhost"]  # sent once, though two tests ran there
    host = found.hosts["localhost"]
    [os_id] = [line[3:].strip('"') for line in Path("/etc/os-release").read_text().splitlines()
               if line.startswith("ID=")]
    assert host.os_release["ID"] == os_id
    assert host.kernel == os.uname().release and host.arch == os.uname().machine
    assert host.packages_source == "dpkg" and host.packages is not None
    assert {n: {(i.evr, i.arch) for i in v} for n, v in host.packages.items()} == \
        dpkg_installed()
    doc = json.loads(record.read_text())
    assert doc["generator"] == "pytest-azlinux" and doc["image"] == junit.stem
    # Nothing of it lands in the JUnit file: the record has its own.
    assert "azl.image_record" not in junit.read_text()


def test_a_host_whose_packages_cannot_be_read_says_so(pytester: pytest.Pytester,
                                                      tmp_path: Path) -> None:
    """This machine without a package tool on PATH: no rpm, no dpkg-query, no manifests."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if tool.name not in ("rpm", "dpkg-query", "dpkg") and \
                    not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    out = pytester.path / "reports"
    pytester.makepyfile(test_suite=SUITE)
    env = {**os.environ, "PATH": str(bin_dir)}
    done = subprocess.run([sys.executable, "-m", "pytest", *RUN, "--azl-target", "local",
                           "--azl-junit-dir", str(out)], cwd=pytester.path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    [record] = out.glob("*.image.json")
    doc = json.loads(record.read_text())
    host = doc["hosts"]["localhost"]
    assert host["packages"] is None and doc["package_lists"] == []
    assert "cannot read the installed packages" in host["packages_note"]
    diff = diff_images(load_side(out), load_side(GEN2 / "202608.20.0.txt"))
    assert diff.packages == [] and "cannot read the installed packages" in diff.packages_unknown


def test_a_run_removes_the_image_records_an_earlier_run_left(pytester: pytest.Pytester) -> None:
    out = pytester.path / "reports"
    out.mkdir()
    old = write_image_file(out / "gone-image.image.json", "gone-image", {}, "0.1.0", "t")
    mine = out / "notes.image.json"
    mine.write_text('{"mine": true}')
    local_run(pytester, out)
    assert not old.exists() and mine.exists()


def test_diff_compare_and_html_show_what_changed_between_two_runs(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Two real runs of this machine have the same image; their records are then given the
    package lists of two real consecutive node images (AgentBaker's 202608.14.0 and
    202608.20.0 of AKSAzureLinuxV3/gen2) to stand for an image that changed between them."""
    from pytest_azlinux.cli import main

    base, now = pytester.path / "base", pytester.path / "now"
    local_run(pytester, base)
    local_run(pytester, now)
    capsys.readouterr()
    assert main(["report", "diff", str(base), str(now)]) == 0
    assert "no difference" in capsys.readouterr().out
    for run, notes in ((base, "202608.14.0.txt"), (now, "202608.20.0.txt")):
        [path] = run.glob("*.image.json")
        recorded = load_side(GEN2 / notes)
        assert recorded.packages is not None
        entry = host_entry(recorded.os_release, recorded.kernel, recorded.arch,
                           recorded.node_image_version,
                           {n: [(i.evr, i.arch) for i in v] for n, v in recorded.packages.items()},
                           "rpm database")
        write_image_file(path, json.loads(path.read_text())["image"], {"localhost": entry},
                         "0.1.0", "t")
    assert main(["report", "compare", str(base), str(now)]) == 0
    text = capsys.readouterr().out
    assert "#### Image changes since the base run" in text
    assert "packages: 12 upgraded, 1 removed; changed: node image version" in text
    assert "| kernel | removed | 6.6.143.1-1.azl3 (x86_64) | (6.6.150.1-1.azl3 stays) |" in text
    assert main(["report", "compare", "--json", str(base), str(now)]) == 0
    [image] = json.loads(capsys.readouterr().out)["images"]
    assert image["image_diff"]["counts"]["upgraded"] == 12
    page = pytester.path / "page.html"
    assert main(["report", "html", str(now), "--history", str(base), "--out", str(page)]) == 0
    html = page.read_text()
    assert "Image changes since the last earlier run" in html
    assert "containerd-accelerated-container-image" in html
    assert html.count('class="pkg-upgraded"') == 12 and html.count('class="pkg-removed"') == 1
    if CHROMIUM is not None:  # rendered: the section is in the DOM, the console has no error
        dom = rendered(page, tmp_path)
        assert "Image changes since the last earlier run" in dom
        assert "packages: 12 upgraded, 1 removed; changed: node image version" in dom
    # without an earlier run, or with an unchanged image, no such section
    assert main(["report", "html", str(now), "--out", str(page)]) == 0
    assert "Image changes" not in page.read_text()


def test_with_xdist_the_workers_send_every_hosts_record(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"azl-targets": dedent(
        """
        targets:
          t-a: {kind: local, name: host-a}
          t-b: {kind: local, name: host-b}
          t-c: {kind: local, name: host-c}
          t-d: {kind: local, name: host-d}
        """)})
    out = pytester.path / "reports"
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(*RUN, "-n", "2", "--azl-target", "t-a,t-b,t-c,t-d",
                                           "--azl-junit-dir", str(out))
    assert result.ret == 0, result.stdout.str()
    [record] = out.glob("*.image.json")
    found = read_image_file(record)
    assert sorted(found.hosts) == ["host-a", "host-b", "host-c", "host-d"]
    assert len(json.loads(record.read_text())["package_lists"]) == 1  # one machine, one list
    assert all(h.packages for h in found.hosts.values())

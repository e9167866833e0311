"""The package inventory: SPDX manifests (ACL's real manifest format), rpm and dpkg output
from the real tools, the choice of source, and rpm's version order.

tests/data/spdx/package-manifest.spdx.json is ACL's manifest generator golden (see
tests/data/spdx/PROVENANCE.md). The malformed, cut and non-SPDX copies, the containerd
system-extension manifest and the 700-package manifest are made here from it. rpm output
comes from a real rpm database the test builds with rpmbuild (Debian's rpm package); dpkg
output from this machine's dpkg.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_azlinux.errors import ManifestError, PackageInventoryError
from pytest_azlinux.hardening.baseline import gather
from pytest_azlinux.hardening.checks.services import AuditCheck, GpgCheck
from pytest_azlinux.hardening.evidence import Evidence
from pytest_azlinux.hardening.readplan import ReadPlan
from pytest_azlinux.host import Host
from pytest_azlinux.packages import spdx
from pytest_azlinux.packages.inventory import (
    READS,
    Inventory,
    Package,
    host_inventory,
    inventory_from,
    parse_dpkg,
    parse_rpm,
    parse_spdx,
)
from pytest_azlinux.packages.sources import DPKG_ALL, MANIFEST_DIR, RPM_ALL, SPDX_MANIFESTS
from pytest_azlinux.packages.versions import EVR, compare_evr, version_at_least
from pytest_azlinux.posture.packages import check_packages
from pytest_azlinux.profiles import load_profiles
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport
from pytest_azlinux.transport.protocol import CommandResult

DATA = Path(__file__).resolve().parents[1] / "data" / "spdx"
REAL = DATA / "package-manifest.spdx.json"
NOT_THERE = CommandResult("", 127, b"", b"", 0.0)  # a tool the host does not have


def _sh(script: str, cwd: Path | None = None) -> CommandResult:
    """Run one of the inventory's read scripts for real, as a host would."""
    done = subprocess.run(["sh", "-c", script], capture_output=True, timeout=60, cwd=cwd)
    return CommandResult(script, done.returncode, done.stdout, done.stderr, 0.0)


def _manifests(directory: Path) -> CommandResult:
    """The real ``SPDX_MANIFESTS`` script, pointed at ``directory`` instead of the image's."""
    return _sh(SPDX_MANIFESTS.script.replace(MANIFEST_DIR, str(directory)))


def _containerd_sysext(packages: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A system extension's manifest in the same shape as the real one (made by the test)."""
    doc: dict[str, Any] = copy.deepcopy(json.loads(REAL.read_text()))
    root = doc["packages"][0]
    root.update(name="containerd", versionInfo="2.0.0")
    doc["name"] = "containerd"
    doc["packages"] = [root] + [
        {
            "SPDXID": f"SPDXRef-Package-{i}-{name}", "name": name, "versionInfo": evr,
            "externalRefs": [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                              "referenceLocator": f"pkg:rpm/azurelinux/{name}@{evr}?arch={arch}"}],
        }
        for i, (name, evr, arch) in enumerate(packages)
    ]  # fmt: skip
    return doc


# -- SPDX ---------------------------------------------------------------------------------------


def test_the_real_acl_manifest_lists_its_packages_without_the_document_root() -> None:
    entries = spdx.parse_manifest(str(REAL), REAL.read_text())
    assert len(entries) == 22  # 23 entries in packages[], the root (the image) left out
    assert "azurecontainerlinux" not in {e.name for e in entries}
    by_name: dict[str, list[spdx.ManifestEntry]] = {}
    for e in entries:
        by_name.setdefault(e.name, []).append(e)
    assert by_name["kernel"] == [spdx.ManifestEntry("kernel", "6.6.145.2-1.azl3", "x86_64")]
    # multilib: one name, two arches; the epoch of one copy comes with its versionInfo
    assert sorted(by_name["zlib"]) == [
        ("zlib", "1.3.1-1.azl3", "aarch64"), ("zlib", "1:1.3.1-1.azl3", "x86_64")
    ]
    assert by_name["libstdc++"][0].arch == "x86_64"  # purl name percent-encoded: %2B%2B
    assert by_name["azurelinux-release"][0].arch == "noarch"


def test_manifest_origins_come_from_the_file_names() -> None:
    assert spdx.manifest_origin(f"{MANIFEST_DIR}/package-manifest.spdx.json") == "base image"
    assert spdx.manifest_origin(
        f"{MANIFEST_DIR}/package-manifest.containerd.spdx.json"
    ) == "sysext containerd"
    assert spdx.manifest_origin("/x/package-manifestdebug.spdx.json") == (
        "package-manifestdebug.spdx.json"
    )


def test_base_and_sysext_manifests_make_one_inventory_with_origins(tmp_path: Path) -> None:
    shutil.copy(REAL, tmp_path / "package-manifest.spdx.json")
    sysext = _containerd_sysext([("containerd2", "2.0.0-14.azl3", "x86_64"),
                                 ("runc", "1.1.5-1.azl3", "x86_64")])
    (tmp_path / "package-manifest.containerd.spdx.json").write_text(json.dumps(sysext))
    result = _manifests(tmp_path)
    assert result.rc == 0, result.stderr
    inv = inventory_from(NOT_THERE, result, NOT_THERE)
    assert inv.source == "spdx" and inv.count == 24
    assert [p.origin for p in inv.get("runc")] == ["sysext containerd"]
    assert {p.origin for p in inv.get("glibc")} == {"base image"}
    assert inv.where == (
        "SPDX manifests: package-manifest.spdx.json, package-manifest.containerd.spdx.json"
    )
    azl = load_profiles().get("azl-3.0")
    found = {f.check: f.found for f in check_packages(inv, azl)}
    assert found == {
        # openssl-libs is there, the openssl package is not: absent, and the list says where from
        "packages.openssl": f"not installed ({inv.where})",
        "packages.runc": f"1.1.5-1.azl3 in sysext containerd ({inv.where})",
    }


def test_the_newest_copy_and_every_old_copy_count() -> None:
    copies = [Package("runc", "1.2.5-3.azl3", "x86_64", "base image"),
              Package("runc", "1.1.5-1.azl3", "x86_64", "sysext old")]
    inv = Inventory.of("spdx", copies, [f"{MANIFEST_DIR}/package-manifest.spdx.json"])
    newest = inv.newest("runc")
    assert newest is not None and newest.origin == "base image"
    findings = {f.check: f for f in check_packages(inv, load_profiles().get("azl-3.0-base"))}
    assert findings["packages.runc"].found == (
        "1.1.5-1.azl3.x86_64 in sysext old (SPDX manifests: package-manifest.spdx.json)"
    )  # the newer copy in the base image does not hide the old one


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda t: t[: len(t) // 2], "not valid JSON (cut short)"),
        (lambda t: "", "empty"),
        (lambda t: "<html>503</html>", "not valid JSON: Expecting value (line 1, column 1)"),
        (lambda t: "[]", "not an SPDX document (the JSON is a list)"),
        (lambda t: t.replace('"SPDX-2.2"', '"SPDX-3.0"'), "not an SPDX 2 document"),
        (lambda t: json.dumps({"bomFormat": "CycloneDX", "components": []}),
         "not an SPDX 2 document (spdxVersion: None)"),
        (lambda t: json.dumps({**json.loads(t), "packages": {}}), "no packages array"),
        (lambda t: json.dumps({**json.loads(t), "packages": json.loads(t)["packages"][:1]}),
         "lists no packages (only the document itself)"),
        (lambda t: t.replace('"name": "bash"', '"name": ""'), "packages[2] has no name"),
        (lambda t: t.replace('"versionInfo": "9.4-7.azl3"', '"versionInfo": null'),
         "packages[4] (coreutils) has no versionInfo"),
        (lambda t: t.replace('"packages": [', '"packages": [7, ', 1),
         "packages[0] is not an object"),
    ],
)
def test_a_broken_manifest_is_an_error_naming_the_file(mangle: Any, problem: str) -> None:
    path = f"{MANIFEST_DIR}/package-manifest.spdx.json"
    with pytest.raises(ManifestError) as info:
        spdx.parse_manifest(path, mangle(REAL.read_text()))
    assert str(info.value).startswith(path + ": ")
    assert problem in str(info.value)


def test_a_manifest_beyond_the_size_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spdx, "MAX_MANIFEST_BYTES", 4096)
    with pytest.raises(ManifestError, match="over 4096 bytes"):
        spdx.parse_manifest("m.spdx.json", REAL.read_text())


def test_a_broken_manifest_on_the_host_is_an_error_never_absent_packages(tmp_path: Path) -> None:
    (tmp_path / "package-manifest.spdx.json").write_text(REAL.read_text()[:5000])
    result = _manifests(tmp_path)
    cut = r"package-manifest\.spdx\.json: not valid JSON \(cut short\)"
    with pytest.raises(ManifestError, match=cut):
        inventory_from(NOT_THERE, result, NOT_THERE)


def test_an_unreadable_manifest_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "package-manifest.spdx.json").mkdir()  # cat fails on it, as on a bad file
    result = _manifests(tmp_path)
    assert result.rc == 4
    with pytest.raises(ManifestError, match=r"cannot read the SPDX manifests .*package-manifest"):
        inventory_from(NOT_THERE, result, NOT_THERE)


def test_700_packages_parse_well_under_100_ms() -> None:
    """A full node image has about 700 packages; the manifest is made here from the real
    entries' shape (the real golden has 22)."""
    doc = json.loads(REAL.read_text())
    entry = doc["packages"][2]
    ref = entry["externalRefs"][0]
    doc["packages"] = doc["packages"][:1] + [
        {**entry, "SPDXID": f"SPDXRef-Package-{i}-p{i}", "name": f"p{i}", "externalRefs": [
            {**ref, "referenceLocator": f"pkg:rpm/azurelinux/p{i}@1.{i}-1.azl3?arch=x86_64"}]}
        for i in range(700)
    ]  # fmt: skip
    text = "==> /usr/share/os-manifests/package-manifest.spdx.json\n" + json.dumps(doc, indent=2)
    best = min(_timed(lambda: parse_spdx(text)) for _ in range(3))
    packages, _ = parse_spdx(text)
    assert len(packages) == 700
    assert best < 0.1, f"{best * 1000:.1f} ms"


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- rpm and dpkg, from the real tools ----------------------------------------------------------


@pytest.fixture(scope="module")
def rpm_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real rpm database holding two packages built here: one with an epoch, one whose
    version sorts before its release (``~rc1``)."""
    if not (shutil.which("rpm") and shutil.which("rpmbuild")):
        pytest.skip("rpm and rpmbuild are not installed (Debian: apt-get install rpm)")
    top = tmp_path_factory.mktemp("rpm")
    specs = {
        "azl-toy": "Version: 1.2.3\nRelease: 4.azl3\nEpoch: 2\n",
        "azl-lib": "Version: 0.9~rc1\nRelease: 1.azl3\n",
    }
    for name, head in specs.items():
        (top / f"{name}.spec").write_text(
            f"Name: {name}\n{head}Summary: toy\nLicense: MIT\nBuildArch: noarch\n"
            "%description\ntoy\n%files\n"
        )
        subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}/build",
                        str(top / f"{name}.spec")], check=True, capture_output=True, timeout=120)
    db = top / "db"
    subprocess.run(["rpm", "--dbpath", str(db), "--initdb"], check=True, timeout=60)
    rpms = sorted(str(p) for p in (top / "build" / "RPMS").rglob("*.rpm"))
    subprocess.run(["rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--noscripts",
                    *rpms], check=True, capture_output=True, timeout=60)  # fmt: skip
    return db


def test_rpm_inventory_from_a_real_rpm_database(rpm_db: Path) -> None:
    result = _sh(RPM_ALL.script.replace("rpm -qa", f"rpm --dbpath {rpm_db} -qa"))
    assert result.rc == 0
    inv = inventory_from(result, NOT_THERE, NOT_THERE)
    assert inv.source == "rpm" and inv.where == "rpm database"
    assert [(p.evr, p.arch, p.origin) for p in inv.get("azl-toy")] == [
        ("2:1.2.3-4.azl3", "noarch", "rpm database")
    ]
    assert inv.get("azl-lib")[0].evr == "0.9~rc1-1.azl3"
    assert not version_at_least(inv.get("azl-lib")[0].evr, "0.9")  # ~rc1 is before 0.9


def test_an_empty_rpm_database_gives_way_to_dpkg(tmp_path: Path) -> None:
    """Debian with rpm installed (this machine): rpm answers, knows nothing; dpkg has them."""
    if not shutil.which("rpm"):
        pytest.skip("rpm is not installed")
    subprocess.run(["rpm", "--dbpath", str(tmp_path), "--initdb"], check=True, timeout=60)
    rpm = _sh(RPM_ALL.script.replace("rpm -qa", f"rpm --dbpath {tmp_path} -qa"))
    assert rpm.rc == 0 and not rpm.stdout.strip()
    dpkg = _sh(DPKG_ALL.script)
    inv = inventory_from(rpm, _manifests(tmp_path / "none"), dpkg)
    assert inv.source == "dpkg"
    with pytest.raises(PackageInventoryError, match="rpm: no packages"):
        inventory_from(rpm, _manifests(tmp_path / "none"), dpkg, "rpm")


def test_dpkg_inventory_from_this_machine() -> None:
    if not shutil.which("dpkg-query"):
        pytest.skip("no dpkg-query")
    result = _sh(DPKG_ALL.script)
    packages = parse_dpkg(result.stdout)
    own = subprocess.run(["dpkg-query", "-W", "-f=${Version}\t${Architecture}", "dpkg"],
                         capture_output=True, text=True, check=True).stdout.split("\t")
    [dpkg] = [p for p in packages if p.name == "dpkg"]
    assert (dpkg.evr, dpkg.arch, dpkg.origin) == (own[0], own[1], "dpkg")


def test_the_parsers_keep_only_installed_packages_and_refuse_foreign_lines() -> None:
    dpkg = parse_dpkg("a\t1.0\tamd64\tii \nb\t2.0\tamd64\trc \nc\t3.0\tamd64\thi \n"
                      "d\t\tamd64\tun \n")
    assert [p.name for p in dpkg] == ["a", "c"]  # "hi": held, still installed
    rpm = parse_rpm("bash\t5.2.15-3.azl3\tx86_64\ngpg-pubkey\t3135ce90-5e6fda74\t(none)\n")
    assert [p.name for p in rpm] == ["bash"]
    with pytest.raises(PackageInventoryError, match="rpm -qa printed a line"):
        parse_rpm("bash-5.2.15-3.azl3.x86_64\n")  # NEVRA, not the query's format
    with pytest.raises(PackageInventoryError, match="dpkg-query printed a line"):
        parse_dpkg("a 1.0 amd64 ii\n")


# -- the one owner, on a real host --------------------------------------------------------------


@pytest.fixture
def here() -> Host:
    return Host(HostSpec(name="here", target="t", access="local"), LocalTransport("here"))


def test_host_inventory_on_this_machine_and_the_profile_source(here: Host) -> None:
    """This machine: Debian (dpkg), maybe rpm without packages, no /usr/share/os-manifests."""
    if Path(MANIFEST_DIR).exists() or not shutil.which("dpkg-query"):
        pytest.skip(f"this machine has {MANIFEST_DIR} or no dpkg")
    inv = host_inventory(here)
    assert inv.source == "dpkg" and "dpkg" in inv and inv.where == "dpkg"
    assert host_inventory(here) is inv  # read and parsed once
    with pytest.raises(ManifestError) as info:
        host_inventory(here, "spdx")
    message = str(info.value)
    assert message.startswith("here: the profile's package_source is spdx")
    assert f"SPDX package manifests in {MANIFEST_DIR}" in message
    assert f"no manifest in {MANIFEST_DIR}" in message and "dpkg-query:" in message


def test_no_source_at_all_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(PackageInventoryError, match="cannot read the installed packages: no rpm"):
        inventory_from(NOT_THERE, CommandResult("", 3, b"", b"", 0.0), NOT_THERE)


# -- versions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1:1.0-1", "2.0-1", 1),  # the epoch first
        ("0:2.0-1", "2.0-1", 0),  # a missing epoch is 0
        ("2.0-1.azl3", "2.0-2.azl3", -1),  # then the release
        ("2.0.1-1", "2.0-9", 1),  # the version before the release
        ("1.0~rc1-1", "1.0-1", -1),
        ("6.6.104.2-4.azl3", "6.6.104.2-4.azl3", 0),
        ("2.0", "2.0-1", -1),  # no release: older than any
    ],
)
def test_compare_evr_is_rpms_full_order(a: str, b: str, expected: int) -> None:
    assert compare_evr(a, b) == expected
    assert compare_evr(EVR.parse(b), EVR.parse(a)) == -expected


def test_evr_prints_as_parsed() -> None:
    for text in ("1:1.3.1-1.azl3", "255-33.azl3", "2.0"):
        assert str(EVR.parse(text)) == text


# -- the hardening baseline reads the same inventory ------------------------------------------


def test_hardening_judges_missing_tools_by_the_inventory(tmp_path: Path) -> None:
    shutil.copy(REAL, tmp_path / "package-manifest.spdx.json")
    acl = inventory_from(NOT_THERE, _manifests(tmp_path), NOT_THERE)
    no_pkgconf = Evidence("acl", {"pkgconf": ""}, inventory=acl)
    verdict = GpgCheck(kind="gpgcheck", what="main").judge(no_pkgconf)
    assert verdict.outcome == "not_applicable"
    assert "SPDX manifests: package-manifest.spdx.json" in verdict.found
    no_auditctl = {"audit.status": "sh: auditctl: not found", "rc:audit.status": "127"}
    audit = AuditCheck(kind="audit", rule="enabled")
    verdict = audit.judge(Evidence("acl", no_auditctl, inventory=acl))
    assert verdict.outcome == "failed"
    assert verdict.found == (
        "auditctl not found: no audit or auditd package (SPDX manifests: "
        "package-manifest.spdx.json)"
    )
    rpm = Inventory.of("rpm", parse_rpm("audit\t3.1.2-1.azl3\tx86_64\n"))
    verdict = audit.judge(Evidence("azl", no_auditctl, inventory=rpm))
    assert verdict.outcome == "unavailable"
    assert "although audit 3.1.2-1.azl3 is installed (rpm database)" in verdict.found


def test_the_hardening_read_brings_the_inventory_with_it(here: Host) -> None:
    if Path(MANIFEST_DIR).exists() or not shutil.which("dpkg-query"):
        pytest.skip(f"this machine has {MANIFEST_DIR} or no dpkg")
    plan = ReadPlan()
    GpgCheck(kind="gpgcheck", what="main").plan(plan)
    evidence = gather(here, plan)
    assert evidence.inventory is not None and evidence.inventory.source == "dpkg"
    assert all(r in here.reads.results for r in READS)
    verdict = GpgCheck(kind="gpgcheck", what="main").judge(evidence)
    if not Path("/etc/tdnf/tdnf.conf").exists() and not Path("/etc/dnf/dnf.conf").exists():
        assert verdict.outcome == "unavailable" and "(packages: dpkg)" in verdict.found


def test_a_source_the_profile_does_not_name_is_not_parsed() -> None:
    garbage = CommandResult("", 0, b"bash-5.2.15-3.azl3.x86_64\n", b"", 0.0)
    dpkg = CommandResult("", 0, b"bash\t5.2.15-3\tamd64\tii \n", b"", 0.0)
    assert inventory_from(garbage, NOT_THERE, dpkg, "dpkg").source == "dpkg"
    with pytest.raises(PackageInventoryError, match="rpm -qa printed a line"):
        inventory_from(garbage, NOT_THERE, dpkg)  # rpm answers first: its output must parse

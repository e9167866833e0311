"""A recorded image as a Host: its reads answered from the recording (the real release-notes
files in tests/data/agentbaker), every command refused with NotRecorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_azlinux.errors import NotRecorded, RecordingError
from pytest_azlinux.facts import FACTS
from pytest_azlinux.host import Host
from pytest_azlinux.kinds.recorded import RecordedContext, resolve
from pytest_azlinux.packages.inventory import host_inventory
from pytest_azlinux.packages.sources import RPM_ALL, SPDX_MANIFESTS
from pytest_azlinux.posture import gather
from pytest_azlinux.reads import Read
from pytest_azlinux.recorded.release_notes import NODE_IMAGE_LABEL
from pytest_azlinux.session import make_transport
from pytest_azlinux.targets import RecordedTarget

DATA = Path(__file__).resolve().parents[1] / "data" / "agentbaker"
GEN2 = DATA / "AKSAzureLinuxV3/gen2/202511.07.0.txt"


def _host(path: Path, target: str = "rec") -> Host:
    resolved = resolve(target, RecordedTarget(kind="recorded", path=str(path)), start=True)
    (spec,) = resolved.hosts
    assert isinstance(resolved.context, RecordedContext)
    return Host(spec, make_transport(spec, resolved.context))


def test_facts_from_the_recording() -> None:
    host = _host(GEN2)
    facts = host.facts
    assert (facts.os_id, facts.version, facts.version_id) == ("azurelinux", "3.0.20251030", "3.0")
    assert (facts.kernel, facts.arch, facts.hostname) == ("6.6.104.2-4.azl3", "x86_64",
                                                          "202511.07.0")
    assert facts.cmdline == () and facts.missing == {"cmdline", "release_files"}
    assert facts.node_image_version == "AKSAzureLinux-V3gen2-202511.07.0"
    assert host.spec.labels == {NODE_IMAGE_LABEL: "AKSAzureLinux-V3gen2-202511.07.0"}
    assert host.spec.access == "recorded" and host.address == str(GEN2)


def test_os_guard_and_acl_say_which_facts_are_missing() -> None:
    osguard = _host(DATA / "AKSAzureLinuxV3/osguardgen2fipstl/202608.20.0.txt").facts
    assert osguard.kernel == "" and "kernel" in osguard.missing
    assert osguard.arch == "x86_64" and osguard.variant_id == "osguard"
    acl = _host(DATA / "AKSAzureContainerLinux/arm64gen2tl/202608.20.0.txt").facts
    assert acl.kernel == "6.6.150.1-1.azl3" and acl.arch == "" and "arch" in acl.missing


def test_fips_file_as_the_image_suite_reads_it() -> None:
    assert gather.read_optional(_host(GEN2), "/proc/sys/crypto/fips_enabled") == "0\n"
    fips = _host(DATA / "AKSAzureLinuxV3/gen2fips/202608.20.0.txt")
    assert gather.read_optional(fips, "/proc/sys/crypto/fips_enabled") == "1\n"
    assert fips.reads.get(gather.FILES["fips_enabled"]).stdout == "1\n"


def test_rpm_all_in_its_format_in_file_order() -> None:
    host = _host(GEN2)
    lines = host.reads.get(RPM_ALL).stdout.splitlines()
    assert lines[0] == "filesystem\t1.1-21.azl3\tx86_64"
    assert "gpg-pubkey\t3135ce90-5e6fda74\t(none)" in lines
    assert "kernel\t6.6.104.2-4.azl3\tx86_64" in lines
    assert len(lines) == 384
    inventory = host_inventory(host)
    assert inventory.source == "rpm" and inventory.where == "rpm database"
    assert inventory.versions(["kernel", "libapparmor", "nosuch"]) == {
        "kernel": "6.6.104.2-4.azl3", "libapparmor": "3.1.7-1.azl3"}
    assert "gpg-pubkey" not in inventory  # a signing key, not a package


def test_acl_has_no_package_list() -> None:
    host = _host(DATA / "AKSAzureContainerLinux/gen2tl/202608.20.0.txt")
    with pytest.raises(NotRecorded, match=r"202608\.20\.0\.txt: the recording does not hold "
                                          r"the installed packages \(ACL's release notes"):
        host.reads.get(RPM_ALL)
    with pytest.raises(NotRecorded, match="does not hold SPDX package manifests"):
        host.reads.get(SPDX_MANIFESTS)


def test_manifests_recorded_beside_the_file(tmp_path: Path) -> None:
    """A stand-in manifest made here (the mechanics of the sidecar directory)."""
    copy = tmp_path / "AKSAzureContainerLinux" / "gen2tl" / "202608.20.0.txt"
    copy.parent.mkdir(parents=True)
    copy.write_bytes((DATA / "AKSAzureContainerLinux/gen2tl/202608.20.0.txt").read_bytes())
    sidecar = copy.with_name("202608.20.0.os-manifests")
    sidecar.mkdir()
    doc = {"spdxVersion": "SPDX-2.2", "packages": []}
    (sidecar / "package-manifest.spdx.json").write_text(json.dumps(doc))
    (sidecar / "notes.txt").write_text("not a manifest")
    text = _host(copy).reads.get(SPDX_MANIFESTS).stdout
    assert text == f"==> /usr/share/os-manifests/package-manifest.spdx.json\n{json.dumps(doc)}\n"


def test_commands_and_unrecorded_reads_are_refused_naming_them() -> None:
    host = _host(GEN2)
    with pytest.raises(NotRecorded, match=rf"^{GEN2}: the recording does not hold the output "
                                          r"of `systemctl is-active sshd`$"):
        host.run("systemctl is-active sshd")
    with pytest.raises(NotRecorded, match="does not hold the file /etc/ssh/sshd_config"):
        host.reads.get(Read.file("/etc/ssh/sshd_config", sudo=True))
    assert host.reads.get(Read.file("/etc/os-release", sudo=True)).stdout.startswith(
        'NAME="Microsoft Azure Linux"\n')
    with pytest.raises(NotRecorded):
        host.reads.fresh(Read("cat /proc/uptime"))


def test_fetch_keeps_what_is_recorded_and_runs_nothing() -> None:
    host = _host(GEN2)
    host.reads.fetch([FACTS, RPM_ALL, Read("command -v sshd")])
    assert FACTS in host.reads.results and RPM_ALL in host.reads.results
    assert Read("command -v sshd") not in host.reads.results


def test_label_is_not_part_of_a_reads_identity() -> None:
    assert Read("true", label="x") == Read("true") and hash(Read("true", label="x")) == hash(
        Read("true"))
    assert Read.file("/a b").script == "cat -- '/a b' 2>/dev/null"
    assert Read.file("/a").words == "the file /a"
    assert Read("x" * 100).words.endswith("...`")


def test_directory_and_its_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no release-notes files"):
        resolve("rec", RecordedTarget(kind="recorded", path=str(tmp_path)), start=True)
    with pytest.raises(RecordingError, match="no such file or directory"):
        resolve("rec", RecordedTarget(kind="recorded", path=str(tmp_path / "x.txt")),
                start=True)
    bad = tmp_path / "a b.txt"
    bad.write_bytes(GEN2.read_bytes())
    with pytest.raises(RecordingError, match="cannot name a host"):
        resolve("rec", RecordedTarget(kind="recorded", path=str(tmp_path)), start=True)


def test_path_is_relative_to_the_targets_file(tmp_path: Path) -> None:
    from pytest_azlinux.targets import load_targets

    (tmp_path / "t.yaml").write_text(
        "targets:\n  rec:\n    kind: recorded\n    path: notes/202511.07.0.txt\n")
    config = load_targets(tmp_path / "t.yaml").get("rec")
    assert isinstance(config, RecordedTarget)
    assert config.path == str(tmp_path / "notes" / "202511.07.0.txt")

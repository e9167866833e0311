"""The AgentBaker release-notes reader, on every recorded real file (tests/data/agentbaker,
sources in its PROVENANCE.md) and on broken copies of them made here."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.errors import ConfigError, RecordingError
from pytest_azlinux.recorded.release_notes import (
    NODE_IMAGE_LABEL,
    RecordedPackage,
    load,
    parse_nevra,
    parse_release_notes,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "agentbaker"
FILES = sorted(DATA.rglob("*.txt"))
IDS = [str(p.relative_to(DATA)) for p in FILES]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_every_recorded_file_is_here() -> None:
    listed = {line.split("|")[1].strip() for line in (DATA / "PROVENANCE.md").read_text()
              .splitlines() if line.startswith("| AKS")}
    assert listed == set(IDS)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_each_file_reads_as_it_says(path: Path) -> None:
    """Every value is checked against the file's own lines, read here independently."""
    image = load(path)
    lines = _lines(path)
    assert image.sku == path.parent.parent.name and image.flavour == path.parent.name
    assert image.version == path.stem
    begin = lines.index("=== os-release Begin")
    end = lines.index("=== os-release End")
    for line in lines[begin + 1:end]:
        key, _, value = line.partition("=")
        assert image.os_release[key] == value.strip('"')
    if "Using kernel:" in lines:
        proc = lines[lines.index("Using kernel:") + 1]
        assert image.proc_version == proc
        assert image.kernel_release == proc.split()[2]
        assert "kernel" in image.recorded
    else:
        assert image.proc_version is None and image.kernel_release is None
        assert "kernel" not in image.recorded
    fips_line = next(line for line in lines if line.lower().startswith("fips enabled:"))
    assert image.fips is (fips_line.split(":")[1].strip().lower() == "true")
    pb, pe = lines.index("=== Installed Packages Begin"), lines.index("=== Installed Packages End")
    body = lines[pb + 1:pe]
    if body == ["listInstalledPackages stub"]:
        assert image.packages is None and image.package_entries is None
        assert "packages" not in image.recorded
    else:
        assert image.packages == tuple(body)
        assert image.package_entries is not None
        assert len(image.package_entries) == len(body)
        assert "packages" in image.recorded


def test_gen2_202511_07_0() -> None:
    image = load(DATA / "AKSAzureLinuxV3/gen2/202511.07.0.txt")
    assert image.node_image_version == "AKSAzureLinux-V3gen2-202511.07.0"
    assert image.labels == {NODE_IMAGE_LABEL: "AKSAzureLinux-V3gen2-202511.07.0"}
    assert image.os_release["VERSION"] == "3.0.20251030"
    assert image.kernel_release == "6.6.104.2-4.azl3"
    assert image.arch == "x86_64"
    assert image.fips is False
    assert image.packages is not None and image.package_entries is not None
    assert image.packages[0] == "filesystem-1.1-21.azl3.x86_64"
    assert image.package_entries[0] == RecordedPackage("filesystem", "1.1-21.azl3", "x86_64")
    assert image.packages[-1] == "bcc-examples-0.29.1-3.azl3.x86_64"
    assert "containerd version 2.0.0-14.azl3" in image.components
    assert image.uki is None


def test_fips_flavour_says_fips() -> None:
    assert load(DATA / "AKSAzureLinuxV3/gen2fips/202608.20.0.txt").fips is True  # "True"
    assert load(DATA / "AKSAzureLinuxV3/cvmgen2/202608.20.0.txt").fips is False  # "False"


def test_arm64_arch_from_the_kernel_package() -> None:
    image = load(DATA / "AKSAzureLinuxV3/gen2arm64/202608.20.0.txt")
    assert image.arch == "aarch64"
    assert image.node_image_version == "AKSAzureLinux-V3gen2arm64-202608.20.0"


def test_two_kernels_installed_the_running_one_decides() -> None:
    image = load(DATA / "AKSAzureLinuxV3/gen2/202608.14.0.txt")
    assert image.package_entries is not None
    kernels = [e.evr for e in image.package_entries if e.name == "kernel"]
    assert kernels == ["6.6.143.1-1.azl3", "6.6.150.1-1.azl3"]
    assert image.kernel_release == "6.6.150.1-1.azl3"


def test_os_guard_has_no_proc_version_but_a_uki() -> None:
    image = load(DATA / "AKSAzureLinuxV3/osguardgen2fipstl/202608.20.0.txt")
    assert image.os_release["VARIANT_ID"] == "osguard"
    assert image.os_release["VERSION"] == "3.0.20260107"
    assert image.kernel_release is None
    assert image.uki == "/boot/efi/EFI/Linux/vmlinuz-6.6.119.3-1.azl3.efi"
    assert image.arch == "x86_64"  # kernel-ipe-6.6.119.3-1.azl3.x86_64
    assert image.fips is True
    assert image.node_image_version == "AKSAzureLinux-OSGuardV3gen2fipsTL-202608.20.0"


@pytest.mark.parametrize("flavour,definition", [("gen2tl", "aclgen2TL"),
                                                ("arm64gen2tl", "aclgen2arm64TL")])
def test_acl_stub_means_packages_not_recorded(flavour: str, definition: str) -> None:
    image = load(DATA / f"AKSAzureContainerLinux/{flavour}/202608.20.0.txt")
    assert image.packages is None and image.package_entries is None
    assert "packages" not in image.recorded
    assert image.arch is None  # no package list, and /proc/version names no arch
    assert image.os_release["VARIANT_ID"] == "azurecontainerlinux"
    assert image.node_image_version == f"AKSAzureLinux-{definition}-202608.20.0"


def test_gpg_pubkey_has_no_arch() -> None:
    assert parse_nevra("gpg-pubkey-3135ce90-5e6fda74") == RecordedPackage(
        "gpg-pubkey", "3135ce90-5e6fda74", "")
    assert parse_nevra("python3-bcc-0.29.1-3.azl3.noarch") == RecordedPackage(
        "python3-bcc", "0.29.1-3.azl3", "noarch")
    assert parse_nevra("notapackage") is None


def test_a_file_not_under_a_known_sku_has_no_label(tmp_path: Path) -> None:
    src = DATA / "AKSAzureLinuxV3/gen2/202511.07.0.txt"
    copy = tmp_path / "latest.txt"
    copy.write_bytes(src.read_bytes())
    image = load(copy)
    assert image.version is None and image.node_image_version is None and image.labels == {}


# -- broken copies: one line naming the file and the fault, exit 4 -----------------------------

GEN2 = DATA / "AKSAzureLinuxV3/gen2/202511.07.0.txt"


def _broken(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "AKSAzureLinuxV3" / "gen2" / "202511.07.0.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _raises(path: Path, fragment: str) -> None:
    with pytest.raises(RecordingError) as info:
        load(path)
    message = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message


def test_truncated_in_the_package_list(tmp_path: Path) -> None:
    text = GEN2.read_text()
    cut = text[: text.index("=== Installed Packages End")]
    _raises(_broken(tmp_path, cut), "'=== Installed Packages Begin' without its End")


def test_truncated_before_os_release(tmp_path: Path) -> None:
    text = GEN2.read_text()
    cut = text[: text.index("=== os-release Begin")]
    _raises(_broken(tmp_path, cut), "no '=== os-release Begin' section")


def test_truncated_inside_os_release(tmp_path: Path) -> None:
    text = GEN2.read_text()
    cut = text[: text.index("=== os-release End")]
    _raises(_broken(tmp_path, cut), "'=== os-release Begin' without its End")


def test_truncated_after_using_kernel(tmp_path: Path) -> None:
    text = GEN2.read_text()
    cut = text[: text.index("Using kernel:") + len("Using kernel:\n")]
    _raises(_broken(tmp_path, cut), "'Using kernel:' is not followed by /proc/version")


def test_an_end_without_begin(tmp_path: Path) -> None:
    text = GEN2.read_text().replace("=== Installed Packages Begin\n", "", 1)
    _raises(_broken(tmp_path, text), "'=== Installed Packages End' without its Begin")


def test_a_garbled_package_line(tmp_path: Path) -> None:
    text = GEN2.read_text().replace("glibc-2.38-14.azl3.x86_64", "glibc 2.38", 1)
    _raises(_broken(tmp_path, text), "'glibc 2.38' is not name-version-release.arch")


def test_fips_not_a_bool(tmp_path: Path) -> None:
    text = GEN2.read_text().replace("FIPS enabled: false", "FIPS enabled: maybe")
    _raises(_broken(tmp_path, text), "'FIPS enabled:' is 'maybe'")


def test_not_release_notes_at_all(tmp_path: Path) -> None:
    _raises(_broken(tmp_path, "hello\nworld\n"), "not an AgentBaker release-notes file")
    _raises(_broken(tmp_path, ""), "not an AgentBaker release-notes file")


def test_binary(tmp_path: Path) -> None:
    _raises(_broken(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00"), "binary")
    _raises(_broken(tmp_path, b"\xff\xfe=== os-release Begin\n"), "not UTF-8")


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nope" / "x" / "202511.07.0.txt", "cannot read")


def test_pure_parse_names_the_path_given() -> None:
    with pytest.raises(RecordingError, match=r"^some/where\.txt: "):
        parse_release_notes("nothing", "some/where.txt")

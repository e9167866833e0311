"""Secure Boot firmware and the vTPM of a VM, with the real tools (virt-fw-vars, swtpm; no
boot): keys made once and private, keys enrolled in the VM's vars, swtpm started and removed."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pytest_azlinux.errors import VmError
from pytest_azlinux.vm.firmware import (
    ensure_lab_keys,
    firmware_qemu_args,
    own_vars_firmware,
    secure_boot_firmware,
    setup_mode_firmware,
)
from pytest_azlinux.vm.tpm import running_swtpm, start_swtpm, stop_swtpm, tpm_qemu_args

needs_ovmf = pytest.mark.skipif(
    not Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd").is_file()
    or shutil.which("virt-fw-vars") is None,
    reason="needs Debian's ovmf and virt-fw-vars (pip virt-firmware)",
)
needs_swtpm = pytest.mark.skipif(shutil.which("swtpm") is None, reason="needs swtpm (Debian)")


def _vars(path: Path) -> str:
    res = subprocess.run(["virt-fw-vars", "-i", str(path), "-p"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return res.stdout


def test_lab_keys_are_made_once_and_private(tmp_path: Path) -> None:
    keys = ensure_lab_keys(tmp_path / "sb")
    first = keys.db_key.read_bytes()
    for name in ("PK", "KEK", "db"):
        assert stat.S_IMODE(keys.key(name).stat().st_mode) == 0o600
        assert b"BEGIN CERTIFICATE" in keys.cert(name).read_bytes()
    assert ensure_lab_keys(tmp_path / "sb").db_key.read_bytes() == first


@needs_ovmf
def test_vm_vars_enroll_the_lab_keys_with_secure_boot_on(tmp_path: Path) -> None:
    keys = ensure_lab_keys(tmp_path / "sb")
    fw = secure_boot_firmware(tmp_path / "vm", keys)
    printed = _vars(fw.vars)
    assert fw.secure_boot and fw.vars.parent == tmp_path / "vm"
    assert "SecureBootEnable" in printed and "ON" in printed.split("SecureBootEnable")[1][:30]
    for name in ("PK", "KEK", "db"):
        assert any(line.split(":")[0].strip() == name for line in printed.splitlines())
    off = setup_mode_firmware(tmp_path / "off")
    assert not off.secure_boot and "PK " not in _vars(off.vars)
    args = firmware_qemu_args(fw)
    assert "q35,smm=on" in args and f"if=pflash,format=raw,unit=1,file={fw.vars}" in args


@needs_ovmf
def test_a_vars_file_of_the_wrong_size_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "image.vars"
    bad.write_bytes(b"\0" * 1024)
    with pytest.raises(VmError, match=r"image\.vars is 1024 bytes"):
        own_vars_firmware(tmp_path / "vm", bad)


@needs_swtpm
def test_swtpm_runs_per_vm_and_its_state_is_removed(tmp_path: Path) -> None:
    tpm = start_swtpm(tmp_path / "tpm")
    try:
        assert tpm.pid() is not None and tpm.socket.exists()
        assert f"socket,id=chrtpm,path={tpm.socket}" in tpm_qemu_args(tpm)
    finally:
        stop_swtpm(tpm)
    assert tpm.pid() is None and not tpm.state_dir.exists()


@needs_swtpm
def test_swtpm_is_removed_when_the_vm_fails_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), running_swtpm(tmp_path / "tpm") as tpm:
        assert tpm.pid() is not None
        raise RuntimeError("qemu did not start")
    assert not (tmp_path / "tpm").exists()


def test_lab_spdx_manifest_reads_back_through_the_inventory_parser() -> None:
    from pytest_azlinux.lab.vm_trusted import installed_packages, spdx_manifest
    from pytest_azlinux.packages.spdx import parse_manifest

    dpkg = ("bash\t5.2.15-2+b7\tamd64\tii \nold\t1.0\tamd64\trc \n"
            "runc\t1.1.5+ds1-1+deb12u1\tamd64\tii ")
    packages = installed_packages(dpkg)
    assert [p[0] for p in packages] == ["bash", "runc"]
    entries = parse_manifest("package-manifest.spdx.json", spdx_manifest("img", packages))
    assert [(e.name, e.evr, e.arch) for e in entries] == [
        ("bash", "5.2.15-2+b7", "amd64"), ("runc", "1.1.5+ds1-1+deb12u1", "amd64")]


@pytest.mark.skipif(shutil.which("sbsign") is None or not Path(
    "/usr/lib/systemd/boot/efi/linuxx64.efi.stub").is_file(),
    reason="needs sbsigntool and systemd-boot-efi (Debian)")
def test_uki_has_its_sections_past_the_stub_and_verifies_with_the_db_cert(
    tmp_path: Path,
) -> None:
    from pytest_azlinux.vm.uki import STUB, build_uki, sign_efi, stub_end

    for name, size in (("vmlinuz", 70_000), ("initrd", 30_000), ("os-release", 40)):
        (tmp_path / name).write_bytes(b"\x5a" * size)
    uki = build_uki(STUB, tmp_path / "vmlinuz", tmp_path / "initrd", "console=ttyS0 usrhash=ab",
                    tmp_path / "os-release", tmp_path / "uki.efi")
    heads = subprocess.run(["objdump", "-h", str(uki)], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    vmas = {}
    for line in heads.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] in (".osrel", ".cmdline", ".linux", ".initrd"):
            vmas[fields[1]] = int(fields[3], 16)
    assert list(vmas) == [".osrel", ".cmdline", ".linux", ".initrd"]
    assert min(vmas.values()) >= stub_end(STUB) and sorted(vmas.values()) == list(vmas.values())
    keys = ensure_lab_keys(tmp_path / "sb")
    signed = sign_efi(keys, uki, tmp_path / "uki.signed.efi")
    ok = subprocess.run(["sbverify", "--cert", str(keys.db_cert), str(signed)],
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    unsigned = subprocess.run(["sbverify", "--cert", str(keys.db_cert), str(uki)],
                              capture_output=True, text=True, check=False)  # fmt: skip
    assert unsigned.returncode != 0

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

"""UEFI Secure Boot for a VM: the lab's own keys, a per-VM OVMF variable store, qemu's arguments.

The API (image targets and lab VMs both code against it)::

    keys = ensure_lab_keys(directory)          # PK, KEK, db: made once per directory
    fw = secure_boot_firmware(vm_dir, keys)    # vars copy with the keys enrolled, SB on
    fw = setup_mode_firmware(vm_dir)           # vars copy with no keys: Secure Boot off
    fw = own_vars_firmware(vm_dir, vars_file)  # the image's own enrolled variable store
    args = firmware_qemu_args(fw)              # q35 + SMM + secure pflash code and vars

- ``ensure_lab_keys``: three self-signed RSA-2048 certificates (``PK``, ``KEK``, ``db``,
  PEM) and their private keys (mode 0600, never printed or logged), made in-process with
  ``cryptography`` (OpenSSL) under a lock, so concurrent callers share one set. The db key
  signs what the firmware boots (``sbsign --key keys.db_key --cert keys.db_cert``).
- ``secure_boot_firmware``: OVMF's 4M variable store with PK/KEK/db enrolled by PyPI
  ``virt-firmware`` (``virt-fw-vars --set-pk/--add-kek/--add-db --sb``); the enrolled store
  is made once next to the keys and copied per VM (the VM writes its copy).
- ``setup_mode_firmware``: the same firmware code with Debian's blank 4M store: no PK, so
  the firmware is in setup mode and verifies nothing (the "Secure Boot off" case).
- ``own_vars_firmware``: a vars file the user gives (an image's own enrolled keys), copied.
- ``firmware_qemu_args``: the secure-boot build of OVMF needs SMM (``-machine q35,smm=on``),
  its code in a secure read-only pflash and the vars in a writable one.

Every failure is a ``VmError`` naming the file or tool.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..errors import VmError

OVMF_SECBOOT_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_BLANK_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
VIRT_FW_VARS = "virt-fw-vars"
# The owner GUID recorded with each enrolled certificate (any GUID; this one is the lab's).
LAB_OWNER_GUID = "a2c3b4d5-2911-4a7e-9c1d-0a21ab1e5eed"
KEY_NAMES = ("PK", "KEK", "db")
ENROLLED_VARS = "OVMF_VARS_4M.lab-enrolled.fd"
VM_VARS = "OVMF_VARS.fd"


@dataclass(frozen=True)
class SecureBootKeys:
    """The lab's Secure Boot certificates and keys (PEM) in ``directory``."""

    directory: Path

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    @property
    def db_cert(self) -> Path:
        return self.cert("db")

    @property
    def db_key(self) -> Path:
        return self.key("db")


@dataclass(frozen=True)
class Firmware:
    """OVMF for one VM: the secure-boot code (read-only) and this VM's own vars copy.
    ``secure_boot``: whether the vars enforce Secure Boot (keys enrolled, SB on)."""

    code: Path
    vars: Path
    secure_boot: bool


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_private(path: Path, data: bytes) -> None:
    """Written 0600 from the first byte (never world-readable, not even for an instant)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _self_signed(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``name`` and its key, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-azlinux lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"azl lab Secure Boot {name}"),
    ])  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_lab_keys(directory: Path) -> SecureBootKeys:
    """PK, KEK and db in ``directory`` (made once; kept for every later VM and image)."""
    keys = SecureBootKeys(directory)
    with _locked(directory):
        directory.chmod(0o700)
        for name in KEY_NAMES:
            if keys.cert(name).is_file() and keys.key(name).is_file():
                continue
            cert_pem, key_pem = _self_signed(name)
            _write_private(keys.key(name), key_pem)
            keys.cert(name).write_bytes(cert_pem)
    return keys


def _require(path: Path) -> None:
    if not path.is_file():
        raise VmError(f"firmware: {path} missing (install Debian's ovmf)")


def _virt_fw_vars(args: list[str]) -> None:
    try:
        res = subprocess.run(
            [VIRT_FW_VARS, *args], capture_output=True, text=True, timeout=120, check=False
        )
    except FileNotFoundError:
        raise VmError(
            f"firmware: {VIRT_FW_VARS} not installed (pip install virt-firmware)"
        ) from None
    except subprocess.TimeoutExpired:
        raise VmError(f"firmware: {VIRT_FW_VARS} took more than 120 s") from None
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
        raise VmError(f"firmware: {VIRT_FW_VARS} failed (rc={res.returncode}): {tail}")


def enrolled_vars_template(keys: SecureBootKeys) -> Path:
    """OVMF's blank 4M store with the lab's PK/KEK/db enrolled and Secure Boot on (made once
    next to the keys)."""
    _require(OVMF_BLANK_VARS)
    out = keys.directory / ENROLLED_VARS
    with _locked(keys.directory):
        if out.is_file():
            return out
        tmp = out.with_name(out.name + ".tmp")
        _virt_fw_vars([
            "--input", str(OVMF_BLANK_VARS), "--output", str(tmp),
            "--set-pk", LAB_OWNER_GUID, str(keys.cert("PK")),
            "--add-kek", LAB_OWNER_GUID, str(keys.cert("KEK")),
            "--add-db", LAB_OWNER_GUID, str(keys.cert("db")),
            "--sb",
        ])  # fmt: skip
        os.replace(tmp, out)
    return out


def _copy_vars(source: Path, vm_dir: Path) -> Path:
    vm_dir.mkdir(parents=True, exist_ok=True)
    dest = vm_dir / VM_VARS
    shutil.copyfile(source, dest)
    return dest


def secure_boot_firmware(vm_dir: Path, keys: SecureBootKeys) -> Firmware:
    """This VM's vars: the lab's keys enrolled, Secure Boot enforcing."""
    _require(OVMF_SECBOOT_CODE)
    return Firmware(OVMF_SECBOOT_CODE, _copy_vars(enrolled_vars_template(keys), vm_dir), True)


def setup_mode_firmware(vm_dir: Path) -> Firmware:
    """This VM's vars: OVMF's blank store (no PK: setup mode, nothing verified)."""
    _require(OVMF_SECBOOT_CODE)
    _require(OVMF_BLANK_VARS)
    return Firmware(OVMF_SECBOOT_CODE, _copy_vars(OVMF_BLANK_VARS, vm_dir), False)


def own_vars_firmware(vm_dir: Path, vars_file: Path) -> Firmware:
    """This VM's vars: a copy of ``vars_file`` (an image's own enrolled store, 4M layout)."""
    _require(OVMF_SECBOOT_CODE)
    if not vars_file.is_file():
        raise VmError(f"firmware: vars file {vars_file} not found")
    if vars_file.stat().st_size != OVMF_BLANK_VARS.stat().st_size:
        raise VmError(
            f"firmware: vars file {vars_file} is {vars_file.stat().st_size} bytes; "
            f"OVMF's 4M secure-boot code needs a 4M store like {OVMF_BLANK_VARS}"
        )
    return Firmware(OVMF_SECBOOT_CODE, _copy_vars(vars_file, vm_dir), True)


def firmware_qemu_args(fw: Firmware) -> list[str]:
    """q35 with SMM (the secure-boot OVMF refuses to run without it), the code in a secure
    read-only pflash, the VM's vars in a writable one."""
    return [
        "-machine", "q35,smm=on",
        "-global", "driver=cfi.pflash01,property=secure,value=on",
        "-global", "ICH9-LPC.disable_s3=1",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={fw.code}",
        "-drive", f"if=pflash,format=raw,unit=1,file={fw.vars}",
    ]  # fmt: skip

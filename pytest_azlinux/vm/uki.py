"""A unified kernel image (UKI): systemd's EFI stub with the kernel, initramfs, command line and
os-release as PE sections, and Authenticode signing of EFI binaries with a db key.

::

    build_uki(stub, kernel, initrd, cmdline, os_release, out)   # objcopy, sections after
    sign_efi(keys, unsigned, signed)                            # sbsign with the db key

The stub is Debian's ``systemd-boot-efi`` (``linuxx64.efi.stub``, systemd 252, which has no
``ukify``): each section is added with ``objcopy --add-section`` at a virtual address past
the stub's last section, aligned to a page, in the order systemd-stub reads them (.osrel,
.cmdline, .linux, .initrd). Sources: systemd's src/boot/efi/stub.c (the section names) and
the objcopy recipe of systemd 252's man page ``systemd-stub(7)``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import VmError
from .firmware import SecureBootKeys

STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
PAGE = 0x1000
# objdump -h: "  7 .sdmagic  00000034  0000000000019100  ..." (index, name, size, VMA)
_SECTION = re.compile(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s", re.MULTILINE)


def _run(cmd: Sequence[str], what: str) -> str:
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError:
        raise VmError(f"{what}: {cmd[0]} not installed") from None
    except subprocess.TimeoutExpired:
        raise VmError(f"{what}: {cmd[0]} took more than 300 s") from None
    if res.returncode != 0:
        raise VmError(f"{what}: {cmd[0]} failed (rc={res.returncode}): "
                      f"{(res.stderr or res.stdout).strip()[-400:]}")
    return res.stdout


def _align(value: int) -> int:
    return (value + PAGE - 1) // PAGE * PAGE


def stub_end(stub: Path) -> int:
    """The first page past the stub's last section (its virtual addresses)."""
    found = _SECTION.findall(_run(["objdump", "-h", str(stub)], f"UKI stub {stub}"))
    if not found:
        raise VmError(f"UKI stub {stub}: objdump -h lists no sections")
    return _align(max(int(vma, 16) + int(size, 16) for _, size, vma in found))


def build_uki(stub: Path, kernel: Path, initrd: Path, cmdline: str, os_release: Path,
              out: Path) -> Path:
    """``out``: the stub with .osrel, .cmdline, .linux and .initrd added."""
    for path in (stub, kernel, initrd, os_release):
        if not path.is_file():
            raise VmError(f"UKI: {path} missing"
                          + (" (install Debian's systemd-boot-efi)" if path == stub else ""))
    cmdline_file = out.with_name(out.name + ".cmdline")
    cmdline_file.write_text(cmdline.strip() + "\n")
    sections = [(".osrel", os_release), (".cmdline", cmdline_file), (".linux", kernel),
                (".initrd", initrd)]  # fmt: skip
    address = stub_end(stub)
    args: list[str] = []
    for name, path in sections:
        args += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={address:#x}"]
        address = _align(address + path.stat().st_size)
    out.unlink(missing_ok=True)
    _run(["objcopy", *args, str(stub), str(out)], f"UKI {out.name}")
    cmdline_file.unlink()
    return out


def sign_efi(keys: SecureBootKeys, unsigned: Path, signed: Path) -> Path:
    """``signed``: ``unsigned`` with an Authenticode signature by the db key."""
    signed.unlink(missing_ok=True)
    _run(["sbsign", "--key", str(keys.db_key), "--cert", str(keys.db_cert),
          "--output", str(signed), str(unsigned)], f"signing {unsigned.name}")  # fmt: skip
    return signed

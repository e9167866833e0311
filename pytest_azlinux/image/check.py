"""The image file checked before anything boots: a corrupt or truncated file is a usage error.

A truncated qcow2 still opens (its header is whole) and boots to a bootloader prompt that
waits out the whole boot timeout (30 minutes under emulation); ``qemu-img check`` finds the
damage in milliseconds. So: ``qemu-img info`` (the format, the virtual size) and, for
formats qemu can check (qcow2, vhdx...), ``qemu-img check``. A raw file has no metadata to
check: only that it is readable and not empty.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TargetsError

# qemu-img check's exit codes: 0 clean, 2 corruptions, 3 leaked clusters only (harmless
# to a reader), 63 the format has no check (vpc...), 1 the check itself failed.
CLEAN = (0, 3)
NO_CHECK = 63
CHECK_TIMEOUT = 300.0  # a multi-GB qcow2 checks in seconds; this bounds a stuck read


@dataclass(frozen=True)
class CheckedImage:
    """What qemu-img said about the file."""

    format: str
    virtual_size: int
    checked: str  # "consistent", or why no consistency check was made


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _said(stderr: str, fallback: str) -> str:
    """qemu-img's first error line (its ``ERROR:`` lines before leak notes), without the
    program prefix: one line for the message."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = next((ln for ln in lines if ln.startswith("ERROR")), lines[0] if lines else "")
    return first.removeprefix("qemu-img: ") or fallback


def check_image(target: str, path: Path, fmt: str | None) -> CheckedImage:
    """Check ``path`` as ``fmt`` (None: as qemu-img detects it); raise TargetsError (one line
    naming target, file and what qemu-img said) if it is unreadable, empty or inconsistent."""

    def refuse(what: str) -> TargetsError:
        return TargetsError(f"target {target!r}: field 'path': {path}: {what}")

    try:
        with path.open("rb") as fh:
            first = fh.read(512)
    except OSError as exc:
        raise refuse(f"cannot read it: {exc.strerror or exc}") from None
    if not first:
        raise refuse("the file is empty")
    fmt_args = ["-f", fmt] if fmt else []
    info = _qemu_img(["info", "--output=json", *fmt_args, str(path)], refuse)
    as_what = f" as {fmt}" if fmt else ""
    if info.returncode != 0:
        raise refuse(f"qemu-img info{as_what}: {_said(info.stderr, f'exit {info.returncode}')}")
    data = json.loads(info.stdout)
    found = str(data.get("format") or fmt or "raw")
    virtual = int(data.get("virtual-size") or 0)
    if virtual <= 0:
        raise refuse(f"{found} image of virtual size 0")
    if found == "raw":
        return CheckedImage(found, virtual, "raw: no metadata to check (only read and size)")
    check = _qemu_img(["check", "--output=json", "-f", found, str(path)], refuse)
    if check.returncode == NO_CHECK:
        return CheckedImage(found, virtual, f"{found}: qemu-img has no consistency check")
    if check.returncode not in CLEAN:
        counted = _counted(check.stdout)
        said = _said(check.stderr, f"exit {check.returncode}")
        raise refuse(
            f"qemu-img check as {found}: {counted} (virtual size {_size(virtual)}, "
            f"file {_size(path.stat().st_size)}), first: {said.removeprefix('ERROR: ')}"
        )
    return CheckedImage(found, virtual, "consistent")


def _counted(stdout: str) -> str:
    try:
        data = json.loads(stdout)
    except ValueError:
        return "the file is inconsistent"
    errors = int(data.get("corruptions") or 0) + int(data.get("check-errors") or 0)
    if not errors:
        return "the file is inconsistent"
    return f"{errors} error{'s' if errors != 1 else ''} in the file"


def _qemu_img(
    args: list[str], refuse: Callable[[str], TargetsError]
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["qemu-img", *args], capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT, check=False)  # fmt: skip
    except FileNotFoundError:
        raise refuse("qemu-img is not installed (Debian's qemu-utils)") from None
    except subprocess.TimeoutExpired:
        raise refuse(f"qemu-img {args[0]} did not finish within {CHECK_TIMEOUT:g} s") from None

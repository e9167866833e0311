"""A corrupt or truncated image file is refused before anything boots (issue 28 #12).

Real files made with qemu-img and qemu-io (Debian's qemu-utils), checked by the real
qemu-img; the plugin runs in a real pytest subprocess (pytester). A truncated qcow2 used to
boot to a bootloader prompt and wait out the whole boot timeout (1800 s under TCG).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pytest_azlinux.errors import TargetsError
from pytest_azlinux.image.check import check_image

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
    reason="needs qemu-img and qemu-io (Debian's qemu-utils)",
)

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
TESTS = """
def test_anything(azl_host):
    pass
"""


def _qcow2(path: Path) -> Path:
    """A 64 MiB qcow2 with 12 MiB written: data clusters past the first 2 MiB of the file."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xab 0 8M", "-c", "write -P 0xcd 32M 4M",
                    str(path)], check=True, capture_output=True)  # fmt: skip
    return path


def _truncated(good: Path, path: Path, size: int = 2 << 20) -> Path:
    with good.open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(size))
    return path


def test_truncated_qcow2_is_exit_4_in_one_line_within_seconds(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    bad = _truncated(_qcow2(tmp_path / "good.qcow2"), tmp_path / "cut.qcow2")
    pytester.makepyfile(test_x=TESTS)
    t0 = time.monotonic()
    result = pytester.runpytest_subprocess(*RUN, "--azl-image", str(bad))
    took = time.monotonic() - t0
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.errlines
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        f"ERROR: target 'image': field 'path': {bad}: qemu-img check as qcow2: "
    ), errors
    assert " errors in the file (virtual size 64.0 MiB, file 2.0 MiB), first: " in errors[0]
    assert "exceeding the end of the file" in errors[0]  # qemu-img's own words
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    # the pytest subprocess starts in about a second; the check itself takes milliseconds
    assert took < 15, f"{took:.1f} s"


def test_header_cut_short_is_exit_4_naming_qemu_img_info(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    bad = _truncated(_qcow2(tmp_path / "good.qcow2"), tmp_path / "head.qcow2", size=100)
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest_subprocess(*RUN, "--azl-image", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        f"ERROR: target 'image': field 'path': {bad}: qemu-img info as qcow2: "
        f"Could not open '{bad}': qcow2 header too short"
    ]


def test_whole_qcow2_passes_the_check(tmp_path: Path) -> None:
    checked = check_image("image", _qcow2(tmp_path / "good.qcow2"), "qcow2")
    assert (checked.format, checked.virtual_size, checked.checked) == (
        "qcow2", 64 << 20, "consistent")  # fmt: skip


def test_format_detected_when_not_given(tmp_path: Path) -> None:
    good = _qcow2(tmp_path / "disk.img")  # a suffix that names no format
    assert check_image("image", good, None).format == "qcow2"
    with pytest.raises(TargetsError, match=r"qemu-img check as qcow2: \d+ errors in the file"):
        check_image("image", _truncated(good, tmp_path / "cut.img"), None)


def test_raw_file_is_only_read_and_sized(tmp_path: Path) -> None:
    """A raw file has no metadata: a cut raw disk cannot be told from a whole one."""
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as fh:
        fh.write(os.urandom(4096))
        fh.truncate(8 << 20)
    checked = check_image("image", raw, "raw")
    assert checked.format == "raw" and checked.virtual_size == 8 << 20
    assert checked.checked == "raw: no metadata to check (only read and size)"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "disk.raw"
    empty.touch()
    with pytest.raises(TargetsError) as caught:
        check_image("image", empty, "raw")
    assert str(caught.value) == f"target 'image': field 'path': {empty}: the file is empty"


def test_file_that_is_not_the_format_it_claims_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "disk.vhdx"
    text.write_text("not a disk image\n" * 100)
    with pytest.raises(TargetsError) as caught:
        check_image("image", text, "vhdx")
    assert str(caught.value).startswith(
        f"target 'image': field 'path': {text}: qemu-img info as vhdx: Could not open"
    )
    assert "\n" not in str(caught.value)

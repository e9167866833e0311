"""Dataset writing and verification (run for real on this machine), fio JSON parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.analyse.fio import FioFormatError, parse_fio_json
from pytest_azlinux.host import Host
from pytest_azlinux.storage.verify import (
    DatasetSpec,
    compare_manifests,
    parse_manifest,
    read_manifest,
    write_dataset_script,
)
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def local_host() -> Host:
    return Host(HostSpec(name="here", target="t", access="local"), LocalTransport())


def test_dataset_round_trip_and_tamper_is_named(local_host: Host, tmp_path: Path) -> None:
    root = str(tmp_path / "ds")
    local_host.run(write_dataset_script(root, DatasetSpec(files=6, dirs=2, sizes_kib=(4, 8))),
                   check=True)
    manifest = read_manifest(local_host, root, sudo=False)
    assert len(manifest) == 6 and len(set(manifest.values())) == 6  # random: all distinct
    assert compare_manifests(manifest, read_manifest(local_host, root, sudo=False)) == []
    target = tmp_path / "ds" / "d1" / "f003.bin"
    with target.open("r+b") as fh:  # change one block behind the verifier's back
        fh.seek(1024)
        fh.write(b"\0" * 512)
    (tmp_path / "ds" / "d0" / "f000.bin").unlink()
    (tmp_path / "ds" / "extra").write_text("x")
    problems = compare_manifests(manifest, read_manifest(local_host, root, sudo=False))
    assert problems[0] == "d0/f000.bin: missing"
    assert problems[1].startswith("d1/f003.bin: content changed")
    assert problems[2] == "extra: unexpected file"


def test_parse_manifest_handles_spaces_in_names() -> None:
    text = "abc  ./a b/c.bin\n" + "def  ./x\n"
    assert parse_manifest(text) == {"a b/c.bin": "abc", "x": "def"}


def test_fio_json_recorded() -> None:
    r = parse_fio_json((DATA / "fio" / "randrw_psync.json").read_text())
    assert r.read_iops == pytest.approx(9447.776112)
    assert r.write_iops == pytest.approx(9451.274363)
    assert r.read_lat_ms == pytest.approx(0.075273781275)


def test_fio_garbage_is_a_format_error() -> None:
    with pytest.raises(FioFormatError):
        parse_fio_json("fio: no such file")

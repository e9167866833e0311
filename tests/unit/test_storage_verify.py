"""The storage dataset and its verification (written and read for real on this machine), the
ACL codec, the suite's settings, fio JSON parsing."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_azlinux.analyse.fio import FioFormatError, parse_fio_iops_log, parse_fio_json
from pytest_azlinux.builtin import SUITES
from pytest_azlinux.errors import FormatError, SettingsError
from pytest_azlinux.host import Host
from pytest_azlinux.settings import parse
from pytest_azlinux.storage.dataset import DatasetSpec, generate, write_dataset
from pytest_azlinux.storage.settings import StorageSettings
from pytest_azlinux.storage.verify import (
    ACL_ACCESS,
    ACL_DEFAULT,
    DIRECTORY,
    REGULAR,
    SYMLINK,
    Entry,
    acl_from_text,
    acl_to_text,
    compare_entry,
    compare_manifests,
    parse_digests,
    parse_entries,
    parse_xattrs,
    read_manifest,
)
from pytest_azlinux.suite_table import load_suites
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

DATA = Path(__file__).parent.parent / "data"
SMALL = DatasetSpec(files=8, sizes_kib=(4, 16), sparse_kib=256, seed=7)
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="writes the dataset's owners (chown): needs root")


@pytest.fixture
def local_host() -> Host:
    return Host(HostSpec(name="here", target="t", access="local"), LocalTransport())


# -- the dataset -------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_dataset() -> None:
    one, two = generate(SMALL), generate(SMALL)
    assert one.manifest == two.manifest and one.contents == two.contents
    other = generate(replace(SMALL, seed=8))
    assert other.contents["d0/f000.bin"] != one.contents["d0/f000.bin"]
    assert other.manifest["d0/f000.bin"].uid != one.manifest["d0/f000.bin"].uid


def test_the_dataset_has_every_kind_of_entry() -> None:
    m = generate(SMALL).manifest
    kinds = {e.kind for e in m.values()}
    assert kinds == {REGULAR, DIRECTORY, SYMLINK, "fifo"}
    assert m["links/hard-f001.bin"].hardlinks == {"d1/f001.bin"}
    assert m["d1/f001.bin"].nlink == 2
    assert m["links/dangling"].target == "no-such"
    assert m["sparse/holes.img"].sparse and m["sparse/holes.img"].size == 256 * 1024
    assert {m["empty"].kind, m["d0/empty-inner"].kind} == {DIRECTORY}
    assert not any(p.startswith("empty/") for p in m)
    assert ACL_ACCESS in (m["d1/f001.bin"].xattrs or {})
    assert len({e.mtime_ns for e in m.values()}) > len(m) - 3  # distinct, nanoseconds
    assert any(e.mode & 0o7000 for e in m.values())  # set-id and sticky bits too


@needs_root
def test_written_and_read_back_it_matches_then_every_damage_is_named(
        local_host: Host, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    data = generate(SMALL)
    assert write_dataset(local_host, str(root), data) == frozenset()  # ext4 keeps xattrs, ACLs
    assert compare_manifests(data.manifest, read_manifest(local_host, str(root))) == []
    with (root / "d2" / "f002.bin").open("r+b") as fh:  # one block, behind the verifier's back
        fh.seek(1024)
        fh.write(b"\1" * 512)
    os.utime(root / "d2" / "f002.bin", ns=(0, data.manifest["d2/f002.bin"].mtime_ns))
    (root / "d0" / "f004.bin").chmod(0o777)
    (root / "names" / "with space.txt").unlink()
    (root / "d0" / "extra").symlink_to("f000.bin")
    os.utime(root / "d0", ns=(0, data.manifest["d0"].mtime_ns), follow_symlinks=False)
    os.utime(root / "names", ns=(0, data.manifest["names"].mtime_ns))
    problems = compare_manifests(data.manifest, read_manifest(local_host, str(root)))
    assert problems[0] == "d0/extra: unexpected symlink -> f000.bin"
    assert problems[1] == "d0/f004.bin: mode 0777, expected 4755"
    assert problems[2].startswith("d2/f002.bin: content changed (sha256 ")
    assert problems[3] == "names/with space.txt: missing regular file"
    assert len(problems) == 4


@needs_root
def test_a_filesystem_without_xattrs_is_said_not_to_keep_them(
        local_host: Host, tmp_path: Path) -> None:
    """ramfs keeps no extended attributes: the writer names every one it refused, and the
    rest of the tree still compares equal."""
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    local_host.run(f"mount -t ramfs azl-test {mnt}", check=True)
    try:
        data = generate(SMALL)
        refused = write_dataset(local_host, str(mnt / "ds"), data)
        assert refused == {"user.azl.note", "user.azl.empty", ACL_ACCESS, ACL_DEFAULT}
        assert compare_manifests(data.without_xattrs(refused).manifest,
                                 read_manifest(local_host, str(mnt / "ds"))) == []
    finally:
        local_host.run(f"umount {mnt}", check=True)


def test_without_xattrs_none_means_not_compared() -> None:
    data = generate(SMALL).without_xattrs(None)
    assert all(e.xattrs is None for e in data.manifest.values())
    got = replace(data.manifest["d0/f000.bin"], xattrs={"user.other": "00"})
    assert compare_entry("d0/f000.bin", data.manifest["d0/f000.bin"], got) == []


# -- reading -----------------------------------------------------------------------------------
FIND = ("d 755 0 0 4096 1600000000.1234567890 3 2049:10 8\0.\0\0"
        "f 644 1 2 5 1600000001.0000000000 2 2049:11 8\0./a b\0\0"
        "f 644 1 2 5 1600000001.0000000000 2 2049:11 8\0./dir/hard\0\0"
        "l 777 0 0 3 1600000002.5000000000 1 2049:12 0\0./link\0a b\0"
        "f 600 0 0 1048576 1600000003.0000000000 1 2049:13 16\0./sparse\0\0")


def test_find_records_are_parsed_with_links_grouped() -> None:
    m = parse_entries(FIND)
    assert m["."] == Entry(DIRECTORY, 0o755, 0, 0, 1_600_000_000_123_456_789, size=4096, nlink=3)
    assert m["a b"].hardlinks == {"dir/hard"} and m["dir/hard"].hardlinks == {"a b"}
    assert m["link"].target == "a b" and m["link"].kind == SYMLINK
    assert m["sparse"].sparse is True and m["a b"].sparse is False


def test_cut_find_output_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="cut short"):
        parse_entries(FIND[:-3])


def test_digests_and_xattrs_are_parsed() -> None:
    assert parse_digests("ab  ./a b\0cd  ./x\0") == {"a b": "ab", "x": "cd"}
    assert parse_xattrs(b".\0user.k\0" + b"6869\0./d/f\0user.e\0\0") == {
        ".": {"user.k": "6869"}, "d/f": {"user.e": ""}}
    with pytest.raises(FormatError, match="Permission denied"):
        parse_xattrs(b"!Permission denied\0")


# -- comparison --------------------------------------------------------------------------------
BASE = Entry(REGULAR, 0o644, 1000, 2000, 5_000_000_000, size=3, sha256="aa" * 32, nlink=1,
             xattrs={})


@pytest.mark.parametrize(("change", "problem"), [
    ({"mode": 0o777}, "f: mode 0777, expected 0644"),
    ({"uid": 0}, "f: owner uid 0, expected 1000"),
    ({"gid": 0}, "f: group gid 0, expected 2000"),
    ({"mtime_ns": 6_000_000_001},
     "f: mtime 1970-01-01T00:00:06.000000001Z, expected 1970-01-01T00:00:05.000000000Z"),
    ({"size": 4}, "f: size 4, expected 3"),
    ({"sha256": "bb" * 32},
     "f: content changed (sha256 bbbbbbbbbbbb..., expected aaaaaaaaaaaa...)"),
    ({"kind": "fifo"}, "f: fifo, expected regular file"),
    ({"hardlinks": frozenset({"g"}), "nlink": 2}, "f: hard-linked with g, expected with nothing"),
    ({"nlink": 2}, "f: 2 hard links, expected 1"),
    ({"xattrs": {"user.k": "01"}}, "f: xattr user.k 0x01, expected absent"),
    ({"xattrs": {ACL_ACCESS: acl_from_text("u::rw-,g::r--,m::r--,o::r--,u:7:r--")}},
     "f: ACL u::rw-,u:7:r--,g::r--,m::r--,o::r--, expected absent"),
])
def test_each_attribute_difference_is_one_sentence(change: dict[str, object],
                                                   problem: str) -> None:
    assert compare_entry("f", BASE, replace(BASE, **change)) == [problem]  # type: ignore[arg-type]


def test_a_sparse_file_filled_in_is_named() -> None:
    want = replace(BASE, sparse=True)
    assert compare_entry("f", want, replace(BASE, sparse=False)) == [
        "f: no longer sparse (all 3 bytes allocated)"]
    assert compare_entry("f", replace(BASE, sparse=None), replace(BASE, sparse=False)) == []


def test_missing_and_unexpected_entries_are_named() -> None:
    link = Entry(SYMLINK, 0o777, 0, 0, 0, size=1, target="x")
    assert compare_manifests({"a": BASE, "d": replace(BASE, kind=DIRECTORY)},
                             {"a": BASE, "l": link}) == [
        "d: missing directory", "l: unexpected symlink -> x"]


def test_acl_codec_reads_what_the_kernel_wrote() -> None:
    # read from a real file on ext4 (this dataset's ACL on d1/f001.bin)
    recorded = ("0200000001000600ffffffff020000007bdf000004000000ffffffff10000000ffffffff"
                "20000000ffffffff")
    assert acl_to_text(recorded) == "u::rw-,u:57211:---,g::---,m::---,o::---"
    assert acl_from_text(acl_to_text(recorded)) == recorded
    assert acl_to_text("0100") == "(not a POSIX ACL: 0100)"


# -- settings ----------------------------------------------------------------------------------
def test_settings_defaults_and_registration() -> None:
    assert load_suites(SUITES)["storage"].model is StorageSettings
    settings = parse(StorageSettings, None, "t")
    assert settings.backends == ("btrfs", "lvm-thin") and settings.fio_seconds == 0
    assert settings.overwrite_existing is False and settings.seed is None


@pytest.mark.parametrize(("raw", "message"), [
    ({"backends": ["zfs"]},
     "target 't': field 'suites.storage.backends[0]': Input should be 'btrfs' or 'lvm-thin'"),
    ({"fio_seconds": -1},
     "target 't': field 'suites.storage.fio_seconds': Input should be greater than or equal to 0"),
    ({"overwrite": True}, "target 't': field 'suites.storage.overwrite': Extra inputs are not "
                          "permitted"),
])
def test_bad_settings_are_one_line(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse(StorageSettings, raw, "t")
    assert str(err.value) == message


# -- fio -----------------------------------------------------------------------------------------
def test_fio_json_recorded() -> None:
    r = parse_fio_json((DATA / "fio" / "randrw_psync.json").read_text())
    assert r.read_iops == pytest.approx(9447.776112)
    assert r.write_iops == pytest.approx(9451.274363)
    assert r.read_lat_ms == pytest.approx(0.075273781275)


def test_fio_garbage_is_a_format_error() -> None:
    with pytest.raises(FioFormatError):
        parse_fio_json("fio: no such file")


def test_fio_iops_log_recorded_gives_the_iops_of_each_second() -> None:
    # fio-3.33, randrw psync 4k for 4 s with --write_iops_log --log_avg_msec=1000
    per_second = parse_fio_iops_log((DATA / "fio" / "randrw_psync_iops.1.log").read_text())
    assert per_second == {"read": (5784.0, 5498.0, 7154.0), "write": (5833.0, 5378.0, 7240.0)}


def test_fio_iops_log_garbage_is_a_format_error() -> None:
    with pytest.raises(FioFormatError, match="line 2"):
        parse_fio_iops_log("1000, 5784, 0, 0, 0\nfio: no such file\n")

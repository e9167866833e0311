"""Image targets without booting: the model, the options, the seed, capabilities, partitions."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import yaml

from pytest_azlinux.errors import ConfigError, TargetsError
from pytest_azlinux.image.capabilities import missing, parse_capabilities
from pytest_azlinux.image.claims import parse_os_release, partition_offsets
from pytest_azlinux.image.options import apply_image_options
from pytest_azlinux.image.seed import SeedSpec, network_config, user_data
from pytest_azlinux.targets import ImageTarget, load_targets, parse_targets

SEED = SeedSpec(
    instance_id="azl-1", hostname="image", authorized_key="ssh-ed25519 AAAAclient azl",
    host_key_private="-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    host_key_public="ssh-ed25519 AAAAhost root@image", mac="52:54:00:12:00:c9",
    address="198.18.0.201", prefix=24,
)  # fmt: skip


def _image(**fields: object) -> ImageTarget:
    text = yaml.safe_dump({"targets": {"img": {"kind": "image", **fields}}})
    target = parse_targets(text, "t.yaml", env={})["img"]
    assert isinstance(target, ImageTarget)
    return target


@pytest.mark.parametrize(
    ("path", "fmt"),
    [("a.qcow2", "qcow2"), ("a.VHD", "vpc"), ("a.vhdx", "vhdx"), ("a.img", "raw"),
     ("a.bin", None)],
)  # fmt: skip
def test_format_from_the_suffix(path: str, fmt: str | None) -> None:
    assert _image(path=path).image_format() == fmt


def test_format_given_wins_and_home_is_expanded() -> None:
    target = _image(path="~/x.bin", format="vpc", firmware="uefi", instances=2)
    assert target.image_format() == "vpc"
    assert not target.path.startswith("~")


@pytest.mark.parametrize(
    ("fields", "where"),
    [({}, "field 'path'"), ({"path": "a", "firmware": "coreboot"}, "field 'firmware'"),
     ({"path": "a", "format": "vmdk"}, "field 'format'"),
     ({"path": "a", "instances": 0}, "field 'instances'")],
)  # fmt: skip
def test_bad_fields_name_the_field(fields: dict[str, object], where: str) -> None:
    with pytest.raises(TargetsError, match=f"target 'img': {where}"):
        _image(**fields)


def test_unknown_kind_lists_image() -> None:
    with pytest.raises(TargetsError,
                       match="expected one of local, ssh, ansible, lab, cluster, image, recorded"):
        parse_targets("targets:\n  x: {kind: vm}\n", "t.yaml", env={})


def test_azl_image_defines_and_selects_target_image() -> None:
    targets, names = apply_image_options(
        load_targets(None), ["local"], image="/x/disk.vhd", profile="azl-3.0-fips", keep=True
    )
    image = targets.get("image")
    assert names == ["local", "image"]
    assert isinstance(image, ImageTarget)
    assert (image.path, image.profile, image.keep) == ("/x/disk.vhd", "azl-3.0-fips", True)


def test_profile_without_image_is_a_usage_error() -> None:
    with pytest.raises(TargetsError, match="--azl-image-profile: needs --azl-image"):
        apply_image_options(load_targets(None), [], image=None, profile="p", keep=False)


def test_implicit_target_does_not_replace_one_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "azl-targets.yaml"
    path.write_text("targets:\n  image: {kind: image, path: /a.qcow2}\n")
    with pytest.raises(TargetsError, match="already defines a target 'image'"):
        apply_image_options(load_targets(path), [], image="/b.qcow2", profile=None, keep=False)


def test_keep_applies_to_selected_image_targets_only(tmp_path: Path) -> None:
    path = tmp_path / "azl-targets.yaml"
    path.write_text("targets:\n  a: {kind: image, path: /a.qcow2}\n"
                    "  b: {kind: image, path: /b.qcow2}\n")  # fmt: skip
    targets, _ = apply_image_options(load_targets(path), ["a"], image=None, profile=None,
                                     keep=True)  # fmt: skip
    assert [getattr(targets.get(n), "keep", None) for n in ("a", "b")] == [True, False]


def test_user_data_pins_the_host_key_and_grants_sudo_to_a_key_only_user() -> None:
    text = user_data(SEED)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    (user,) = doc["users"]
    assert user["ssh_authorized_keys"] == [SEED.authorized_key]
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL" and user["lock_passwd"] is True
    assert doc["ssh_keys"] == {"ed25519_private": SEED.host_key_private,
                               "ed25519_public": SEED.host_key_public}  # fmt: skip
    assert doc["ssh_genkeytypes"] == ["ed25519"] and doc["ssh_pwauth"] is False
    assert doc["manage_etc_hosts"] is True


def test_network_config_has_no_route_off_the_lab() -> None:
    doc = yaml.safe_load(network_config(SEED))
    (eth,) = doc["ethernets"].values()
    assert eth["match"] == {"macaddress": SEED.mac}
    assert eth["addresses"] == ["198.18.0.201/24"]
    assert not {"gateway4", "routes", "nameservers"} & set(eth)
    assert eth["dhcp4"] is False


def test_capabilities() -> None:
    assert parse_capabilities(None) is None
    assert parse_capabilities(" , ") is None  # azldev with no capability enabled
    have = parse_capabilities("machine-bootable, container")
    assert have == frozenset({"machine-bootable", "container"})
    assert missing(["azl_image", "azl_network"], have) == []
    assert missing(["azl_selinux"], have) == ["systemd"]
    assert missing(["azl_image", "azl_selinux"], frozenset({"container"})) == [
        "machine-bootable", "systemd"
    ]
    with pytest.raises(ConfigError, match="unknown capability 'bootable'"):
        parse_capabilities("bootable")


def _mbr(*starts: int) -> bytes:
    mbr = bytearray(512)
    for i, start in enumerate(starts):
        mbr[446 + 16 * i : 462 + 16 * i] = struct.pack(
            "<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", start, 1000
        )
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def test_partitions_of_an_mbr_disk_and_a_bare_file_system() -> None:
    assert partition_offsets(_mbr(2048, 4096), lambda o, n: b"") == [2048 * 512, 4096 * 512]
    assert partition_offsets(bytes(512), lambda o, n: b"") == [0]


def test_partitions_of_a_gpt_disk() -> None:
    protective = bytearray(_mbr(1))
    protective[446 + 4] = 0xEE
    header = bytearray(512)
    header[:8] = b"EFI PART"
    struct.pack_into("<QII", header, 72, 2, 4, 128)
    table = bytearray(4 * 128)
    for i, first in enumerate((2048, 0, 10240)):  # the second entry is unused
        if first:
            table[i * 128 : i * 128 + 16] = b"\x01" * 16
            struct.pack_into("<Q", table, i * 128 + 32, first)
    disk = bytes(protective) + bytes(header) + bytes(table)

    def read(offset: int, size: int) -> bytes:
        return disk[offset : offset + size]

    assert partition_offsets(disk[:512], read) == [2048 * 512, 10240 * 512]


def test_parse_os_release() -> None:
    text = 'NAME="Microsoft Azure Linux"\n# c\nID=azurelinux\nVERSION_ID="3.0"\n\nbad line\n'
    assert parse_os_release(text) == {
        "NAME": "Microsoft Azure Linux", "ID": "azurelinux", "VERSION_ID": "3.0"
    }

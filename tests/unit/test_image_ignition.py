"""Ignition for image files without booting: the config, the fw_cfg arguments, the user's
config, detection from what the disk says, the console watch and the result file."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from pytest_azlinux.errors import TargetsError
from pytest_azlinux.image.boot import ConsoleWatch, Instance, ignition_status, qemu_vm
from pytest_azlinux.image.claims import DiskFacts, partitions
from pytest_azlinux.image.ignition import (
    FW_CFG_NAMES,
    IgnitionSpec,
    console_failure,
    ignition_config,
    load_user_config,
    redact,
    write_config,
)
from pytest_azlinux.image.provisioning import decide, detect
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.vm.qemu import qemu_command

HOST_PRIVATE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nhostsecret\n-----END OPENSSH PRIVATE KEY-----\n"
)
SPEC = IgnitionSpec(
    hostname="image", user="core", authorized_key="ssh-ed25519 AAAAclient azl",
    host_key_private=HOST_PRIVATE, host_key_public="ssh-ed25519 AAAAhost root@image",
    mac="52:54:00:12:00:c9", address="198.18.0.201", prefix=24,
)  # fmt: skip


def _files(config: dict[str, Any]) -> dict[str, tuple[int, str]]:
    out = {}
    for f in config["storage"]["files"]:
        source = f["contents"]["source"]
        assert source.startswith("data:;base64,")
        out[f["path"]] = (f["mode"], base64.b64decode(source.split(",", 1)[1]).decode())
    return out


def test_config_makes_the_user_with_the_run_key_and_pins_the_host_key() -> None:
    config = ignition_config(SPEC)
    assert config["ignition"]["version"].startswith("3.")
    assert config["passwd"]["users"] == [
        {"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAAclient azl"]}
    ]
    files = _files(config)
    assert files["/etc/ssh/ssh_host_ed25519_key"] == (0o600, HOST_PRIVATE)
    assert files["/etc/ssh/ssh_host_ed25519_key.pub"][1].startswith("ssh-ed25519 AAAAhost")
    assert files["/etc/sudoers.d/azl-core"] == (0o440, "core ALL=(ALL) NOPASSWD:ALL\n")
    assert files["/etc/hostname"][1] == "image\n"


def test_network_is_static_on_the_lab_bridge_with_no_route_off_it() -> None:
    unit = _files(ignition_config(SPEC))["/etc/systemd/network/10-azl-image.network"][1]
    assert "MACAddress=52:54:00:12:00:c9" in unit
    assert "Address=198.18.0.201/24" in unit
    assert "Gateway" not in unit and "DHCP=no" in unit


def test_the_config_file_is_private_and_holds_no_client_private_key(tmp_path: Path) -> None:
    out = write_config(SPEC, tmp_path / "ignition.json")
    assert out.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in json.dumps(ignition_config(SPEC)["passwd"])


def test_a_user_config_is_merged_inline() -> None:
    own = '{"ignition": {"version": "3.4.0"}}'
    config = ignition_config(IgnitionSpec(**{**SPEC.__dict__, "merge": own}))
    (merge,) = config["ignition"]["config"]["merge"]
    assert base64.b64decode(merge["source"].split(",", 1)[1]).decode() == own


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not JSON (line 1"),
     ('{"ignition": {"version": "2.2.0"}}', "ignition.version is '2.2.0'"),
     ("[1]", "ignition.version is None")],
)  # fmt: skip
def test_a_bad_user_config_is_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "mine.ign"
    path.write_text(text)
    with pytest.raises(TargetsError, match="target 'img': field 'ignition'") as info:
        load_user_config("img", str(path))
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_user_config_names_it(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match=r"cannot read .*nope\.ign"):
        load_user_config("img", str(tmp_path / "nope.ign"))


@pytest.mark.parametrize(
    ("facts", "how", "why"),
    [(DiskFacts({"ID": "flatcar", "VARIANT_ID": "azurecontainerlinux"}), "ignition",
      "VARIANT_ID=azurecontainerlinux (Azure Container Linux)"),
     (DiskFacts({"ID": "flatcar"}), "ignition", "ID=flatcar"),
     (DiskFacts({"ID": "fedora", "VARIANT_ID": "coreos"}), "ignition", "VARIANT_ID=coreos"),
     (DiskFacts({"ID": "azurelinux"}, labels=("EFI", "Ignition")), "ignition",
      "a partition labelled 'Ignition'"),
     (DiskFacts({}, "no ext", labels=("EFI-SYSTEM", "USR-A", "USR-B", "OEM", "ROOT")),
      "ignition", "Flatcar's partition layout"),
     (DiskFacts({"ID": "azurelinux"}, provisioners=("ignition",)), "ignition",
      "carries Ignition and not cloud-init"),
     (DiskFacts({"ID": "azurelinux"}, provisioners=("ignition", "cloud-init")), "cloud-init",
      "the default"),
     (DiskFacts({"ID": "azurelinux"}, provisioners=("cloud-init",)), "cloud-init",
      "the default"),
     (DiskFacts(skipped="no /dev/fuse"), "cloud-init", "the disk was not read: no /dev/fuse")],
)  # fmt: skip
def test_detection(facts: DiskFacts, how: str, why: str) -> None:
    found, reason = detect(facts)
    assert found == how
    assert why in reason


def test_the_explicit_option_wins_and_sets_the_default_user() -> None:
    acl = DiskFacts({"VARIANT_ID": "azurecontainerlinux"})
    assert decide("auto", None, acl).user == "core"
    assert decide("cloud-init", None, acl) .__dict__ == {
        "how": "cloud-init", "user": "azureuser", "why": "given"}
    assert decide("ignition", "azl", DiskFacts()).user == "azl"


def test_gpt_partition_names_are_read() -> None:
    mbr = bytearray(512)
    mbr[446 + 4] = 0xEE
    mbr[510:512] = b"\x55\xaa"
    header = bytearray(512)
    header[:8] = b"EFI PART"
    struct.pack_into("<QII", header, 72, 2, 2, 128)
    table = bytearray(2 * 128)
    for i, (first, name) in enumerate(((2048, "USR-A"), (4096, "ignition"))):
        table[i * 128 : i * 128 + 16] = b"\x01" * 16
        struct.pack_into("<Q", table, i * 128 + 32, first)
        encoded = name.encode("utf-16-le")
        table[i * 128 + 56 : i * 128 + 56 + len(encoded)] = encoded
    disk = bytes(mbr) + bytes(header) + bytes(table)
    assert partitions(disk[:512], lambda o, n: disk[o : o + n]) == [
        (2048 * 512, "USR-A"), (4096 * 512, "ignition")]


@pytest.mark.parametrize(
    "line",
    ["CRITICAL : Ignition failed: failed to fetch config: not a config (empty)",
     "Ignition failed: stage files (platform qemu); this machine is not provisioned",
     "[FAILED] Failed to start ignition-files.service - Ignition (files).",
     "Ignition has failed. Please ensure your config is valid."],
)  # fmt: skip
def test_console_lines_that_say_ignition_failed(line: str) -> None:
    assert console_failure(f"noise\n{line}\nmore") == line


@pytest.mark.parametrize(
    "line",
    ["INFO     : Ignition finished successfully",
     "INFO     : files: op(1): [finished] writing file \"/sysroot/etc/hostname\"",
     "INFO     : QEMU firmware config was not found. Ignoring..."],
)  # fmt: skip
def test_console_lines_of_a_good_run_are_not_failures(line: str) -> None:
    assert console_failure(line) is None


def test_console_watch_reads_only_what_is_new_and_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"booting\nIgnition fa")
    watch = ConsoleWatch(log)
    assert watch.failed() is None  # half a line is not judged yet
    with log.open("ab") as fh:
        fh.write(b"iled: stage files\n")
    assert watch.failed() == "Ignition failed: stage files"
    assert watch.failed() == "Ignition failed: stage files"  # it stays failed


BOOT_ID = "6a1b0c1e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("output", "status"),
    [(json.dumps({"provisioningBootID": BOOT_ID, "userConfigProvided": True}), "done"),
     (json.dumps({"provisioningBootID": "old", "userConfigProvided": True}), "earlier boot"),
     (json.dumps({"provisioningBootID": BOOT_ID, "userConfigProvided": False}),
      "without a user config"),
     ("", "Ignition did not run")],
)  # fmt: skip
def test_ignition_status_from_its_result_file(output: str, status: str) -> None:
    assert status in ignition_status(f"{output}\n{BOOT_ID}\n", 0)


def _instance(tmp_path: Path, provisioning: str) -> Instance:
    return Instance(
        host="image", vm_name="t-1", image=tmp_path / "disk.qcow2", format="qcow2",
        firmware="bios", memory=1024, cpus=1, boot_timeout=60, address="198.18.0.201",
        mac="52:54:00:12:00:c9", tap="azi-t-1", bridge="azi-t", dir=tmp_path,
        seed=tmp_path / "seed.iso",
        spec=HostSpec(name="image", target="img", access="ssh", address="198.18.0.201"),
        provisioning=provisioning,
    )  # fmt: skip


def test_qemu_gets_the_config_under_both_fw_cfg_names_and_no_seed(tmp_path: Path) -> None:
    cmd = " ".join(qemu_command(qemu_vm(_instance(tmp_path, "ignition"), "tcg")))
    for name in FW_CFG_NAMES:
        assert f"-fw_cfg name={name},file={tmp_path / 'ignition.json'}" in cmd
    assert "seed.iso" not in cmd


def test_qemu_gets_the_seed_and_no_fw_cfg_with_cloud_init(tmp_path: Path) -> None:
    cmd = " ".join(qemu_command(qemu_vm(_instance(tmp_path, "cloud-init"), "tcg")))
    assert "seed.iso" in cmd and "-fw_cfg" not in cmd


def test_console_lines_with_the_config_secrets_are_not_shown() -> None:
    config = json.dumps(ignition_config(SPEC), indent=1)
    shown = redact(f"{config}\n-----BEGIN OPENSSH PRIVATE KEY-----\nIgnition failed: x")
    assert "base64," not in shown and "PRIVATE KEY" not in shown
    assert shown.endswith("Ignition failed: x")

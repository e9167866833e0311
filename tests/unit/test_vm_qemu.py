"""The one qemu command line, as a lab VM and an image target each build it (no boot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.errors import ImageBootError
from pytest_azlinux.image.boot import Instance, qemu_vm
from pytest_azlinux.lab.vm import VmHost, _qemu_vm
from pytest_azlinux.lab.vm_image import VmImage
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.vm import qemu as qemu_mod
from pytest_azlinux.vm.net import iface_key
from pytest_azlinux.vm.qemu import qemu_command


def _pairs(cmd: list[str], flag: str) -> list[str]:
    """Every value given to ``flag``, in order."""
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


def _instance(tmp_path: Path, firmware: str = "bios") -> Instance:
    spec = HostSpec(name="image", target="image", access="ssh", address="198.18.3.201")
    return Instance(
        host="image", vm_name="img1-image-1", image=tmp_path / "disk.vhd", format="vpc",
        firmware=firmware, memory=1024, cpus=2, boot_timeout=60.0, address="198.18.3.201",
        mac="52:54:00:12:03:c9", tap="azi-img1im-1", bridge="azi-img1im", dir=tmp_path,
        seed=tmp_path / "seed.iso", spec=spec,
    )  # fmt: skip


def test_lab_vm_boots_its_kernel_with_verity_disks_and_serials(tmp_path: Path) -> None:
    vm = VmHost(name="azl-verity", variant="verity", address="198.18.0.205", prefix=24,
                mac="52:54:00:12:00:cd", tap="azv-azl-5", dir=str(tmp_path), accel="tcg",
                memory_mib=1024, disks={"node": "/srv/node.img"})  # fmt: skip
    image = VmImage(layout="verity", directory=tmp_path, kernel=tmp_path / "vmlinuz",
                    initrd=tmp_path / "initrd.img", root=tmp_path / "root.img",
                    usr=tmp_path / "usr.img", usr_hash_tree=tmp_path / "usr.hash",
                    usr_root_hash="ab12")  # fmt: skip
    cmd = qemu_command(_qemu_vm(vm, image, tmp_path / "root.qcow2", tmp_path / "cfg.img"))
    assert _pairs(cmd, "-name") == ["azl-vm-azl-verity"]
    assert _pairs(cmd, "-cpu") == ["max"] and _pairs(cmd, "-smp") == ["1"]
    assert _pairs(cmd, "-kernel") == [str(tmp_path / "vmlinuz")]
    append = _pairs(cmd, "-append")[0].split()
    assert append[:5] == ["console=ttyS0", "root=LABEL=azlroot", "rw", "panic=-1", "azl.cfg=1"]
    assert append[-1] == "azl.usrhash=ab12"
    assert _pairs(cmd, "-device")[-4:] == [
        "virtio-blk-pci,drive=azlcfg,serial=azlcfg",
        "virtio-blk-pci,drive=azlusr,serial=azlusr",
        "virtio-blk-pci,drive=azlusrhash,serial=azlusrhash",
        "virtio-blk-pci,drive=node,serial=node",
    ]
    drives = _pairs(cmd, "-drive")
    assert drives[0] == f"file={tmp_path / 'root.qcow2'},if=none,id=azlroot,format=qcow2"
    assert drives[-1] == "file=/srv/node.img,if=none,id=node,format=raw,readonly=on"
    assert "bootindex" not in " ".join(cmd) and "pflash" not in " ".join(cmd)


def test_image_instance_boots_its_disk_through_firmware(tmp_path: Path) -> None:
    cmd = qemu_command(qemu_vm(_instance(tmp_path), "kvm"))
    assert _pairs(cmd, "-name") == ["azl-vm-img1-image-1"]
    assert _pairs(cmd, "-cpu") == ["host,-arch-capabilities"]  # what the KVM probe boots
    assert _pairs(cmd, "-smp") == ["2"] and _pairs(cmd, "-m") == ["1024"]
    assert "-kernel" not in cmd and "pflash" not in " ".join(cmd)
    assert _pairs(cmd, "-netdev") == ["tap,id=net0,ifname=azi-img1im-1,script=no,downscript=no"]
    assert _pairs(cmd, "-drive") == [
        f"file={tmp_path / 'overlay.qcow2'},if=none,id=disk0,format=qcow2",
        f"file={tmp_path / 'seed.iso'},if=none,id=seed,format=raw,readonly=on",
    ]
    assert _pairs(cmd, "-device")[-2:] == [
        "virtio-blk-pci,drive=disk0,bootindex=0", "virtio-blk-pci,drive=seed",
    ]


def test_uefi_copies_the_variable_store_or_names_the_missing_firmware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, store = tmp_path / "OVMF_CODE.fd", tmp_path / "OVMF_VARS.fd.orig"
    store.write_bytes(b"vars")
    monkeypatch.setattr(qemu_mod, "OVMF_CODE", code)
    monkeypatch.setattr(qemu_mod, "OVMF_VARS", store)
    inst = _instance(tmp_path / "inst", firmware="uefi")
    inst.dir.mkdir()
    with pytest.raises(ImageBootError, match=f"firmware uefi: {code} missing"):
        qemu_vm(inst, "tcg")
    code.write_bytes(b"code")
    cmd = qemu_command(qemu_vm(inst, "tcg"))
    assert _pairs(cmd, "-drive")[-2:] == [
        f"if=pflash,format=raw,readonly=on,file={code}",
        f"if=pflash,format=raw,file={inst.dir / 'OVMF_VARS.fd'}",
    ]
    assert (inst.dir / "OVMF_VARS.fd").read_bytes() == b"vars"


def test_interface_keys_fit_ifnamsiz() -> None:
    assert iface_key("azl") == "azl"
    long = iface_key("img123456-candidate")
    assert len(long) == 6 and long == iface_key("img123456-candidate")
    assert len(f"azi-{long}-12") <= 15

"""The ``trusted`` layout: the lab's labelled root tree packed as a Trusted Launch disk.

Packed from a copy of the shared root tree (the recipe of the other layouts is untouched):

1. packages only this image needs, installed into the copy: systemd-boot (``bootctl``),
   tpm2-tools, mokutil and containerd;
2. containerd's files moved out of /usr into a system extension
   (``/var/lib/extensions/containerd``, with ``extension-release.containerd``), merged at
   boot by ``systemd-sysext.service``;
3. SPDX 2.2 package manifests at ACL's path (``/usr/share/os-manifests``): the base one from
   the copy's dpkg database without the extension's package, and the extension's own;
4. the SELinux policy: Debian's refpolicy (``selinux-policy-default``, an unconfined + MCS
   build like Fedora's "targeted") also installed under the name ``targeted``, which is what
   ACL's config names (``SELINUXTYPE=targeted``); it is Debian's policy, not ACL's;
5. an initramfs step that opens ``/usr`` from the partition labelled USR-A with dm-verity,
   the root hash from ``usrhash=`` and the hash tree's offset from ``azl.usrhashoffset=``
   (appended to the data in the same partition, as on Flatcar); without ``usrhash=`` it
   mounts USR-A read-write (the "verity off" twin);
6. a GPT disk like ACL's: EFI-SYSTEM (ESP: systemd-boot and the UKI, both signed with the
   lab's db key), USR-A (/usr + verity hash tree), USR-B (the inactive slot, same size,
   empty: no update staged), ROOT (the rest, ext4 label ``azlroot``).

The twins that differ in the ESP's content are qcow2 overlays on ``disk.img`` with only the ESP
replaced (``disk-unsigned.qcow2``: the UKI unsigned; ``disk-noverity.qcow2``: a signed UKI
whose command line has no ``usrhash=``). Twins that differ in firmware vars or TPM boot
``disk.img`` itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from ..vm.firmware import SecureBootKeys
from ..vm.uki import STUB, SYSTEMD_BOOT, build_uki, sign_efi
from .vm_image import (
    FILE_CONTEXTS,
    MIRROR,
    SUITE,
    _chroot_mounts,
    _kernel_files,
    _mkfs,
    _remove_tree,
    _run,
    _Steps,
    _usr_set_aside,
    verity_format,
)
from .vm_variants import AZL_VERSION

EXTRA_PACKAGES = ("systemd-boot", "systemd-boot-efi", "tpm2-tools", "mokutil", "containerd")
SYSEXT = "containerd"
SYSEXT_DIR = f"var/lib/extensions/{SYSEXT}"
SELINUX_TYPE = "targeted"
ESP_MIB = 64
USR_TYPE = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"  # Flatcar/CoreOS "usr" partition type
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
LINUX_TYPE = "0fc63daf-8483-4772-8e79-3d69d8477de4"
# systemd.verity=no: the initramfs (initramfs-tools, not systemd) opens /usr; systemd's
# verity generator would otherwise look for a partition named after usrhash= (as systemd's
# own images are laid out) and fail the boot's verity target after a 90 s device timeout.
BASE_CMDLINE = ("console=ttyS0", "root=LABEL=azlroot", "rw", "panic=-1", "azl.cfg=1",
                "security=selinux", "selinux=1", "enforcing=1", "systemd.verity=no")  # fmt: skip
UKI_NAME = "azl-trusted.efi"

# Runs before the lab's own local-bottom step ("azl-a-" sorts before "azl-lab"), which needs
# /usr mounted (it runs setfiles in the root).
_USR_STEP = """#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions
usrhash=""; offset=""
for x in $(cat /proc/cmdline); do
  case "$x" in
    usrhash=*) usrhash="${x#usrhash=}" ;;
    azl.usrhashoffset=*) offset="${x#azl.usrhashoffset=}" ;;
  esac
done
part=/dev/disk/by-partlabel/USR-A
n=0; while [ ! -b "$part" ] && [ "$n" -lt 200 ]; do sleep 0.05; n=$((n+1)); done
[ -b "$part" ] || panic "azl: no partition labelled USR-A"
if [ -n "$usrhash" ]; then
  modprobe dm_verity
  veritysetup open "$part" usr "$part" "$usrhash" --hash-offset="$offset" \\
    || panic "azl: veritysetup open USR-A failed"
  mount -t ext4 -o ro /dev/mapper/usr "${rootmnt}/usr" || panic "azl: cannot mount /usr"
  mkdir -p /run/acl && echo USR-A > /run/acl/active-volume
  echo "azl: /usr on dm-verity from USR-A, usrhash=$usrhash"
else
  mount -t ext4 -o rw "$part" "${rootmnt}/usr" || panic "azl: cannot mount /usr"
  echo "azl: /usr from USR-A WITHOUT verity (read-write)"
fi
"""

# systemd 252's sysext puts a metadata directory it makes in its own tmpfs workspace on top of
# the /usr overlay, so the overlay's root takes that directory's label (initrc_runtime_t);
# Debian's refpolicy (2:2.20221101) lets no other domain search it, and udev, auditd and
# sshd then fail at boot. This local module (CIL) lets every domain traverse that directory:
# the one rule the lab adds to Debian's policy (newer systemd relabels the directory itself).
SYSEXT_CIL = "(allow domain initrc_runtime_t (dir (getattr search open read)))\n"

FILES: dict[str, tuple[int, str]] = {
    "etc/selinux/azl-sysext.cil": (0o644, SYSEXT_CIL),
    # the ESP, for bootctl; refpolicy labels /boot/efi (boot_t), not systemd's /efi
    "etc/fstab": (0o644, "# root from the kernel command line; /usr from the initramfs\n"
                  "PARTLABEL=EFI-SYSTEM /boot/efi vfat ro,umask=0077,noauto,nofail,"
                  "x-systemd.automount,x-systemd.device-timeout=20s 0 0\n"),
    "etc/initramfs-tools/scripts/local-bottom/azl-a-usr": (0o755, _USR_STEP),
    f"{SYSEXT_DIR}/usr/lib/extension-release.d/extension-release.{SYSEXT}": (
        0o644, 'ID=azurelinux\nVERSION_ID="3.0"\n'),
    "etc/selinux/config": (0o644, f"SELINUX=enforcing\nSELINUXTYPE={SELINUX_TYPE}\n"),
}
COMMANDS = (
    "apt-get update -qq",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
    + " ".join(EXTRA_PACKAGES),
    "systemctl disable containerd.service",
    "systemctl enable systemd-sysext.service",
    "cp -a /etc/selinux/default /etc/selinux/targeted",
    "cp -a /var/lib/selinux/default /var/lib/selinux/targeted",
    "semodule -n -s targeted -i /etc/selinux/azl-sysext.cil",
    "mkdir -p /boot/efi",
    "update-initramfs -u -k all",
    "apt-get clean",
    "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log",
)


def trusted_recipe() -> str:
    """What the trusted packing adds on top of the root tree (a change rebuilds only it)."""
    blob = json.dumps({"packages": EXTRA_PACKAGES, "files": FILES, "commands": COMMANDS,
                       "cmdline": BASE_CMDLINE, "suite": SUITE, "mirror": MIRROR,
                       "esp": ESP_MIB, "version": 2}, sort_keys=True)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def key_fingerprint(keys: SecureBootKeys) -> str:
    """The db certificate's hash: an image signed with other keys is rebuilt."""
    return hashlib.sha256(keys.db_cert.read_bytes()).hexdigest()[:16]


def _chroot(tree: Path, cmd: str) -> str:
    return _run(["chroot", str(tree), "/bin/sh", "-c", cmd], f"chroot: {cmd[:60]}")


def _move_to_extension(tree: Path) -> list[str]:
    """containerd's files from the base /usr into the extension; returns what moved."""
    listed = _chroot(tree, f"dpkg -L {SYSEXT}").splitlines()
    moved = []
    for path in listed:
        real = "/usr" + path if path.startswith(("/lib/", "/bin/", "/sbin/")) else path
        src = tree / real.lstrip("/")
        if not real.startswith("/usr/") or not (src.is_file() or src.is_symlink()):
            continue
        dest = tree / SYSEXT_DIR / real.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        moved.append(real)
    return moved


def spdx_manifest(name: str, packages: list[tuple[str, str, str]]) -> str:
    """An SPDX 2.2 JSON document: the image as its root (what the document DESCRIBES), which
    CONTAINS each of ``packages`` (name, version, arch), with a deb purl each."""
    entries = [
        {
            "SPDXID": f"SPDXRef-Package-{i}", "name": pkg, "versionInfo": version,
            "downloadLocation": "NOASSERTION", "licenseConcluded": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                "referenceLocator": f"pkg:deb/debian/{pkg}@{version}?arch={arch}",
            }],
        }
        for i, (pkg, version, arch) in enumerate(packages, 1)
    ]  # fmt: skip
    root = {"SPDXID": "SPDXRef-DocumentRoot", "name": name, "versionInfo": AZL_VERSION,
            "downloadLocation": "NOASSERTION"}  # fmt: skip
    doc = {
        "spdxVersion": "SPDX-2.2", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://azl-lab.invalid/spdx/{name}-{uuid.uuid4()}",
        "creationInfo": {"created": "1970-01-01T00:00:00Z",
                         "creators": ["Tool: pytest-azlinux lab (dpkg-query of the image)"]},
        "packages": [root, *entries],
        "relationships": [
            {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
             "relatedSpdxElement": "SPDXRef-DocumentRoot"},
            *({"spdxElementId": "SPDXRef-DocumentRoot", "relationshipType": "CONTAINS",
               "relatedSpdxElement": e["SPDXID"]} for e in entries),
        ],
    }  # fmt: skip
    return json.dumps(doc, indent=1) + "\n"


def installed_packages(dpkg_query: str) -> list[tuple[str, str, str]]:
    """(name, version, arch) of each installed package in ``dpkg-query -W`` output with
    ``${db:Status-Abbrev}`` last (``ii``: installed)."""
    out = []
    for line in dpkg_query.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[3].strip() == "ii":
            out.append((fields[0], fields[1], fields[2]))
    return out


def _write_manifests(tree: Path) -> None:
    out = _chroot(tree, "dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\t"
                        "${db:Status-Abbrev}\\n'")
    packages = installed_packages(out)
    base = [p for p in packages if p[0] != SYSEXT]
    ext = [p for p in packages if p[0] == SYSEXT]
    manifests = tree / "usr/share/os-manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "package-manifest.spdx.json").write_text(
        spdx_manifest(f"azurelinux-{AZL_VERSION}-lab-trusted", base))
    ext_manifests = tree / SYSEXT_DIR / "usr/share/os-manifests"
    ext_manifests.mkdir(parents=True, exist_ok=True)
    (ext_manifests / f"package-manifest.{SYSEXT}.spdx.json").write_text(
        spdx_manifest(f"sysext-{SYSEXT}", ext))


def prepare_tree(source: Path, work: Path, s: _Steps, debs: Path) -> Path:
    """A copy of the labelled root tree with what the trusted image adds, relabelled."""
    tree = work / "tree"
    with s.step("copy the root tree (keeps the labels)"):
        _run(["cp", "-a", "--reflink=auto", str(source), str(tree)], "cp -a")
        (tree / ".azl-complete").unlink(missing_ok=True)
    with s.step(f"install {', '.join(EXTRA_PACKAGES)}; sysext; initramfs"):
        for rel, (mode, text) in FILES.items():
            path = tree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            path.write_text(text)
            path.chmod(mode)
        archives = tree / "var/cache/apt/archives"
        archives.mkdir(parents=True, exist_ok=True)
        with _chroot_mounts(tree):
            _run(["mount", "--bind", str(debs), str(archives)], "mount the package cache")
            try:
                for cmd in COMMANDS:
                    if cmd.startswith("apt-get clean"):
                        continue  # the cache is the shared one: kept
                    _chroot(tree, cmd)
            finally:
                subprocess.run(["umount", "-l", str(archives)], capture_output=True, check=False)
            _move_to_extension(tree)
            _write_manifests(tree)
    with s.step("label with setfiles -r (the base, then the extension as its own root)"):
        contexts = str(tree / FILE_CONTEXTS)
        _run(["setfiles", "-r", str(tree), contexts, str(tree)], "setfiles")
        ext = tree / SYSEXT_DIR
        _run(["setfiles", "-r", str(ext), contexts, str(ext)], "setfiles (extension)")
    return tree


def _esp(work: Path, name: str, loader: Path, uki: Path) -> Path:
    """A FAT ESP image: systemd-boot as the fallback loader, the UKI as a type #2 entry."""
    esp = work / name
    esp.unlink(missing_ok=True)
    _run(["mkfs.vfat", "-n", "EFI-SYSTEM", "-C", str(esp), str(ESP_MIB * 1024)], "mkfs.vfat")
    img = ["-i", str(esp)]
    _run(["mmd", *img, "::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/EFI/Linux", "::/loader"],
         "mmd")  # fmt: skip
    conf = work / "loader.conf"
    conf.write_text("timeout 0\neditor no\ndefault azl-*\n")
    for src, dest in ((loader, "::/EFI/BOOT/BOOTX64.EFI"),
                      (loader, "::/EFI/systemd/systemd-bootx64.efi"),
                      (uki, f"::/EFI/Linux/{UKI_NAME}"), (conf, "::/loader/loader.conf")):
        _run(["mcopy", *img, str(src), dest], f"mcopy {dest}")
    return esp


def _verity_usr(tree: Path, work: Path, s: _Steps) -> tuple[Path, str, int]:
    """/usr as ext4 with its dm-verity hash tree appended; (image, root hash, hash offset)."""
    image = work / "usr-a.img"
    with _usr_set_aside(tree) as usr, s.step("pack USR-A (/usr, ext4)"):
        _mkfs(usr, image, "azlusr", 64)
    offset = image.stat().st_size
    with s.step("veritysetup format USR-A (hash tree appended)"):
        return image, verity_format(image, image, f"--hash-offset={offset}"), offset


def _gpt_disk(work: Path, esp: Path, usr: Path, root: Path) -> tuple[Path, int]:
    """disk.img: EFI-SYSTEM, USR-A, USR-B, ROOT; returns it and the ESP's byte offset."""
    mib = 1 << 20

    def sectors(path: Path) -> int:
        return (path.stat().st_size + mib - 1) // mib * mib // 512

    usr_sectors = sectors(usr)
    total = 2048 + sectors(esp) + 2 * usr_sectors + sectors(root) + 2048 + 34
    disk = work / "disk.img"
    disk.unlink(missing_ok=True)
    with open(disk, "wb") as fh:
        fh.truncate(total * 512)
    script = "\n".join([
        "label: gpt", "first-lba: 2048",
        f'size={sectors(esp)}, type={ESP_TYPE}, name="EFI-SYSTEM"',
        f'size={usr_sectors}, type={USR_TYPE}, name="USR-A"',
        f'size={usr_sectors}, type={USR_TYPE}, name="USR-B"',
        f'size={sectors(root)}, type={LINUX_TYPE}, name="ROOT"', "",
    ])  # fmt: skip
    subprocess.run(["sfdisk", "-q", str(disk)], input=script, text=True, capture_output=True,
                   check=True)  # fmt: skip
    table = json.loads(_run(["sfdisk", "--json", str(disk)], "sfdisk --json"))
    starts = {p["name"]: int(p["start"]) * 512 for p in table["partitiontable"]["partitions"]}
    for name, part in (("EFI-SYSTEM", esp), ("USR-A", usr), ("ROOT", root)):
        _run(["dd", f"if={part}", f"of={disk}", "bs=4M", f"seek={starts[name]}",
              "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"], f"dd {name}")
    return disk, starts["EFI-SYSTEM"]


def _twin_disk(disk: Path, esp: Path, esp_offset: int, out: Path) -> None:
    """A qcow2 overlay on ``disk`` whose ESP is ``esp`` (the rest shared)."""
    out.unlink(missing_ok=True)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", disk.name, "-F", "raw", str(out)],
         "qemu-img create")  # fmt: skip
    _run(["qemu-io", "-f", "qcow2", "-c",
          f"write -s {esp} {esp_offset} {esp.stat().st_size}", str(out)],
         f"qemu-io {out.name}")  # fmt: skip


def pack_trusted(source: Path, work: Path, s: _Steps, keys: SecureBootKeys,
                 debs: Path) -> dict[str, object]:
    """Build disk.img and its twins in ``work``; returns the manifest's extra fields."""
    tree = prepare_tree(source, work, s, debs)
    try:
        kernel, initrd = _kernel_files(tree)
        shutil.copy2(kernel, work / "vmlinuz")
        shutil.copy2(initrd, work / "initrd.img")
        usr, root_hash, offset = _verity_usr(tree, work, s)
        with s.step("pack ROOT (without /usr)"), _usr_set_aside(tree):
            _mkfs(tree, work / "root.img", "azlroot", 512)
        os_release = work / "os-release"
        os_release.write_text(f'NAME="Microsoft Azure Linux"\nID=azurelinux\n'
                              f'VERSION_ID="3.0"\nVERSION="{AZL_VERSION}"\n'
                              'PRETTY_NAME="Azure Linux 3.0 (lab trusted)"\n')
        with s.step("UKIs (systemd-stub + kernel + initramfs + command line), signed"):
            verity_cmdline = " ".join([*BASE_CMDLINE, f"usrhash={root_hash}",
                                       f"azl.usrhashoffset={offset}"])
            uki = build_uki(STUB, work / "vmlinuz", work / "initrd.img", verity_cmdline,
                            os_release, work / "uki.efi")
            plain = build_uki(STUB, work / "vmlinuz", work / "initrd.img",
                              " ".join(BASE_CMDLINE), os_release, work / "uki-noverity.efi")
            signed = sign_efi(keys, uki, work / "uki.signed.efi")
            signed_plain = sign_efi(keys, plain, work / "uki-noverity.signed.efi")
            loader = sign_efi(keys, SYSTEMD_BOOT, work / "systemd-bootx64.signed.efi")
        with s.step("ESPs and the GPT disk (EFI-SYSTEM, USR-A, USR-B, ROOT)"):
            esp = _esp(work, "esp.img", loader, signed)
            esp_unsigned = _esp(work, "esp-unsigned.img", loader, uki)
            esp_noverity = _esp(work, "esp-noverity.img", loader, signed_plain)
            disk, esp_offset = _gpt_disk(work, esp, usr, work / "root.img")
            _twin_disk(disk, esp_unsigned, esp_offset, work / "disk-unsigned.qcow2")
            _twin_disk(disk, esp_noverity, esp_offset, work / "disk-noverity.qcow2")
        for leftover in ("usr-a.img", "root.img", "esp.img", "esp-unsigned.img",
                         "esp-noverity.img", "uki.efi", "uki-noverity.efi", "loader.conf"):
            (work / leftover).unlink(missing_ok=True)
    finally:
        _remove_tree(tree)
    return {"usr_root_hash": root_hash, "usr_hash_offset": offset,
            "trusted_recipe": trusted_recipe(), "db_key": key_fingerprint(keys)}

"""Lab VM images: the recipe, its hash, the build and the cache.

One Debian bookworm root filesystem (debootstrap, the distribution kernel, SELinux policy,
auditd, AppArmor, veritysetup, runc) is built once per recipe hash and kept as a labelled
tree; two layouts are packed from it:

- ``base``: one ext4 image (``mke2fs -d`` keeps the security.selinux xattrs that
  ``setfiles -r`` wrote from outside), shared by every variant that differs only by the
  kernel command line;
- ``trusted``: a Trusted Launch GPT disk (signed UKI, verity /usr in slot USR-A, a system
  extension, SPDX manifests), from a copy of the tree with a few more packages
  (``vm_trusted.py``: its own recipe, so the other layouts are not rebuilt for it);
- ``verity``: root without /usr, /usr as its own ext4 image protected by a dm-verity hash
  tree made with ``veritysetup format``; the root hash goes on the kernel command line and
  an initramfs step opens it and mounts /usr read-only (as OS Guard does).

Cache layout (``$AZL_VM_CACHE``, default /var/cache/azl-lab/vm)::

    debs/                 downloaded packages, reused by cold rebuilds
    rootfs-<hash>/        the labelled tree
    base-<hash>/          vmlinuz, initrd.img, root.img, manifest.json
    verity-<hash>/        vmlinuz, initrd.img, root.img, usr.img, usr.hash, manifest.json
    trusted-<hash>/       vmlinuz, initrd.img, disk.img (GPT: ESP, USR-A, USR-B, ROOT) and
                          the twins' disk-unsigned.qcow2, disk-noverity.qcow2 (vm_trusted.py)
    secureboot/           the lab's Secure Boot keys (vm/firmware.py), which sign trusted-*

A directory is complete when its manifest.json exists (written last, after a rename).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import (
    AzlError,
    VmError,
)
from ..vm.accel import cache_root
from ..vm.firmware import SecureBootKeys, ensure_lab_keys
from .vm_variants import Layout

Progress = Callable[[str], None]
RECIPE_VERSION = 1
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
FILE_CONTEXTS = "etc/selinux/default/contexts/files/file_contexts"
PACKAGES = (
    "systemd-sysv", "dbus", "udev", "kmod", "iproute2", "procps", "openssh-server", "sudo",
    "selinux-policy-default", "policycoreutils", "selinux-utils", "auditd", "apparmor",
    "cryptsetup-bin", "runc", "busybox", "iperf3", "openssl", "attr",
    "linux-image-amd64", "initramfs-tools",
)  # fmt: skip

_HOOK = """#!/bin/sh
# azl lab: veritysetup and dm-verity in the initramfs (for the verity layout)
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
copy_exec /usr/sbin/veritysetup /sbin
manual_add_modules dm_verity
"""

# Runs in the initramfs once root is mounted at ${rootmnt}, before systemd loads the SELinux
# policy: opens the verity /usr and copies the per-instance files (hostname, address, host
# key, authorized key, identity files), then labels them with the image's own file_contexts.
_LOCAL_BOTTOM = """#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions
usrhash=""
cfg=""
for x in $(cat /proc/cmdline); do
  case "$x" in
    azl.usrhash=*) usrhash="${x#azl.usrhash=}" ;;
    azl.cfg=1) cfg=/dev/disk/by-id/virtio-azlcfg ;;
  esac
done
wait_for() {
  n=0; while [ ! -b "$1" ] && [ "$n" -lt 200 ]; do sleep 0.05; n=$((n+1)); done; [ -b "$1" ]
}
if [ -n "$usrhash" ]; then
  modprobe dm_verity
  wait_for /dev/disk/by-id/virtio-azlusr || panic "azl: no /usr data disk"
  wait_for /dev/disk/by-id/virtio-azlusrhash || panic "azl: no /usr hash disk"
  veritysetup open /dev/disk/by-id/virtio-azlusr usr /dev/disk/by-id/virtio-azlusrhash \
    "$usrhash" || panic "azl: veritysetup open failed"
  mount -t ext4 -o ro /dev/mapper/usr "${rootmnt}/usr" || panic "azl: cannot mount /usr"
  echo "azl: /usr on dm-verity, root hash $usrhash"
fi
if [ -n "$cfg" ]; then
  wait_for "$cfg" || panic "azl: no instance config disk"
  mkdir -p /run/azlcfg
  mount -t ext4 -o ro "$cfg" /run/azlcfg || panic "azl: cannot mount the instance config disk"
  while read -r f; do rm -f "${rootmnt}/$f"; done < /run/azlcfg/manifest
  cp -a /run/azlcfg/files/. "${rootmnt}/"
  mount -o bind /proc "${rootmnt}/proc"
  chroot "${rootmnt}" /usr/sbin/setfiles -F \\
    /etc/selinux/default/contexts/files/file_contexts /etc /home /root
  umount "${rootmnt}/proc"
  umount /run/azlcfg
  echo "azl: instance config applied"
fi
"""

FILES: dict[str, tuple[int, str]] = {
    "etc/initramfs-tools/hooks/azl-lab": (0o755, _HOOK),
    "etc/initramfs-tools/scripts/local-bottom/azl-lab": (0o755, _LOCAL_BOTTOM),
    # MODULES=list: the default (most) spends ~25 s of a TCG boot in the initramfs
    "etc/initramfs-tools/conf.d/azl-lab.conf": (0o644, "MODULES=list\nCOMPRESS=gzip\n"),
    "etc/initramfs-tools/modules": (
        0o644,
        "virtio_pci\nvirtio_blk\nvirtio_net\nvirtio_rng\next4\ncrc32c_generic\ndm_mod\ndm_verity\n",
    ),
    # as on Azure Linux: sbin in every user's PATH (getenforce, sestatus over plain ssh)
    "etc/environment": (
        0o644,
        'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n',
    ),
    "etc/ssh/sshd_config.d/azl-lab.conf": (
        0o644,
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUseDNS no\n",
    ),
    "etc/sudoers.d/azureuser": (0o440, "azureuser ALL=(ALL) NOPASSWD:ALL\n"),
    "etc/selinux/config": (0o644, "SELINUX=enforcing\nSELINUXTYPE=default\n"),
    "etc/fstab": (0o644, "# root from the kernel command line; /usr from the initramfs\n"),
    "etc/hostname": (0o644, "azl-vm\n"),
    "etc/hosts": (0o644, "127.0.0.1 localhost\n"),
    "etc/systemd/journald.conf.d/azl-lab.conf": (0o644, "[Journal]\nStorage=volatile\n"),
}

COMMANDS = (
    "useradd -m -u 1000 -U -s /bin/bash azureuser",
    "systemctl enable systemd-networkd ssh auditd apparmor",
    "systemctl mask systemd-networkd-wait-online.service apt-daily.timer"
    " apt-daily-upgrade.timer e2scrub_reap.service fstrim.timer",
    "rm -f /etc/ssh/ssh_host_*",
    "truncate -s 0 /etc/machine-id",
    "update-initramfs -u -k all",
    "apt-get clean",
    "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log",
)



def recipe_hash() -> str:
    """A hash of everything that goes into the root filesystem; a change means a rebuild."""
    recipe = {
        "version": RECIPE_VERSION, "suite": SUITE, "mirror": MIRROR,
        "packages": sorted(PACKAGES), "files": FILES, "commands": COMMANDS,
    }  # fmt: skip
    blob = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass(frozen=True)
class VmImage:
    """A built image of one layout, ready to boot."""

    layout: Layout
    directory: Path
    kernel: Path
    initrd: Path
    root: Path
    usr: Path | None = None
    usr_hash_tree: Path | None = None
    usr_root_hash: str | None = None
    meta: Mapping[str, object] = field(default_factory=dict)  # the manifest

    def disk(self, name: str = "disk.img") -> Path:
        """A trusted image's disk (``disk.img``) or twin disk (``disk-unsigned.qcow2``...)."""
        return self.directory / name

    @classmethod
    def load(cls, directory: Path) -> VmImage:
        meta = json.loads((directory / "manifest.json").read_text())
        if meta["layout"] == "trusted":
            return cls(layout="trusted", directory=directory, kernel=directory / "vmlinuz",
                       initrd=directory / "initrd.img", root=directory / "disk.img",
                       usr_root_hash=meta.get("usr_root_hash"), meta=meta)  # fmt: skip
        return cls(
            layout=meta["layout"],
            directory=directory,
            kernel=directory / "vmlinuz",
            initrd=directory / "initrd.img",
            root=directory / "root.img",
            usr=directory / "usr.img" if meta.get("usr_root_hash") else None,
            usr_hash_tree=directory / "usr.hash" if meta.get("usr_root_hash") else None,
            usr_root_hash=meta.get("usr_root_hash"),
        )


def image_dir(layout: Layout, root: Path | None = None) -> Path:
    return (root or cache_root()) / f"{layout}-{recipe_hash()}"


def lab_secure_boot_keys() -> SecureBootKeys:
    """The lab's Secure Boot keys (made once per cache directory)."""
    return ensure_lab_keys(cache_root() / "secureboot")


def cached_image(layout: Layout) -> VmImage | None:
    d = image_dir(layout)
    if not (d / "manifest.json").is_file():
        return None
    image = VmImage.load(d)
    if layout == "trusted":
        from .vm_trusted import key_fingerprint, trusted_recipe

        if (image.meta.get("trusted_recipe") != trusted_recipe()
                or image.meta.get("db_key") != key_fingerprint(lab_secure_boot_keys())):
            return None  # packed by another trusted recipe or signed with other keys
    return image


def ensure_image(layout: Layout, progress: Progress = print) -> VmImage:
    """The image of ``layout`` for the current recipe: from the cache, or built now."""
    found = cached_image(layout)
    if found:
        return found
    with _build_lock():
        found = cached_image(layout)  # another process may have built it meanwhile
        if found:
            return found
        tree = ensure_rootfs(progress)
        image = _pack(layout, tree, progress)
        _prune(progress)
        return image


def _prune(progress: Progress) -> None:
    """Remove images of older recipes (a few GiB each)."""
    current = recipe_hash()
    for path in cache_root().glob("*-*"):
        kind, _, digest = path.name.partition("-")
        if kind in ("rootfs", "base", "verity", "trusted") and digest != current and path.is_dir():
            progress(f"vm image: removing the outdated {path}")
            _remove_tree(path)


@contextmanager
def _build_lock() -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], step: str, timeout: float = 1800) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise VmError(f"VM image build: {step}: {cmd[0]} not installed") from None
    except subprocess.TimeoutExpired:
        raise VmError(f"VM image build: {step}: timed out after {timeout:.0f} s") from None
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-15:])
        raise VmError(f"VM image build: {step} failed (rc={res.returncode}):\n{tail}")
    return res.stdout


class _Steps:
    """Prints each build step with its duration."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        self.progress(f"vm image: {what} ...")
        t0 = time.monotonic()
        yield
        self.progress(f"vm image: {what}: done in {time.monotonic() - t0:.1f} s")


def ensure_rootfs(progress: Progress = print) -> Path:
    """The labelled root tree for the current recipe (debootstrap + configure + setfiles)."""
    root = cache_root()
    tree = root / f"rootfs-{recipe_hash()}"
    if (tree / ".azl-complete").is_file():
        return tree
    work = root / f"rootfs-{recipe_hash()}.tmp"
    _remove_tree(work)
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    s = _Steps(progress)
    with s.step(f"debootstrap {SUITE} ({len(PACKAGES)} packages + deps)"):
        _run(
            ["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
             "--include=" + ",".join(PACKAGES), SUITE, str(work), MIRROR],
            "debootstrap",
        )  # fmt: skip
    with s.step("configure (users, sshd, initramfs hooks, initramfs)"):
        for rel, (mode, text) in FILES.items():
            path = work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                path.unlink()
            path.write_text(text)
            path.chmod(mode)
        with _chroot_mounts(work):
            for cmd in COMMANDS:
                _run(["chroot", str(work), "/bin/sh", "-c", cmd], f"chroot: {cmd}")
    with s.step("label with setfiles -r (SELinux file contexts)"):
        _run(["setfiles", "-r", str(work), str(work / FILE_CONTEXTS), str(work)], "setfiles")
    (work / ".azl-complete").write_text(recipe_hash() + "\n")
    _remove_tree(tree)
    work.rename(tree)
    return tree


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix) or point == prefix[:-1]:
            points.append(point)
    return points


def _remove_tree(path: Path) -> None:
    """rmtree, but never through a mount (debootstrap or a failed build may leave /proc)."""
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_under(path)
    if left:
        raise VmError(f"VM image build: cannot unmount {left[0]}; remove {path} by hand")
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _chroot_mounts(tree: Path) -> Iterator[None]:
    """/proc, /sys and /dev for the commands run in the chroot (update-initramfs needs them)."""
    done: list[Path] = []
    try:
        for args, point in (
            (["-t", "proc", "proc"], tree / "proc"),
            (["-t", "sysfs", "sysfs"], tree / "sys"),
            (["--bind", "/dev"], tree / "dev"),
        ):
            point.mkdir(exist_ok=True)
            _run(["mount", *args, str(point)], f"mount {point.name}")
            done.append(point)
        yield
    finally:
        for point in reversed(done):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def _kernel_files(tree: Path) -> tuple[Path, Path]:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise VmError(f"VM image build: no kernel in {tree}/boot")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = tree / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise VmError(f"VM image build: no initramfs for kernel {version} in {tree}/boot")
    return kernels[-1], initrd


def _du_mib(path: Path) -> int:
    out = _run(["du", "-sxm", str(path)], "du")
    return int(out.split()[0])


def _mkfs(source: Path, image: Path, label: str, slack_mib: int) -> None:
    size = int(_du_mib(source) * 1.25) + slack_mib
    image.unlink(missing_ok=True)
    _run(
        ["mke2fs", "-q", "-t", "ext4", "-L", label, "-d", str(source), "-E", "root_owner=0:0",
         str(image), f"{size}M"],
        f"mke2fs {image.name}",
    )  # fmt: skip


def _pack(layout: Layout, tree: Path, progress: Progress) -> VmImage:
    final = image_dir(layout)
    work = final.with_name(final.name + ".tmp")
    _remove_tree(work)
    work.mkdir(parents=True)
    s = _Steps(progress)
    kernel, initrd = _kernel_files(tree)
    shutil.copy2(kernel, work / "vmlinuz")
    shutil.copy2(initrd, work / "initrd.img")
    meta: dict[str, object] = {"layout": layout, "recipe": recipe_hash(), "kernel": kernel.name}
    if layout == "base":
        with s.step("pack root.img (mke2fs -d, keeps xattrs)"):
            _mkfs(tree, work / "root.img", "azlroot", 768)
    elif layout == "trusted":
        from .vm_trusted import pack_trusted

        (work / "vmlinuz").unlink()  # the trusted tree's own kernel and initramfs replace them
        (work / "initrd.img").unlink()
        meta.update(pack_trusted(tree, work, s, lab_secure_boot_keys(), cache_root() / "debs"))
    else:
        meta["usr_root_hash"] = _pack_verity(tree, work, s)
    (work / "manifest.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return VmImage.load(final)


@contextmanager
def _usr_set_aside(tree: Path) -> Iterator[Path]:
    """/usr moved beside the tree (yielded, to pack on its own) and an empty /usr in its
    place with the same SELinux label (set by setfiles; the mount point keeps it), so the
    tree packs without /usr; put back afterwards, also when packing fails."""
    usr = tree / "usr"
    aside = tree.with_name(tree.name + ".usr")
    label = os.getxattr(usr, "security.selinux")
    usr.rename(aside)
    try:
        usr.mkdir()
        os.setxattr(usr, "security.selinux", label)
        yield aside
    finally:
        usr.rmdir()
        aside.rename(usr)


def verity_format(data: Path, hashes: Path, *options: str) -> str:
    """``veritysetup format``; returns the root hash it printed."""
    out = _run(["veritysetup", "format", *options, str(data), str(hashes)], "veritysetup")
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Root hash":
            return value.strip()
    raise AzlError(f"veritysetup format printed no root hash:\n{out}")


def _pack_verity(tree: Path, work: Path, s: _Steps) -> str:
    """Root without /usr, /usr as ext4 + dm-verity hash tree; returns the root hash."""
    with _usr_set_aside(tree) as usr:
        with s.step("pack root.img without /usr"):
            _mkfs(tree, work / "root.img", "azlroot", 512)
        with s.step("pack usr.img (read-only /usr)"):
            _mkfs(usr, work / "usr.img", "azlusr", 64)
    with s.step("veritysetup format usr.img usr.hash"):
        return verity_format(work / "usr.img", work / "usr.hash")

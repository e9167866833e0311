"""The known dataset: generated here from a seed, written to the target, its manifest kept.

The expected manifest is computed from what was generated (content digests, modes, owners,
mtimes, links, attributes), never read back from the target: a file damaged between writing
and the first reading is a difference like any other.

The tree has every kind of entry a restore must bring back: regular files of several sizes
(one with a space in its name), nested and empty directories, symlinks (one dangling), a
hard link, a FIFO, a sparse file, distinct modes (set-id and sticky bits too), owners,
groups and nanosecond mtimes, ``user.*`` extended attributes and POSIX ACLs (access and
default).
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import shlex
from dataclasses import dataclass, field, replace

from .verify import (
    ACL_ACCESS,
    ACL_DEFAULT,
    DIRECTORY,
    FIFO,
    REGULAR,
    SYMLINK,
    Entry,
    Manifest,
    Runner,
    acl_from_text,
)

SPARSE_BLOCK = 4096
FILE_MODES = (0o644, 0o600, 0o755, 0o444, 0o4755, 0o2711, 0o664, 0o700)
DIR_MODES = (0o755, 0o750, 0o2775, 0o1777, 0o711)
EPOCH = 1_600_000_000  # mtimes are drawn from the three years after this


@dataclass(frozen=True)
class DatasetSpec:
    """How much data: ``files`` random files (at least 2: the second is hard-linked) in
    ``dirs`` directories, sizes cycling, plus one of each special entry and a sparse file of
    ``sparse_kib``. ``seed`` fixes it all."""

    files: int = 24
    dirs: int = 4
    sizes_kib: tuple[int, ...] = (4, 64, 256, 1024)
    sparse_kib: int = 16 * 1024
    seed: int = field(default_factory=lambda: secrets.randbits(63))


@dataclass
class Dataset:
    """What to write (contents, link sources) and the manifest it must read back as."""

    seed: int
    manifest: Manifest
    contents: dict[str, bytes] = field(default_factory=dict)  # regular files
    sparse_blocks: dict[str, dict[int, bytes]] = field(default_factory=dict)  # offset -> data
    hardlink_of: dict[str, str] = field(default_factory=dict)  # link path -> first path

    def without_xattrs(self, names: frozenset[str] | None) -> Dataset:
        """The same dataset no longer expecting the attributes ``names`` (a filesystem that
        does not keep them); ``None``: extended attributes are not compared at all."""
        manifest = {
            p: replace(e, xattrs=None if names is None or e.xattrs is None else
                       {k: v for k, v in e.xattrs.items() if k not in names})
            for p, e in self.manifest.items()
        }
        return replace(self, manifest=manifest)


class _Draw:
    """Deterministic draws from the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def owner(self) -> tuple[int, int]:
        return self.rng.randrange(1000, 60000), self.rng.randrange(1000, 60000)

    def mtime(self) -> int:
        return (EPOCH + self.rng.randrange(3 * 365 * 86400)) * 1_000_000_000 \
            + self.rng.randrange(1_000_000_000)

    def meta(self, kind: str, mode: int) -> Entry:
        uid, gid = self.owner()
        return Entry(kind=kind, mode=mode, uid=uid, gid=gid, mtime_ns=self.mtime(), xattrs={})


def _acl(mode: int, named_uid: int) -> str:
    """An extended ACL that leaves ``mode`` as it is (mask = the group bits)."""
    bits = {4: "r", 2: "w", 1: "x"}

    def perm(p: int) -> str:
        return "".join(bits[b] if p & b else "-" for b in (4, 2, 1))

    return (f"u::{perm(mode >> 6 & 7)},u:{named_uid}:{perm(mode >> 3 & 4)},"
            f"g::{perm(mode >> 3 & 7)},m::{perm(mode >> 3 & 7)},o::{perm(mode & 7)}")


def generate(spec: DatasetSpec) -> Dataset:
    """The dataset of ``spec``: the same seed gives the same bytes and attributes."""
    draw = _Draw(spec.seed)
    data = Dataset(seed=spec.seed, manifest={})
    m = data.manifest
    m["."] = draw.meta(DIRECTORY, 0o755)
    for d in range(spec.dirs):
        m[f"d{d}"] = draw.meta(DIRECTORY, DIR_MODES[d % len(DIR_MODES)])
    for i in range(spec.files):
        path = f"d{i % spec.dirs}/f{i:03d}.bin"
        content = draw.rng.randbytes(spec.sizes_kib[i % len(spec.sizes_kib)] * 1024)
        data.contents[path] = content
        m[path] = replace(draw.meta(REGULAR, FILE_MODES[i % len(FILE_MODES)]), size=len(content),
                          sha256=hashlib.sha256(content).hexdigest(), nlink=1)
    named = "names/with space.txt"
    m["names"] = draw.meta(DIRECTORY, 0o755)
    data.contents[named] = f"seed {spec.seed}\n".encode()
    m[named] = replace(draw.meta(REGULAR, 0o644), size=len(data.contents[named]),
                       sha256=hashlib.sha256(data.contents[named]).hexdigest(), nlink=1)
    # links: soft (one dangling) and hard
    first, second = "d0/f000.bin", f"d{1 % spec.dirs}/f{1:03d}.bin"
    m["links"] = draw.meta(DIRECTORY, 0o755)
    for path, target in (("links/soft-to-f000", f"../{first}"), ("links/dangling", "no-such")):
        m[path] = replace(draw.meta(SYMLINK, 0o777), target=target, size=len(target.encode()),
                          nlink=1)
    hard = "links/hard-f001.bin"
    data.hardlink_of[hard] = second
    m[second] = replace(m[second], nlink=2, hardlinks=frozenset({hard}))
    m[hard] = replace(m[second], hardlinks=frozenset({second}))
    # special and empty
    m["special"] = draw.meta(DIRECTORY, 0o750)
    m["special/fifo"] = replace(draw.meta(FIFO, 0o620), size=0, nlink=1)
    m["empty"] = draw.meta(DIRECTORY, 0o700)
    m["d0/empty-inner"] = draw.meta(DIRECTORY, 0o755)
    # sparse: a few blocks of data, holes between them
    sparse, size = "sparse/holes.img", spec.sparse_kib * 1024
    m["sparse"] = draw.meta(DIRECTORY, 0o755)
    offsets = sorted({0, size // 2 // SPARSE_BLOCK * SPARSE_BLOCK, size - SPARSE_BLOCK})
    data.sparse_blocks[sparse] = {off: draw.rng.randbytes(SPARSE_BLOCK) for off in offsets}
    whole = bytearray(size)
    for off, block in data.sparse_blocks[sparse].items():
        whole[off:off + SPARSE_BLOCK] = block
    m[sparse] = replace(draw.meta(REGULAR, 0o640), size=size, nlink=1, sparse=True,
                        sha256=hashlib.sha256(whole).hexdigest())
    # extended attributes and ACLs (on the hard-linked inode: both paths carry them)
    note = {"user.azl.note": draw.rng.randbytes(24).hex(), "user.azl.empty": ""}
    m[first] = replace(m[first], xattrs=note)
    acl = {ACL_ACCESS: acl_from_text(_acl(m[second].mode, draw.owner()[0]))}
    m[second] = replace(m[second], xattrs=acl)
    m[hard] = replace(m[hard], xattrs=acl)
    m["empty"] = replace(m["empty"], xattrs={
        ACL_ACCESS: acl_from_text(_acl(m["empty"].mode, draw.owner()[0])),
        ACL_DEFAULT: acl_from_text(_acl(0o750, draw.owner()[0]))})
    return data


# -- writing -------------------------------------------------------------------------------------
# Sets user.* attributes and ACLs from a JSON list of [path, name, hex] on stdin; prints
# "unsupported NAME: reason" for each one the filesystem refuses (EOPNOTSUPP).
SET_XATTRS_SCRIPT = r"""
import errno, json, os, sys
os.chdir(sys.argv[1])
for path, name, value in json.load(sys.stdin):
    try:
        os.setxattr(path, name, bytes.fromhex(value), follow_symlinks=False)
    except OSError as exc:
        if exc.errno != errno.EOPNOTSUPP:
            raise
        print("unsupported", name, exc.strerror)
"""


def _q(path: str) -> str:
    return shlex.quote(path)


def write_dataset(runner: Runner, root: str, data: Dataset, *, xattrs: bool = True,
                  sudo: bool = True) -> frozenset[str]:
    """Write ``data`` under ``root`` (created); return the attribute names the filesystem
    refused (EOPNOTSUPP), which the caller no longer expects. ``xattrs=False``: none set."""
    m = data.manifest

    def sh(script: str, stdin: bytes | None = None, timeout: float = 120) -> str:
        return runner.run(script, sudo=sudo, check=True, timeout=timeout, stdin=stdin).stdout

    dirs = sorted(p for p, e in m.items() if e.kind == DIRECTORY and p != ".")
    shape = [f"set -e; mkdir -p {_q(root)}; cd {_q(root)}"]
    shape += [f"mkdir {_q(p)}" for p in dirs]
    shape += [f"ln -s {_q(str(e.target))} {_q(p)}" for p, e in sorted(m.items())
              if e.kind == SYMLINK]
    shape += [f"mkfifo {_q(p)}" for p, e in sorted(m.items()) if e.kind == FIFO]
    shape += [f"truncate -s {m[p].size} {_q(p)}" for p in sorted(data.sparse_blocks)]
    sh("; ".join(shape))
    for path, content in sorted(data.contents.items()):
        sh(f"cat > {_q(f'{root}/{path}')}", stdin=content)
    for path, blocks in sorted(data.sparse_blocks.items()):
        for offset, block in sorted(blocks.items()):
            sh(f"dd of={_q(f'{root}/{path}')} bs={SPARSE_BLOCK} seek={offset // SPARSE_BLOCK} "
               "conv=notrunc status=none", stdin=block)
    # Attributes in an order that keeps them: chown clears set-id bits (chmod after it); the
    # ACL's mask is the mode's group bits (after chmod); a directory's mtime changes when an
    # entry is added to it (mtimes last, once every entry exists).
    meta = [f"set -e; cd {_q(root)}"]
    meta += [f"ln {_q(source)} {_q(link)}" for link, source in sorted(data.hardlink_of.items())]
    meta += [f"chown -h {e.uid}:{e.gid} {_q(p)}" for p, e in sorted(m.items())]
    meta += [f"chmod {e.mode:04o} {_q(p)}" for p, e in sorted(m.items()) if e.kind != SYMLINK]
    sh("; ".join(meta))
    refused: set[str] = set()
    wanted = [[p, name, value] for p, e in sorted(m.items()) if p not in data.hardlink_of
              for name, value in sorted((e.xattrs or {}).items())]
    if xattrs and wanted:
        out = sh(f"python3 -c {_q(SET_XATTRS_SCRIPT)} {_q(root)}",
                 stdin=json.dumps(wanted).encode())
        refused = {line.split()[1] for line in out.splitlines() if line.startswith("unsupported")}
    touch = [f"set -e; cd {_q(root)}"]
    touch += [f"touch -h -d @{e.mtime_ns // 10**9}.{e.mtime_ns % 10**9:09d} {_q(p)}"
              for p, e in sorted(m.items())]
    touch.append("sync")
    sh("; ".join(touch))
    return frozenset(refused)

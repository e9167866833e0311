"""A tree's manifest, read on the target, and its comparison with the expected one.

A manifest maps each path under a root (``"."`` is the root itself) to an ``Entry``: its
kind, mode, owner, group, size, mtime, content digest, symlink target, hard links,
allocation (sparse or not) and extended attributes (``user.*`` and POSIX ACLs). The
expected manifest comes from the dataset the suite generated (``dataset.py``); the actual
one is read here with ``find``, ``sha256sum`` and, for extended attributes, ``python3``.
``compare_manifests`` names every difference, path by path.

Not compared: atime and ctime (no restore keeps ctime), the size and link count of
directories (they depend on the filesystem), extended attributes outside ``user.*`` and the
ACLs (``security.selinux`` is the host's labelling, not the data).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from ..errors import FormatError
from ..transport.protocol import CommandResult

REGULAR, DIRECTORY, SYMLINK, FIFO = "regular file", "directory", "symlink", "fifo"
KINDS = {"f": REGULAR, "d": DIRECTORY, "l": SYMLINK, "p": FIFO, "s": "socket",
         "c": "character device", "b": "block device"}
ACL_ACCESS, ACL_DEFAULT = "system.posix_acl_access", "system.posix_acl_default"


class Runner(Protocol):
    """What runs commands on the target: a ``Host``, or anything with its ``run``."""

    def run(self, cmd: str, *args: object, timeout: float | None = None,
            sudo: bool | None = None, check: bool = False,
            stdin: bytes | str | None = None) -> CommandResult: ...


@dataclass(frozen=True)
class Entry:
    """One path of a tree. ``None`` in an expected entry means "not compared"."""

    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int | None = None
    sha256: str | None = None
    target: str | None = None  # symlinks
    nlink: int | None = None
    hardlinks: frozenset[str] = frozenset()  # the other paths of the same inode
    sparse: bool | None = None  # fewer bytes allocated than its size
    xattrs: Mapping[str, str] | None = field(default=None, compare=False)  # name -> hex


Manifest = dict[str, Entry]


# -- POSIX ACLs as the kernel stores them (system.posix_acl_*: version 2, 8-byte entries) --
_ACL_TAGS = {0x01: "u", 0x02: "u", 0x04: "g", 0x08: "g", 0x10: "m", 0x20: "o"}
_ACL_TAG_OF = {("u", False): 0x01, ("u", True): 0x02, ("g", False): 0x04, ("g", True): 0x08,
               ("m", False): 0x10, ("o", False): 0x20}
_UNDEFINED_ID = 0xFFFFFFFF


def _perm_text(perm: int) -> str:
    return "".join(c if perm & bit else "-" for c, bit in (("r", 4), ("w", 2), ("x", 1)))


def acl_to_text(value_hex: str) -> str:
    """``u::rw-,u:1301:r--,g::r--,m::r--,o::---`` from the hex of an ACL xattr."""
    raw = bytes.fromhex(value_hex)
    if len(raw) < 4 or (len(raw) - 4) % 8 or int.from_bytes(raw[:4], "little") != 2:
        return f"(not a POSIX ACL: {value_hex[:32]})"
    parts = []
    for off in range(4, len(raw), 8):
        tag = int.from_bytes(raw[off:off + 2], "little")
        perm = int.from_bytes(raw[off + 2:off + 4], "little")
        ident = int.from_bytes(raw[off + 4:off + 8], "little")
        qualifier = "" if ident == _UNDEFINED_ID or tag not in (0x02, 0x08) else str(ident)
        parts.append(f"{_ACL_TAGS.get(tag, f'?{tag:#x}')}:{qualifier}:{_perm_text(perm)}")
    return ",".join(parts)


def acl_from_text(text: str) -> str:
    """The hex of the ACL xattr for ``u::rw-,u:1301:r--,...`` (entries in the kernel's order)."""
    entries: list[tuple[int, int, int]] = []
    for part in text.split(","):
        tag_name, qualifier, perms = part.split(":")
        perm = sum(bit for c, bit in (("r", 4), ("w", 2), ("x", 1)) if c in perms)
        ident = int(qualifier) if qualifier else _UNDEFINED_ID
        entries.append((_ACL_TAG_OF[(tag_name, bool(qualifier))], ident, perm))
    out = (2).to_bytes(4, "little")
    for tag, ident, perm in sorted(entries):  # the kernel's order: by tag, then by id
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + ident.to_bytes(4, "little")
    return out.hex()


# -- reading a tree on the target --------------------------------------------------------------
# One NUL-separated record per path: "type mode uid gid size mtime nlink dev:ino blocks",
# path, symlink target.
ENTRIES_SCRIPT = r"cd %s && find . -printf '%%y %%m %%U %%G %%s %%T@ %%n %%D:%%i %%b\0%%p\0%%l\0'"
DIGESTS_SCRIPT = "cd %s && find . -type f -print0 | sort -z | xargs -0 -r sha256sum -z"
# user.* attributes and POSIX ACLs of every path (symlinks not followed): path, name, hex.
XATTRS_SCRIPT = r"""
import os, sys
os.chdir(sys.argv[1])
out = sys.stdout.buffer
def emit(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        out.write(b"!%s\0" % exc.strerror.encode())
        return
    for name in sorted(names):
        if name.startswith("user.") or name.startswith("system.posix_acl_"):
            value = os.getxattr(path, name, follow_symlinks=False)
            out.write(b"\0".join((os.fsencode(path), name.encode(), value.hex().encode(), b"")))
emit(".")
for top, dirs, files in os.walk("."):
    for name in dirs + files:
        emit(os.path.join(top, name))
"""


def _relative(path: str) -> str:
    return "." if path == "." else path.removeprefix("./")


def _mtime_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def parse_entries(text: str) -> Manifest:
    """Entries from ``ENTRIES_SCRIPT`` output (hard links grouped by device and inode)."""
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    if len(fields) % 3:
        raise FormatError(f"find output cut short ({len(fields)} fields, not records of 3)")
    manifest: Manifest = {}
    inodes: dict[str, list[str]] = {}
    for i in range(0, len(fields), 3):
        stat, path, target = fields[i:i + 3]
        try:
            kind, mode, uid, gid, size, mtime, nlink, inode, blocks = stat.split(" ")
            path = _relative(path)
            manifest[path] = Entry(
                kind=KINDS.get(kind, kind), mode=int(mode, 8), uid=int(uid), gid=int(gid),
                mtime_ns=_mtime_ns(mtime), size=int(size), nlink=int(nlink),
                target=target if kind == "l" else None,
                sparse=int(blocks) * 512 < int(size) if kind == "f" else None,
            )
        except ValueError:
            raise FormatError(f"not a find record: {stat!r} {path!r}") from None
        if kind != "d":
            inodes.setdefault(inode, []).append(path)
    for paths in inodes.values():
        if len(paths) > 1:
            for path in paths:
                manifest[path] = replace(manifest[path],
                                         hardlinks=frozenset(p for p in paths if p != path))
    return manifest


def parse_digests(text: str) -> dict[str, str]:
    """``path -> sha256`` from ``sha256sum -z`` output (``digest  ./path`` records)."""
    out: dict[str, str] = {}
    for record in text.split("\0"):
        if record.strip():
            digest, _, path = record.partition("  ")
            out[_relative(path)] = digest.strip()
    return out


def parse_xattrs(text: bytes) -> dict[str, dict[str, str]]:
    """``path -> {name: hex}`` from ``XATTRS_SCRIPT`` output; a path that cannot list its
    attributes raises ``FormatError`` (the reading is not to be trusted)."""
    fields = text.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    out: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(fields):
        if fields[i].startswith(b"!"):
            raise FormatError(f"cannot list extended attributes: {fields[i][1:].decode()}")
        if i + 3 > len(fields):
            raise FormatError("extended attribute listing cut short")
        path, name, value = (f.decode("utf-8", "surrogateescape") for f in fields[i:i + 3])
        out.setdefault(_relative(path), {})[name] = value
        i += 3
    return out


def read_manifest(runner: Runner, root: str, *, xattrs: bool = True,
                  sudo: bool = True) -> Manifest:
    """The manifest of the tree at ``root`` on the target (``xattrs=False``: not read)."""
    quoted = shlex.quote(root)
    entries = parse_entries(runner.run(ENTRIES_SCRIPT % quoted, sudo=sudo, timeout=300,
                                       check=True).stdout)
    digests = parse_digests(runner.run(DIGESTS_SCRIPT % quoted, sudo=sudo, timeout=300,
                                       check=True).stdout)
    attributes: dict[str, dict[str, str]] = {}
    if xattrs:
        result = runner.run(f"python3 -c {shlex.quote(XATTRS_SCRIPT)} {quoted}", sudo=sudo,
                            timeout=300, check=True)
        attributes = parse_xattrs(result.stdout_bytes)
    return {
        path: replace(entry, sha256=digests.get(path),
                      xattrs=attributes.get(path, {}) if xattrs else None)
        for path, entry in entries.items()
    }


# -- comparison ----------------------------------------------------------------------------
def _time(ns: int) -> str:
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns % 1_000_000_000:09d}Z"


def _links(paths: frozenset[str]) -> str:
    return ", ".join(sorted(paths)) or "nothing"


def _xattr_value(name: str, value: str | None) -> str:
    if value is None:
        return "absent"
    return acl_to_text(value) if name in (ACL_ACCESS, ACL_DEFAULT) else f"0x{value[:40]}"


def _xattr_label(name: str) -> str:
    return {ACL_ACCESS: "ACL", ACL_DEFAULT: "default ACL"}.get(name, f"xattr {name}")


def compare_entry(path: str, want: Entry, got: Entry) -> list[str]:
    """Every attribute of ``got`` that differs from ``want`` (``None`` in ``want``: skipped)."""
    if got.kind != want.kind:
        return [f"{path}: {got.kind}, expected {want.kind}"]
    out = []
    if want.sha256 is not None and got.sha256 != want.sha256:
        out.append(f"{path}: content changed (sha256 {(got.sha256 or 'none')[:12]}..., "
                   f"expected {want.sha256[:12]}...)")
    if want.size is not None and got.size != want.size:
        out.append(f"{path}: size {got.size}, expected {want.size}")
    if want.target is not None and got.target != want.target:
        out.append(f"{path}: symlink to {got.target!r}, expected {want.target!r}")
    if got.mode != want.mode:
        out.append(f"{path}: mode {got.mode:04o}, expected {want.mode:04o}")
    if got.uid != want.uid:
        out.append(f"{path}: owner uid {got.uid}, expected {want.uid}")
    if got.gid != want.gid:
        out.append(f"{path}: group gid {got.gid}, expected {want.gid}")
    if got.mtime_ns != want.mtime_ns:
        out.append(f"{path}: mtime {_time(got.mtime_ns)}, expected {_time(want.mtime_ns)}")
    if got.hardlinks != want.hardlinks:
        out.append(f"{path}: hard-linked with {_links(got.hardlinks)}, "
                   f"expected with {_links(want.hardlinks)}")
    elif want.nlink is not None and got.nlink != want.nlink:  # a link from outside the tree
        out.append(f"{path}: {got.nlink} hard links, expected {want.nlink}")
    if want.sparse and got.sparse is False:
        out.append(f"{path}: no longer sparse (all {got.size} bytes allocated)")
    if want.xattrs is not None:
        have = got.xattrs
        if have is None:
            out.append(f"{path}: extended attributes not read")
        else:
            for name in sorted(set(want.xattrs) | set(have)):
                if want.xattrs.get(name) != have.get(name):
                    out.append(f"{path}: {_xattr_label(name)} "
                               f"{_xattr_value(name, have.get(name))}, "
                               f"expected {_xattr_value(name, want.xattrs.get(name))}")
    return out


def compare_manifests(expected: Mapping[str, Entry], actual: Mapping[str, Entry]) -> list[str]:
    """Differences as sentences naming each path; empty when the tree is as expected."""
    problems = []
    for path in sorted(set(expected) | set(actual)):
        want, got = expected.get(path), actual.get(path)
        if got is None and want is not None:
            problems.append(f"{path}: missing {want.kind}")
        elif want is None and got is not None:
            extra = f" -> {got.target}" if got.target is not None else ""
            problems.append(f"{path}: unexpected {got.kind}{extra}")
        elif want is not None and got is not None:
            problems.extend(compare_entry(path, want, got))
    return problems

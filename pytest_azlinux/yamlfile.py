"""Configuration file -> data, with a one-line error naming the source and line.

A key given twice in one mapping is an error (PyYAML keeps the last one silently, so a
second ``hosts:`` would quietly replace the first); ``<<:`` merge keys work as YAML defines
them. A file is refused, never waited on or expanded without bound: aliases that would expand
far beyond the file's own size (an alias bomb), more than ``MAX_BYTES``, a FIFO nothing writes
to. The C parser is used where PyYAML has it: a targets file of 16 000 hosts parses in about a
second instead of many.
"""

from __future__ import annotations

import os
import select
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, TargetsError

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_BYTES = 32 * 1024 * 1024  # a 16 000-host targets file is about 2 MB
# Values a document may hold once its aliases are expanded: this many per node written in the
# file, plus a floor; defaults shared through aliases stay far below, an alias bomb goes past.
EXPANSION_PER_NODE = 10
EXPANSION_FLOOR = 100_000
WRITER_WAIT = 1.0  # s: a FIFO no program writes to is refused after this
STALL_WAIT = 30.0  # s: a pipe whose writer sends nothing more is refused after this


class UniqueKeyLoader(_Base):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # merged keys may be overridden: that is the point
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value, not a list or a mapping",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line "
                    f"{seen[key].start_mark.line + 1})", key_node.start_mark,
                )
            seen[key] = key_node
        return dict(super().construct_mapping(node, deep=deep))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it far beyond what the file holds. Linear in the
    number of nodes written (aliases are shared node objects, each sized once)."""
    written: set[int] = set()
    aliased = False
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in written:
            aliased = True
        elif not isinstance(node, yaml.ScalarNode):
            written.add(id(node))
            todo.extend(_children(node))
        else:
            written.add(id(node))
    if not aliased:  # a tree: it holds what is written, nothing more
        return
    limit = EXPANSION_PER_NODE * len(written) + EXPANSION_FLOOR
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > limit:
                raise yaml.constructor.ConstructorError(
                    None, None, f"aliases expand this value to more than {limit} values "
                    "(an alias bomb?)", node.start_mark,
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to a value that contains it", node.start_mark,
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def load_yaml(
    text: str, source: str, error: type[TargetsError] = TargetsError, loader: Any = None
) -> Any:
    """Parse ``text``; raise ``error`` as ``source: line N: invalid YAML: <problem>``.
    ``loader``: a subclass of ``UniqueKeyLoader`` with constructors of its own (tags)."""
    parser = (loader or UniqueKeyLoader)(text)
    try:
        node = parser.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return parser.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{source}:{where}: invalid YAML: {problem}") from None
    finally:
        parser.dispose()


class _Unreadable(Exception):
    """Why a file's bytes could not be read (the message after ``cannot read <what>:``)."""


def _wait_readable(fd: int, seconds: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


def _read_bytes(path: Path) -> bytes:
    """At most ``MAX_BYTES`` of ``path``; a FIFO is read without waiting forever on it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens at once
    try:
        is_fifo = stat.S_ISFIFO(os.fstat(fd).st_mode)
        chunks: list[bytes] = []
        total = 0
        waited_for_writer = False
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:  # a writer is there but has sent nothing yet
                if not _wait_readable(fd, STALL_WAIT):
                    raise _Unreadable(f"nothing written to it for {STALL_WAIT:g} s") from None
                continue
            if not chunk:
                # no writer (yet): a FIFO nothing writes to would otherwise be an empty file
                if is_fifo and total == 0 and not waited_for_writer:
                    waited_for_writer = True
                    if _wait_readable(fd, WRITER_WAIT):
                        continue
                    raise _Unreadable(f"a FIFO that nothing writes to (waited {WRITER_WAIT:g} s)")
                break
            total += len(chunk)
            if total > MAX_BYTES:
                raise _Unreadable(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(
    path: Path, what: str, error: type[ConfigError] = TargetsError, source: str | None = None
) -> str:
    """A configuration file's UTF-8 text; one line naming the file (``source``) otherwise:
    ``cannot read <what>: <reason>`` or ``line N: not UTF-8 text (byte 0x.. at offset ..)``."""
    source = source or str(path)
    try:
        data = _read_bytes(path)
    except OSError as exc:
        raise error(f"{source}: cannot read {what}: {exc.strerror or exc}") from None
    except _Unreadable as exc:
        raise error(f"{source}: cannot read {what}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                    f"offset {exc.start})") from None

"""YAML text -> data, with a one-line error naming the source and line.

A key given twice in one mapping is an error (PyYAML keeps the last one silently, so a
second ``hosts:`` would quietly replace the first). The C parser is used where PyYAML has it:
a targets file of 16 000 hosts parses in about a second instead of many.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, TargetsError

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(_Base):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line "
                    f"{seen[key].start_mark.line + 1})", key_node.start_mark,
                )
            seen[key] = key_node
        return dict(super().construct_mapping(node, deep=deep))


def load_yaml(
    text: str, source: str, error: type[TargetsError] = TargetsError, loader: Any = None
) -> Any:
    """Parse ``text``; raise ``error`` as ``source: line N: invalid YAML: <problem>``.
    ``loader``: a subclass of ``UniqueKeyLoader`` with constructors of its own (tags)."""
    try:
        return yaml.load(text, Loader=loader or UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{source}:{where}: invalid YAML: {problem}") from None


def read_text(
    path: Path, what: str, error: type[ConfigError] = TargetsError, source: str | None = None
) -> str:
    """A configuration file's UTF-8 text; one line naming the file (``source``) otherwise:
    ``cannot read <what>: <reason>`` or ``line N: not UTF-8 text (byte 0x.. at offset ..)``."""
    source = source or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{source}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                    f"offset {exc.start})") from None

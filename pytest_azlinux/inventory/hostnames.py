"""Host patterns of an inventory: ``name[:port]`` and ranges (``web[01:03]``, ``db-[a:c]``,
``n[1:9:2]``), expanded the way Ansible expands them."""

from __future__ import annotations

import re
import string

from ..errors import TargetsError

_RANGE = re.compile(r"\[([^\]]*)\]")


def split_port(pattern: str, where: str) -> tuple[str, int | None]:
    """``host:2222`` -> ``(host, 2222)``; a colon inside a range (``web[1:3]``) is not a port."""
    outside = _RANGE.sub(lambda m: "_" * len(m[0]), pattern)
    if outside.count(":") != 1:
        return pattern, None
    name, _, port = pattern.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise TargetsError(f"{where}: host {pattern!r}: not a port number 1..65535: {port!r}")
    return name, int(port)


def expand(pattern: str, where: str) -> list[str]:
    """Every name a host pattern stands for, in order."""
    m = _RANGE.search(pattern)
    if m is None:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end():]
    out: list[str] = []
    for value in _range_values(m[1], pattern, where):
        out.extend(expand(head + value + tail, where))
    return out


def _range_values(spec: str, pattern: str, where: str) -> list[str]:
    def bad(why: str) -> TargetsError:
        return TargetsError(f"{where}: host range {pattern!r}: {why}")

    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise bad("expected [start:end] or [start:end:step]")
    start, end = parts[0] or "0", parts[1]
    step_text = parts[2] if len(parts) == 3 and parts[2] else "1"
    if not end:
        raise bad("the range needs an end")
    if not step_text.isdigit() or int(step_text) == 0:
        raise bad(f"step must be a whole number > 0, got {step_text!r}")
    step = int(step_text)
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if width and len(end) != width:
            raise bad("a zero-padded range needs start and end of the same width")
        if int(start) > int(end):
            raise bad("start is after end")
        return [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    letters = string.ascii_letters
    if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
        first, last = letters.index(start), letters.index(end)
        if first > last:
            raise bad("start is after end")
        return list(letters[first : last + 1 : step])
    raise bad("expected numbers or single letters")

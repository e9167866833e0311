"""A shell command from a template and its arguments (shared by ``Host.run`` and ``Read.of``)."""

from __future__ import annotations

import re
import shlex

from .errors import CommandRefused

_PLACEHOLDER = re.compile(r"(?<!%)(?:%%)*%s")


def build_command(cmd: str, args: tuple[object, ...]) -> str:
    """``cmd`` with ``args`` shell-quoted: ``%s`` placeholders if present, else appended.

    A NUL byte cannot travel in a shell word (the shell would drop it, or cut the word
    there): ``CommandRefused`` instead of running something else than was asked.
    """
    if "\0" in cmd:
        raise CommandRefused(f"command {cmd[:80]!r} contains a NUL byte")
    texts = [str(a) for a in args]
    for index, text in enumerate(texts, 1):
        if "\0" in text:
            raise CommandRefused(
                f"command {cmd[:80]!r}: argument {index} contains a NUL byte "
                "(a shell argument cannot hold one; send binary data as stdin)")
    if not args:
        return cmd
    quoted = tuple(shlex.quote(t) for t in texts)
    if _PLACEHOLDER.search(cmd):  # "%%s" is a literal "%s" (printf formats), not a slot
        return cmd % quoted
    return " ".join((cmd, *quoted))

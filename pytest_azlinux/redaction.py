"""The one redaction of secrets: every place output goes (transport messages, the terminal,
pytest's own JUnit and captured sections, the per-image reports) calls ``redact``.

A secret reaches output in more spellings than its own: shell-quoted in a command (a
password with ``'``), escaped in a repr or JSON (with ``\\`` or quotes), HTML-escaped, and
cut (pytest shows a long repr as its head and tail). Every spelling is replaced, and so is
any run of at least ``MIN_SECRET_LENGTH`` characters that a spelling starts or ends with.
A secret shorter than that cannot be told apart from ordinary text (a one-character
password would turn every such character of the output into ``***``): it is refused when
its target is selected (``check_secret``).
"""

from __future__ import annotations

import functools
import html
import json
import shlex
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

MASK = "***"
MIN_SECRET_LENGTH = 8


def check_secret(secret: str) -> str | None:
    """Why ``secret`` cannot be redacted safely, or None."""
    if 0 < len(secret) < MIN_SECRET_LENGTH:
        return (f"a secret of {len(secret)} characters is too short to redact from output "
                f"safely (at least {MIN_SECRET_LENGTH})")
    return None


def _escaped(text: str) -> set[str]:
    """``text`` as a repr, JSON or HTML shows it (without the enclosing quotes)."""
    backslashed = text.replace("\\", "\\\\")
    return {
        text,
        repr(text)[1:-1],
        backslashed.replace("'", "\\'"),
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        html.escape(text),
        html.escape(text, quote=False),
    }


def spellings(secret: str) -> set[str]:
    """Every way ``secret`` is written in output: as it is or shell-quoted, escaped up to
    twice (a repr of a message that holds a repr)."""
    out: set[str] = set()
    for base in (secret, shlex.quote(secret)):
        for once in _escaped(base):
            out |= _escaped(once)
    return out


class Redactor:
    """Replaces every spelling of some secrets, and their heads and tails, by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found = {s for secret in secrets if len(secret) >= MIN_SECRET_LENGTH
                 for s in spellings(secret)}
        self._spellings = sorted(found, key=len, reverse=True)
        # what every match starts or ends with: a text holding none of them is left as it is
        self._fragments = tuple({f for sp in found for f in (sp[:MIN_SECRET_LENGTH],
                                                              sp[-MIN_SECRET_LENGTH:])})

    def __bool__(self) -> bool:
        return bool(self._spellings)

    def __call__(self, text: str) -> str:
        if not any(fragment in text for fragment in self._fragments):
            return text
        merged: list[list[int]] = []
        for start, end in sorted(span for sp in self._spellings for span in _spans(text, sp)):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        out: list[str] = []
        done = 0
        for start, end in merged:
            out += [text[done:start], MASK]
            done = end
        out.append(text[done:])
        return "".join(out)


def _spans(text: str, spelling: str) -> Iterable[tuple[int, int]]:
    """Where ``text`` holds ``spelling``, or a run of at least ``MIN_SECRET_LENGTH``
    characters it starts with (a cut head) or ends with (a cut tail)."""
    head, tail = spelling[:MIN_SECRET_LENGTH], spelling[-MIN_SECRET_LENGTH:]
    start = text.find(head)
    while start >= 0:
        end = start + len(head)
        while end - start < len(spelling) and end < len(text) and (
                text[end] == spelling[end - start]):
            end += 1
        yield start, end
        start = text.find(head, start + 1)
    stop = text.find(tail)
    while stop >= 0:
        end = stop + len(tail)
        begin = stop
        while end - begin < len(spelling) and begin > 0 and (
                text[begin - 1] == spelling[len(spelling) - (end - begin) - 1]):
            begin -= 1
        yield begin, end
        stop = text.find(tail, stop + 1)


@functools.lru_cache(maxsize=32)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every spelling of every secret (and their cut heads and tails)
    replaced by ``***``."""
    redactor = _redactor(tuple(secrets))
    return redactor(text) if redactor else text


class _Report(Protocol):
    """What ``redact_report`` changes of a pytest ``TestReport``."""

    longrepr: Any
    sections: list[tuple[str, str]]
    user_properties: list[tuple[str, object]]


def redact_report(report: _Report, secrets: Sequence[str]) -> None:
    """A test report with its secrets redacted before anything reads it: the terminal, the
    ``-rA`` summary, pytest's own ``--junit-xml`` (failure text, captured sections with
    ``junit_logging``, ``record_property``), xdist's controller and the per-image reports."""
    redactor = _redactor(tuple(secrets))
    if not redactor:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason), kept a tuple
        report.longrepr = (*longrepr[:-1], redactor(str(longrepr[-1])))
    elif longrepr is not None:
        text = str(longrepr)
        shown = redactor(text)
        if shown != text:
            report.longrepr = shown
    report.sections = [(title, redactor(body)) for title, body in report.sections]
    properties = []
    for key, value in report.user_properties:
        text = str(value)
        shown = redactor(text)
        properties.append((key, shown if shown != text else value))
    report.user_properties = properties

"""The one redaction (redaction.py): every spelling of a secret, cut heads and tails, and
nothing else of the text."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

from _pytest._io.saferepr import saferepr

from pytest_azlinux.redaction import MIN_SECRET_LENGTH, check_secret, redact, redact_report

SECRET = "it's-a\\pass\"word-7"


def test_every_spelling_is_replaced() -> None:
    spelled = [SECRET, shlex.quote(SECRET), repr(SECRET), repr(repr(SECRET)),
               json.dumps(SECRET), json.dumps({"cmd": f"echo {shlex.quote(SECRET)}"})]
    for text in spelled:
        shown = redact(f"before {text} after", [SECRET])
        assert "***" in shown, text
        assert "pass" not in shown and "word-7" not in shown, (text, shown)
        assert shown.startswith("before ") and shown.endswith(" after"), shown


def test_a_cut_repr_loses_its_head_and_tail() -> None:
    long = "L" + "0123456789abcdef" * 20
    cut = saferepr(long)  # pytest's: 'L0123...' + '...' + '...cdef'
    assert "..." in cut
    assert redact(f"secret = {cut}", [long]) == "secret = '***...***'"


def test_text_without_the_secret_is_unchanged() -> None:
    text = "it's a password-free line with pass and word\n" * 3
    assert redact(text, [SECRET]) == text
    assert redact(text, []) == text


def test_too_short_secrets_are_refused_not_smeared() -> None:
    assert check_secret("x") is not None
    assert check_secret("x" * MIN_SECRET_LENGTH) is None
    assert check_secret("") is None  # no secret set
    assert redact("a password of x", ["x"]) == "a password of x"  # never every "x" -> ***


def test_a_report_keeps_its_shape() -> None:
    """A skip stays a (path, line, reason) tuple (the collector and waivers read it so);
    sections and properties are redacted in place."""
    report = SimpleNamespace(
        longrepr=("t.py", 3, f"Skipped: needs {SECRET}"),
        sections=[("Captured stdout call", f"pw {SECRET}\n")],
        user_properties=[("note", f"pw={SECRET}"), ("metric.n", 3.5)],
    )
    redact_report(report, [SECRET])
    assert report.longrepr == ("t.py", 3, "Skipped: needs ***")
    assert report.sections == [("Captured stdout call", "pw ***\n")]
    assert report.user_properties == [("note", "pw=***"), ("metric.n", 3.5)]

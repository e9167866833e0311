"""A finding: one expectation of a profile the host does not meet, with the source note."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """``check`` names what was compared (``selinux.runtime``, ``packages.runc``...)."""

    check: str
    expected: str
    found: str
    source: str = ""
    summary: str = ""  # a headline that replaces "expected vs found" (e.g. AppArmor artifacts)

    def line(self) -> str:
        head = self.summary or f"expected {self.expected}, found {self.found}"
        text = f"{self.check}: {head}"
        if self.summary:
            text += f" (expected {self.expected}, found {self.found})"
        if self.source:
            text += f"\n    source: {self.source}"
        return text


def format_findings(findings: Sequence[Finding], profile: str, reason: str = "") -> str:
    """A failure message: the profile, why it applies, then one entry per finding."""
    why = f" ({reason})" if reason else ""
    count = f"{len(findings)} finding" + ("s" if len(findings) != 1 else "")
    lines = [f"profile {profile}{why}: {count}"]
    lines += [f"  {f.line()}" for f in findings]
    return "\n".join(lines)

"""What every check shares: the verdict it returns and the comparison of one read value."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from .evidence import Evidence
    from .readplan import ReadPlan

Outcome = Literal["passed", "failed", "not_applicable", "unavailable"]


class Strict(BaseModel):
    """Base of the controls data: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Verdict:
    """A check's result: ``found`` is what the host showed, ``expected`` what passes.

    ``unavailable``: the host could not show it (an ERROR, never a finding);
    ``not_applicable``: nothing there for the control to judge (``found`` says why).
    """

    outcome: Outcome
    found: str
    expected: str

    @classmethod
    def judged(cls, ok: bool, found: str, expected: str) -> Verdict:
        return cls("passed" if ok else "failed", found, expected)


class CheckKind(Protocol):
    """What a check kind (an entry of ``checks.KINDS``) provides."""

    @property
    def kind(self) -> str:
        """The name controls select it by (``kind: Literal["<name>"]`` on the model)."""

    def plan(self, plan: ReadPlan) -> None:
        """Add what this check reads to ``plan``."""

    def reads(self) -> str:
        """What is read, one line for people (docs, messages)."""

    def expects(self) -> str:
        """What passes, one line for people."""

    def judge(self, ev: Evidence) -> Verdict:
        """The verdict on what the host showed (pure)."""


def _as_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


class Compare(Strict):
    """How one value read from a host is judged. Set one kind (at_least and at_most may go
    together): ``one_of`` (case-insensitive), ``at_least``/``at_most`` (integers), ``none_of``
    (a comma-separated list holds no item matching these shell patterns), ``fields_at_most``
    (``a:b:c`` with each field at most the given one, as sshd's MaxStartups), ``mask_covers``
    (an octal umask that masks at least these bits)."""

    one_of: list[str] | None = None
    at_least: int | None = None
    at_most: int | None = None
    none_of: list[str] | None = None
    fields_at_most: list[int] | None = None
    mask_covers: str | None = Field(default=None, pattern=r"^[0-7]{3,4}$")

    @model_validator(mode="after")
    def _one_kind(self) -> Compare:
        kinds = [
            self.one_of is not None,
            self.at_least is not None or self.at_most is not None,
            self.none_of is not None,
            self.fields_at_most is not None,
            self.mask_covers is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                "set exactly one of one_of, at_least/at_most, none_of, fields_at_most, mask_covers"
            )
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least} > at_most {self.at_most}")
        return self

    def describe(self) -> str:
        if self.one_of is not None:
            return " or ".join(self.one_of)
        if self.none_of is not None:
            return "none of " + ", ".join(self.none_of)
        if self.fields_at_most is not None:
            return "each field at most " + ":".join(str(v) for v in self.fields_at_most)
        if self.mask_covers is not None:
            return f"{self.mask_covers} or stricter (masks at least those bits)"
        if self.at_least is not None and self.at_most is not None:
            return f"between {self.at_least} and {self.at_most}"
        if self.at_least is not None:
            return f"at least {self.at_least}"
        return f"at most {self.at_most}"

    def matches(self, value: str) -> bool:
        """Whether ``value`` passes (a value that is not a number fails a number test)."""
        if self.one_of is not None:
            return value.strip().lower() in {v.lower() for v in self.one_of}
        if self.none_of is not None:
            return not self.offending(value)
        if self.fields_at_most is not None:
            fields = [_as_int(f) for f in value.split(":")]
            if len(fields) != len(self.fields_at_most) or any(f is None for f in fields):
                return False
            pairs = zip(fields, self.fields_at_most, strict=True)
            return all(f is not None and f <= m for f, m in pairs)
        if self.mask_covers is not None:
            if not re.fullmatch(r"[0-7]{1,4}", value.strip()):
                return False
            mask = int(value.strip(), 8)
            return mask | int(self.mask_covers, 8) == mask
        number = _as_int(value)
        if number is None:
            return False
        if self.at_least is not None and number < self.at_least:
            return False
        return not (self.at_most is not None and number > self.at_most)

    def offending(self, value: str) -> list[str]:
        """Items of a comma-separated ``value`` that match a ``none_of`` pattern."""
        patterns = [p.lower() for p in self.none_of or []]
        items = [i.strip() for i in value.split(",") if i.strip()]
        return [i for i in items if any(fnmatch.fnmatchcase(i.lower(), p) for p in patterns)]

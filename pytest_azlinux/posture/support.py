"""Support windows: is an image still supported on a given day? Pure, over the profile.

A profile may carry ``support_ends`` (the first day without support), ``removed_on`` (the
day its images are deleted) and ``successor`` (the profile to move to), each with its
source. ``verdict`` turns them and a day into one of four states:

- ``ended``: the day is ``support_ends`` or later (a FAIL);
- ``ending``: support ends within ``WARN_DAYS`` days (a PASS with a warning);
- ``supported``: support ends later than that (a PASS);
- ``unknown``: the profile records no window (a SKIP saying so).

Every message is one line naming the image, the profile, the dates and the successor.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from ..profiles.model import Profile

WARN_DAYS = 30
SupportState = Literal["ended", "ending", "supported", "unknown"]


class SupportEndingWarning(UserWarning):
    """The image's support ends within ``WARN_DAYS`` days: the test passes, and says so."""


@dataclass(frozen=True)
class SupportVerdict:
    state: SupportState
    message: str
    support_ends: dt.date | None = None
    days_left: int | None = None  # days from the day judged to support_ends (<= 0: ended)


def parse_day(text: str) -> dt.date:
    """``YYYY-MM-DD`` as a date; ValueError (saying what was expected) otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"expected a date YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"expected a date YYYY-MM-DD, got {text!r}: {exc}") from None


def successor_name(successor: Profile) -> str:
    """A successor as a reader says it: the head of its description, then its name."""
    head = re.split(r" \(|: |; |, |\. ", successor.description.strip(), maxsplit=1)[0]
    return f"{head} (profile {successor.name})" if head else f"profile {successor.name}"


def verdict(
    profile: Profile, today: dt.date, *, image: str, successor: Profile | None = None
) -> SupportVerdict:
    """The support verdict of ``image`` (judged by ``profile``) on ``today``.

    ``successor`` is ``profile.successor`` resolved to its profile, when it is one; the
    message then names what it is, not only its name.
    """
    who = f"image {image} (profile {profile.name})"
    ends = profile.support_ends
    if ends is None:
        return SupportVerdict(
            "unknown", f"no support window known: profile {profile.name} sets no support_ends"
        )
    days_left = (ends - today).days
    removed = ""
    if profile.removed_on is not None:
        tense = "removed" if profile.removed_on <= today else "to be removed"
        removed = f" (images {tense} {profile.removed_on.isoformat()})"
    move = ""
    if successor is not None:
        move = f"; move to {successor_name(successor)}"
    elif profile.successor:
        move = f"; move to {profile.successor}"
    if days_left <= 0:
        message = f"{who}: out of support since {ends.isoformat()}{removed}{move}"
        return SupportVerdict("ended", message, ends, days_left)
    if days_left <= WARN_DAYS:
        when = "tomorrow" if days_left == 1 else f"in {days_left} days"
        message = f"{who}: support ends {ends.isoformat()}, {when}{removed}{move}"
        return SupportVerdict("ending", message, ends, days_left)
    message = f"{who}: supported until {ends.isoformat()} ({days_left} days left)"
    return SupportVerdict("supported", message, ends, days_left)

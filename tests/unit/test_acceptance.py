"""The acceptance fields shared by allowlist entries and waivers (pytest_azlinux.acceptance)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from pytest_azlinux.acceptance import Acceptance


def test_expiry_starts_on_the_expires_day() -> None:
    a = Acceptance(reason="known", expires=dt.date(2027, 1, 31))
    assert a.active(dt.date(2027, 1, 30)) and not a.expired(dt.date(2027, 1, 30))
    assert a.expired(dt.date(2027, 1, 31)) and not a.active(dt.date(2027, 2, 1))
    assert Acceptance(reason="forever").active(dt.date(9999, 12, 31))


def test_text_and_fields_for_reports() -> None:
    a = Acceptance.model_validate({"reason": " known ", "expires": "2027-01-31",
                                   "tracker": "https://t.example/OPS-1", "owner": "team"})
    assert a.acceptance_text() == "until 2027-01-31: known (https://t.example/OPS-1), owner team"
    assert a.acceptance_fields() == {"reason": "known", "expires": "2027-01-31",
                                     "tracker": "https://t.example/OPS-1", "owner": "team"}
    assert Acceptance(reason="r").acceptance_text() == "r"


@pytest.mark.parametrize(("raw", "field", "says"), [
    ({}, "reason", "Field required"),
    ({"reason": "  "}, "reason", "must say why"),
    ({"reason": "r", "expires": "31.01.2027"}, "expires", "not an ISO date"),
    ({"reason": "r", "expires": dt.datetime(2027, 1, 31, 12)}, "expires", "not a date and time"),
    ({"reason": "r", "tracker": "OPS-1"}, "tracker", "must be a URL"),
    ({"reason": "r", "until": "2027-01-31"}, "until", "Extra inputs"),
])
def test_bad_values_are_refused(raw: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Acceptance.model_validate(raw)
    err = exc.value.errors()[0]
    assert err["loc"] == (field,) and says in err["msg"]

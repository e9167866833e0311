"""The cluster API client's rate limit (token bucket) and its retry of throttled calls.

Time is a fake clock here (``api.time`` patched): the tests check what the limiter and the
retry decide to wait, never how long the machine takes.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_azlinux.cluster import api
from pytest_azlinux.cluster.k8s import ApiException
from pytest_azlinux.cluster.settings import ClusterSettings
from pytest_azlinux.errors import ApiError, SettingsError
from pytest_azlinux.settings import parse


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(api.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(api.time, "sleep", fake.sleep)
    monkeypatch.setattr(api.random, "random", lambda: 0.0)
    return fake


def test_burst_passes_then_requests_are_paced_at_qps(clock: FakeClock) -> None:
    limiter = api.RateLimiter(qps=4, burst=3)
    for _ in range(3):
        limiter.acquire()
    assert clock.slept == []
    limiter.acquire()
    assert clock.slept == [pytest.approx(0.25)]
    clock.now += 10  # idle: the bucket refills up to the burst, not beyond
    for _ in range(3):
        limiter.acquire()
    assert len(clock.slept) == 1
    limiter.acquire()
    assert clock.slept[-1] == pytest.approx(0.25)


def test_qps_zero_is_unlimited(clock: FakeClock) -> None:
    limiter = api.RateLimiter(qps=0, burst=1)
    for _ in range(100):
        limiter.acquire()
    assert clock.slept == []


def _throttled(retry_after: str | None) -> ApiException:
    exc = ApiException(status=429, reason="Too Many Requests")
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


def test_retry_honours_retry_after_of_a_429(clock: FakeClock) -> None:
    answers: list[Any] = [_throttled("7"), "ok"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert api.retry(call, "list pods") == "ok"
    assert clock.slept == [pytest.approx(7.0)]


def test_retry_gives_up_on_throttling_with_an_api_error(clock: FakeClock) -> None:
    def call() -> str:
        raise _throttled(None)

    with pytest.raises(ApiError) as info:
        api.retry(call, "list pods", attempts=3)
    assert info.value.status == 429
    assert len(clock.slept) == 2


def test_rate_limit_settings_are_validated() -> None:
    settings = parse(ClusterSettings, {"api_qps": 5, "api_burst": 10}, "pool")
    assert (settings.api_qps, settings.api_burst) == (5, 10)
    with pytest.raises(SettingsError, match="api_burst"):
        parse(ClusterSettings, {"api_burst": 0}, "pool")

"""Command-line and ini options of the gate (declared by the main plugin's pytest_addoption)."""

from __future__ import annotations

from typing import Any

import pytest


def add_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption(
        "--azl-waivers", metavar="PATH",
        help="waivers file (default: ini azl_waivers_file, or azl-waivers.yaml beside the "
        "targets file)",
    )
    group.addoption(
        "--azl-reruns", type=int, metavar="N",
        help="run a test again up to N times when it ends in an infrastructure ERROR (host "
        "unreachable, connection lost); a FAIL is never rerun (default: ini azl_reruns, 0)",
    )
    parser.addini("azl_waivers_file", "waivers file, relative to the rootdir")
    parser.addini("azl_reruns", "reruns of a test after an infrastructure error", default="0")


def reruns_option(config: pytest.Config) -> int:
    value = config.getoption("azl_reruns", None)
    raw = value if value is not None else config.getini("azl_reruns")
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"azl_reruns: expected a whole number, got {raw!r}") from None
    if number < 0:
        raise pytest.UsageError(f"azl_reruns: must be 0 or more, got {raw!r}")
    return number

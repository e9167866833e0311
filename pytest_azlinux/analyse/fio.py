"""fio JSON (``--output-format=json``) -> IOPS and mean latency per direction; fio's IOPS log
(``--write_iops_log`` with ``--log_avg_msec=1000``) -> IOPS per second, the repetitions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import FioFormatError


@dataclass(frozen=True)
class FioResult:
    read_iops: float
    write_iops: float
    read_lat_ms: float | None
    write_lat_ms: float | None
    # IOPS of each second of the run (from the IOPS log), per direction; empty without one
    read_iops_samples: tuple[float, ...] = ()
    write_iops_samples: tuple[float, ...] = ()


def parse_fio_json(text: str) -> FioResult:
    """Sum IOPS over jobs; latency is the IOPS-weighted mean of ``lat_ns.mean``."""
    start = text.find("{")  # fio may print notices before the JSON document
    try:
        data: dict[str, Any] = json.loads(text[start:] if start >= 0 else text)
        jobs = data["jobs"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FioFormatError(f"not fio JSON output: {exc}") from None
    totals: dict[str, list[float]] = {"read": [0.0, 0.0], "write": [0.0, 0.0]}
    for job in jobs:
        for direction, acc in totals.items():
            stats = job.get(direction, {})
            iops = float(stats.get("iops", 0.0))
            lat = stats.get("lat_ns", {}).get("mean")
            acc[0] += iops
            if lat is not None:
                acc[1] += iops * float(lat)

    def lat_ms(direction: str) -> float | None:
        iops, weighted = totals[direction]
        return weighted / iops / 1e6 if iops else None

    return FioResult(totals["read"][0], totals["write"][0], lat_ms("read"), lat_ms("write"))


_DIRECTIONS = {"0": "read", "1": "write"}


def parse_fio_iops_log(text: str) -> dict[str, tuple[float, ...]]:
    """IOPS per logged interval and direction from an IOPS log: lines ``msec, value, ddir,
    bs, offset`` (ddir 0 read, 1 write). Intervals of several jobs' logs are not summed here:
    pass one job's log. A malformed line raises ``FioFormatError``."""
    out: dict[str, list[float]] = {"read": [], "write": []}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            value, direction = float(fields[1]), _DIRECTIONS.get(fields[2])
        except (IndexError, ValueError):
            raise FioFormatError(f"not a fio IOPS log (line {number}: {line[:80]!r})") from None
        if direction is not None:
            out[direction].append(value)
    return {k: tuple(v) for k, v in out.items()}

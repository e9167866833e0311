"""iperf3 JSON (``iperf3 -J``) -> one typed result per run, and statistics over runs.

Field meanings follow esnet/iperf src/iperf_api.c: TCP goodput is
``end.sum_received.bits_per_second``; retransmits are counted by the sender
(``end.sum_sent.retransmits``, absent where the sender cannot count them); UDP jitter and
loss are in ``end.sum`` (and ``end.sum_received`` on newer builds).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import IperfFormatError


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 run as the client saw it."""

    protocol: str  # "TCP" or "UDP"
    throughput_gbps: float
    retransmits: int | None = None
    jitter_ms: float | None = None
    lost_percent: float | None = None
    cpu_client_pct: float | None = None
    cpu_server_pct: float | None = None
    streams: int = 1
    reverse: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Spread:
    """Median and range of one value over repeated runs."""

    median: float
    low: float
    high: float
    runs: int

    def describe(self, unit: str) -> str:
        return (f"median {self.median:.3g} {unit} "
                f"(range {self.low:.3g}-{self.high:.3g} over {self.runs} runs)")


def parse_iperf_json(text: str) -> IperfResult:
    """Parse one ``iperf3 -J`` output; an ``error`` key yields a result with ``error`` set."""
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text.strip().splitlines()[0][:200] if text.strip() else "empty output"
        raise IperfFormatError(f"not iperf3 JSON ({exc.msg}): {snippet}") from None
    if not isinstance(data, dict) or "start" not in data:
        raise IperfFormatError("not iperf3 JSON: no 'start' section")
    test = data["start"].get("test_start", {})
    protocol = str(test.get("protocol", "TCP"))
    streams = int(test.get("num_streams", 1) or 1)
    reverse = bool(test.get("reverse", 0))
    if data.get("error"):
        return IperfResult(protocol, 0.0, streams=streams, reverse=reverse,
                           error=str(data["error"]))
    end = data.get("end", {})
    cpu = end.get("cpu_utilization_percent", {})
    cpu_local, cpu_remote = cpu.get("host_total"), cpu.get("remote_total")
    # With -R the client receives: the server is the sender (and counts retransmits).
    cpu_client, cpu_server = cpu_local, cpu_remote
    if protocol == "UDP":
        summary = end.get("sum_received") or end.get("sum", {})
        return IperfResult(
            protocol,
            float(summary.get("bits_per_second", 0.0)) / 1e9,
            jitter_ms=_float(summary.get("jitter_ms")),
            lost_percent=_float(summary.get("lost_percent")),
            cpu_client_pct=_float(cpu_client),
            cpu_server_pct=_float(cpu_server),
            streams=streams,
            reverse=reverse,
        )
    received = end.get("sum_received", {})
    sent = end.get("sum_sent", {})
    retransmits = sent.get("retransmits")
    return IperfResult(
        protocol,
        float(received.get("bits_per_second", 0.0)) / 1e9,
        retransmits=int(retransmits) if retransmits is not None else None,
        cpu_client_pct=_float(cpu_client),
        cpu_server_pct=_float(cpu_server),
        streams=streams,
        reverse=reverse,
    )


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    return Spread(statistics.median(values), min(values), max(values), len(values))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)

"""iperf3 between two ends: a server started on the peer, always stopped, and repeated runs.

The ends only need ``name``, ``address`` and ``run(...)`` (the ``Endpoint`` protocol), so the
same code measures host to host over SSH and pod to pod through the Kubernetes API.
"""

from __future__ import annotations

import random
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from ..analyse.iperf import IperfResult, parse_iperf_json
from ..errors import (
    IperfFormatError,
    MeasurementError,
)
from ..transport.protocol import CommandResult

PORT_RANGE = (20000, 45000)


class Endpoint(Protocol):
    """One end of a measurement."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...

    def run(self, cmd: str, *args: object, timeout: float | None = None,
            sudo: bool | None = None) -> CommandResult: ...



@dataclass(frozen=True)
class IperfParams:
    """One iperf3 test: what to send and for how long."""

    duration: int = 5
    omit: int = 1
    streams: int = 1
    reverse: bool = False
    udp: bool = False
    udp_rate: str = "1G"

    def client_args(self, address: str, port: int) -> list[str]:
        args = ["-c", address, "-p", str(port), "-J", "-t", str(self.duration),
                "-O", str(self.omit)]
        if self.streams > 1:
            args += ["-P", str(self.streams)]
        if self.reverse:
            args.append("-R")
        if self.udp:
            args += ["-u", "-b", self.udp_rate]
        return args


@dataclass(frozen=True)
class IperfServer:
    """A running iperf3 server on ``end``."""

    end: Endpoint
    port: int
    pidfile: str


def _require_iperf3(end: Endpoint) -> None:
    if end.run("command -v iperf3", sudo=False).rc != 0:
        raise MeasurementError(f"{end.name}: iperf3 is not installed (command -v iperf3 failed)")


@contextmanager
def iperf_server(end: Endpoint, *, attempts: int = 5) -> Iterator[IperfServer]:
    """Start ``iperf3 -s`` on a free port of ``end``; stop it on exit, whatever happened."""
    _require_iperf3(end)
    server: IperfServer | None = None
    errors: list[str] = []
    for _ in range(attempts):
        port = random.randint(*PORT_RANGE)
        pidfile = f"/tmp/azl-iperf3-{port}.pid"
        candidate = IperfServer(end, port, pidfile)
        # The daemon writes its pidfile after the parent returned: wait for it, so a slow
        # start is not mistaken for a taken port (and a second server started beside it).
        quoted = shlex.quote(pidfile)
        result = end.run(
            f"iperf3 -s -D -p {port} -I {quoted} --logfile /tmp/azl-iperf3-{port}.log && "
            f"for i in $(seq 50); do [ -s {quoted} ] && break; sleep 0.1; done; "
            f"[ -s {quoted} ] && kill -0 $(cat {quoted})",
            sudo=False, timeout=15,
        )
        if result.rc == 0:
            server = candidate
            break
        stop_server(candidate)
        errors.append(f"port {port}: rc {result.rc} {result.stderr.strip()}")
    if server is None:
        raise MeasurementError(f"{end.name}: cannot start iperf3 server: {'; '.join(errors)}")
    try:
        yield server
    finally:
        stop_server(server)


def stop_server(server: IperfServer) -> None:
    pid = shlex.quote(server.pidfile)
    log = shlex.quote(server.pidfile.replace(".pid", ".log"))
    server.end.run(
        f"if [ -s {pid} ]; then kill $(cat {pid}) 2>/dev/null; fi; "
        f"for i in 1 2 3 4 5 6 7 8 9 10; do [ -s {pid} ] && kill -0 $(cat {pid}) 2>/dev/null "
        f"|| break; sleep 0.2; done; "
        f"[ -s {pid} ] && kill -9 $(cat {pid}) 2>/dev/null; rm -f {pid} {log}; true",
        sudo=False, timeout=15,
    )


# iperf3 (3.12 at least) opens a UDP test with one connect datagram and no retry: when a lossy
# link drops it or its reply, the client gives up after a fixed 30 s with this error.
UDP_SETUP_LOST = "unable to read from stream socket"
UDP_SETUP_ATTEMPTS = 4
UDP_SETUP_WAIT = 30


def run_client(client: Endpoint, server: IperfServer, address: str,
               params: IperfParams) -> IperfResult:
    """One iperf3 run; errors of the measurement itself raise ``MeasurementError``.

    A UDP run whose setup datagram was lost is started again (up to ``UDP_SETUP_ATTEMPTS``
    times): losing it says nothing about the data path, which is what the run measures.
    """
    _require_iperf3(client)
    setups_lost = 0
    while True:
        parsed = _run_once(client, server, address, params)
        if not parsed.error:
            return parsed
        if not (params.udp and parsed.error.startswith(UDP_SETUP_LOST)):
            break
        setups_lost += 1
        if setups_lost == UDP_SETUP_ATTEMPTS:
            break
    suffix = f" (UDP setup lost {setups_lost} times)" if setups_lost else ""
    raise MeasurementError(
        f"{client.name} -> {server.end.name} ({address}:{server.port}): "
        f"iperf3 error: {parsed.error}{suffix}"
    )


def _run_once(client: Endpoint, server: IperfServer, address: str,
              params: IperfParams) -> IperfResult:
    # --connect-timeout makes a blocked port an error in seconds, not a hang; the timeout leaves
    # room for iperf3's own UDP setup wait, so a lost setup reports as such, not as a timeout.
    args = [*params.client_args(address, server.port), "--connect-timeout", "5000"]
    timeout = params.duration + params.omit + UDP_SETUP_WAIT + 15
    result = client.run("iperf3", *args, sudo=False, timeout=timeout)
    try:
        return parse_iperf_json(result.stdout)
    except IperfFormatError as exc:
        raise MeasurementError(
            f"{client.name} -> {server.end.name}:{server.port}: {exc}; stderr: "
            f"{result.stderr.strip()[:300]}"
        ) from None


def measure(client: Endpoint, server_end: Endpoint, params: IperfParams, *,
            repetitions: int = 3, address: str | None = None) -> list[IperfResult]:
    """``repetitions`` runs against one server on ``server_end`` (no retries: noise shows).

    Only a UDP run whose setup was lost is started again (see ``run_client``).
    """
    with iperf_server(server_end) as server:
        return [run_client(client, server, address or server_end.address, params)
                for _ in range(repetitions)]


@dataclass(frozen=True)
class PairedRuns:
    """Repetitions of a measurement, each right after a run of its reference on the client
    (``reference[i]`` belongs to ``measured[i]``): a ratio of the two moves with the link,
    not with what the machine did between repetitions."""

    measured: list[IperfResult]
    reference: list[IperfResult]

    def ratios(self) -> list[float]:
        """``measured / reference`` per repetition (Gbit/s over Gbit/s)."""
        return [m.throughput_gbps / r.throughput_gbps
                for m, r in zip(self.measured, self.reference, strict=True)
                if r.throughput_gbps > 0]


def measure_with_loopback(client: Endpoint, server_end: Endpoint, params: IperfParams,
                          reference: IperfParams, *, repetitions: int = 3) -> PairedRuns:
    """``repetitions`` runs to ``server_end``, each preceded by one run of ``reference`` from
    the client to itself (127.0.0.1). Both servers stay up for all repetitions."""
    measured: list[IperfResult] = []
    loop: list[IperfResult] = []
    with iperf_server(server_end) as server, iperf_server(client) as own:
        for _ in range(repetitions):
            loop.append(run_client(client, own, "127.0.0.1", reference))
            measured.append(run_client(client, server, server_end.address, params))
    return PairedRuns(measured, loop)

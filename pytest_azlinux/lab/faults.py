"""Faults on a lab host's link: down, loss, delay, rate (tc), and sshd stopped.

Link conditions are applied in both directions: on the machine's end of the veth (traffic
to the host) and on ``eth0`` inside the host (traffic from it). ``netem`` is used when the
kernel has it. Without it (CONFIG_NET_SCH_NETEM unset), ``rate`` uses ``tbf`` and ``loss`` a
classic-BPF classifier on ``clsact`` egress that drops packets at random
(``ld rand`` < p * 2^32 -> TC_ACT_SHOT); ``delay`` then has no substitute and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .errors import LabError
from .state import LabHost
from .system import run, try_run

_SKF_AD_RANDOM = (1 << 32) - 0x1000 + 56  # SKF_AD_OFF + SKF_AD_RANDOM as u32


@dataclass(frozen=True)
class LinkFault:
    loss: float | None = None  # percent
    delay: float | None = None  # milliseconds
    rate: float | None = None  # Mbit/s

    def __post_init__(self) -> None:
        if self.loss is not None and not 0 <= self.loss <= 100:
            raise LabError(f"--loss {self.loss}: must be a percentage 0..100")
        if self.delay is not None and not 0 <= self.delay <= 60_000:
            raise LabError(f"--delay {self.delay}: must be 0..60000 ms")
        if self.rate is not None and not 0 < self.rate <= 100_000:
            raise LabError(f"--rate {self.rate}: must be > 0 and <= 100000 Mbit/s")

    @property
    def empty(self) -> bool:
        return self.loss is None and self.delay is None and self.rate is None


def loss_bytecode(percent: float) -> str:
    """tc ``bytecode`` of a cBPF direct-action program dropping ``percent`` % of packets."""
    threshold = min(int(percent / 100 * (1 << 32)), (1 << 32) - 1)
    prog = [
        (0x20, 0, 0, _SKF_AD_RANDOM),  # ld rand
        (0x35, 0, 1, threshold),  # jge #threshold -> pass, else drop
        (0x06, 0, 0, 0),  # ret TC_ACT_OK
        (0x06, 0, 0, 2),  # ret TC_ACT_SHOT
    ]
    return ",".join([str(len(prog)), *(f"{c} {t} {f} {k}" for c, t, f, k in prog)])


def _tc(netns: str | None, *args: str) -> list[str]:
    return [*(["ip", "netns", "exec", netns] if netns else []), "tc", *args]


@cache
def has_netem() -> bool:
    """Whether the kernel offers the netem qdisc (probed on a throwaway veth pair)."""
    a, b = "azl-netem-a", "azl-netem-b"
    if not try_run(["ip", "link", "add", a, "type", "veth", "peer", "name", b]):
        return False
    try:
        return try_run(["tc", "qdisc", "add", "dev", a, "root", "netem", "delay", "1ms"])
    finally:
        try_run(["ip", "link", "del", a])


def clear_link(host: LabHost) -> None:
    for netns, dev in ((None, host.veth), (host.netns, "eth0")):
        try_run(_tc(netns, "qdisc", "del", "dev", dev, "root"))
        try_run(_tc(netns, "qdisc", "del", "dev", dev, "clsact"))


def apply_link(host: LabHost, fault: LinkFault) -> None:
    """Replace the host's link conditions with ``fault`` (both directions)."""
    netem = has_netem()
    if fault.delay is not None and not netem:
        raise LabError(
            "--delay needs the netem qdisc, which this kernel lacks (CONFIG_NET_SCH_NETEM); "
            "--loss and --rate work without it"
        )
    clear_link(host)
    if fault.empty:
        return
    for netns, dev in ((None, host.veth), (host.netns, "eth0")):
        if netem:
            args = []
            if fault.delay is not None:
                args += ["delay", f"{fault.delay:g}ms"]
            if fault.loss is not None:
                args += ["loss", f"{fault.loss:g}%"]
            if fault.rate is not None:
                args += ["rate", f"{fault.rate:g}mbit"]
            run(_tc(netns, "qdisc", "replace", "dev", dev, "root", "netem", *args))
            continue
        if fault.rate is not None:
            rate_bytes = fault.rate * 1e6 / 8
            burst = max(16_000, int(rate_bytes / 100))  # >= MTU and >= 10 ms of traffic
            run(_tc(netns, "qdisc", "replace", "dev", dev, "root", "tbf",
                    "rate", f"{fault.rate:g}mbit", "burst", str(burst), "latency", "50ms"))
        if fault.loss is not None:
            run(_tc(netns, "qdisc", "replace", "dev", dev, "clsact"))
            run(_tc(netns, "filter", "add", "dev", dev, "egress", "bpf", "da",
                    "bytecode", loss_bytecode(fault.loss)))


def set_link_up(host: LabHost, up: bool) -> None:
    run(["ip", "link", "set", host.veth, "up" if up else "down"])

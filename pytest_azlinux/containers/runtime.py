"""Which container runtimes a host has, and which one the escape probe can use.

The probe runs through runc: the OCI runtime under containerd, Docker and CRI-O, able to
start a container from a bundle without pulling an image. ctr, crictl, docker and crun are
detected and reported with the reason they are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..host import Host
from ..reads import Read

RUNTIMES = ("runc", "crun", "ctr", "crictl", "docker")
_DETECT = r"""
for t in runc crun ctr crictl docker; do
    p=$(command -v "$t" 2>/dev/null) || continue
    case $t in
        runc|crun) v=$(timeout 5 "$p" --version 2>&1 | head -n 1) ;;
        ctr) v=$(timeout 5 "$p" version 2>&1 | sed -n 's/^ *Version: *//p' | tail -n 1) ;;
        crictl) v=$(timeout 5 "$p" version 2>&1 | sed -n 's/^RuntimeVersion: *//p') ;;
        docker) v=$(timeout 5 "$p" version --format '{{.Server.Version}}' 2>/dev/null) ;;
    esac
    echo "$t|$p|$?|$v"
done
"""


@dataclass(frozen=True)
class RuntimeInfo:
    """One runtime found on a host."""

    name: str
    path: str
    version: str
    usable: bool
    reason: str = ""

    def line(self) -> str:
        state = "used" if self.usable else f"not used: {self.reason}"
        return f"{self.name} ({self.path}, {self.version or 'version unknown'}): {state}"


def parse_detection(text: str) -> list[RuntimeInfo]:
    """Runtimes from the detection script's output (``name|path|rc|version`` lines)."""
    found: list[RuntimeInfo] = []
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) != 4 or parts[0] not in RUNTIMES:
            continue
        name, path, rc, version = parts
        answered = rc == "0" and bool(version.strip())
        version = version.strip()
        if name == "runc":
            usable = answered
            reason = "" if usable else f"`runc --version` failed: {version or 'no output'}"
            version = version.removeprefix("runc version ").strip()
        elif name == "crun":
            usable, reason = False, "crun refuses hybrid cgroup v1/v2 hosts; the probe uses runc"
        elif not answered:
            usable, reason = False, f"{name} is installed but its daemon does not answer"
        else:
            usable, reason = False, (
                f"{name} answers, but starting a container through it needs an image; "
                "the probe runs through runc, the OCI runtime underneath"
            )
        found.append(RuntimeInfo(name, path, version, usable, reason))
    return found


def detect_runtimes(host: Host) -> list[RuntimeInfo]:
    """The container runtimes installed on ``host`` (as root: /usr/sbin is on its PATH)."""
    return parse_detection(host.reads.fresh(Read(_DETECT, sudo=True), timeout=60).stdout)


def usable_runc(runtimes: list[RuntimeInfo]) -> RuntimeInfo | None:
    return next((r for r in runtimes if r.name == "runc" and r.usable), None)


def skip_reason(host_name: str, runtimes: list[RuntimeInfo]) -> str:
    """Why no container can be started on a host (for pytest.skip)."""
    if not runtimes:
        return f"{host_name}: no container runtime found (looked for {', '.join(RUNTIMES)})"
    return f"{host_name}: no usable runc; found " + "; ".join(r.line() for r in runtimes)

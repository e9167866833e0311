"""Container processes must run in a confined container domain (container_t), not spc_t.

``PS_COMMAND`` lists every process with its parent and SELinux label; ``container_processes``
(pure) finds the processes below a container shim (containerd-shim*, conmon) and
``wrong_domains`` those whose type is not an allowed container type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..analyse.avc import Context
from ..host import Host
from ..reads import Read

PS_COMMAND = "ps -e -o pid=,ppid=,label=,comm="
SHIMS = ("containerd-shim", "conmon")
RUNTIMES = ("runc", "crun", "containerd-shim")  # transient runtime processes: not containers
DEFAULT_ALLOWED = ("container_t", "container_init_t")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    label: str
    comm: str

    @property
    def type(self) -> str:
        return Context.parse(self.label).type


def parse_ps(text: str) -> list[Proc]:
    out = []
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        out.append(Proc(int(parts[0]), int(parts[1]), parts[2], parts[3].strip()))
    return out


def _is_shim(proc: Proc) -> bool:
    return proc.comm.startswith(SHIMS)


def container_processes(procs: Iterable[Proc]) -> list[Proc]:
    """Descendants of container shims (shims and runtime helpers themselves excluded)."""
    procs = list(procs)
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    out: list[Proc] = []
    stack = [p for p in procs if _is_shim(p)]
    seen: set[int] = set()
    while stack:
        parent = stack.pop()
        for child in children.get(parent.pid, []):
            if child.pid in seen or _is_shim(child):
                continue
            seen.add(child.pid)
            if not child.comm.startswith(RUNTIMES):
                out.append(child)
            stack.append(child)
    return sorted(out, key=lambda p: p.pid)


def wrong_domains(procs: Sequence[Proc], allowed: Sequence[str] = DEFAULT_ALLOWED) -> list[Proc]:
    return [p for p in procs if p.type not in allowed]


def read_processes(host: Host) -> list[Proc]:
    return parse_ps(host.reads.fresh(Read(PS_COMMAND), check=True).stdout)

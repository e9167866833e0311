"""Host reads: the one way evidence is gathered from a host.

A source of evidence (image facts, the posture reads, SELinux mode, the hardening read, a
sentinel check) declares what it reads as ``Read`` values (a read-only script and whether it
needs root) and parses the results itself; it never calls ``host.run``. Commands with side
effects (starting iperf3, formatting a disk) do not go here: they still call ``host.run``.

- ``HostReads`` (``host.reads``, one per ``Host``): ``fetch`` runs many reads in one round
  trip per privilege and keeps the results for the run; ``get`` returns a kept result, or
  runs the read alone and keeps it; ``fresh`` runs a read whose answer changes from one call
  to the next (a sentinel check) and keeps nothing.
- ``batch_script``/``parse_batch``: the one framing of a batch (stdout, stderr and exit code
  of every read kept apart by byte counts).
- ``split_sections``: the one splitter for a read whose single script prints several
  ``==> NAME [ARGS]`` sections (image facts, the hardening read, a sentinel check).
- ``ReadSource``: what a suite reads on every host it runs on; the session fetches the
  declared sources while it prepares the hosts, concurrently (``AzlSession.read_ahead``).
- ``ReplaysReads``: a transport that answers reads from a recording of the machine instead
  of running them (``kind: recorded``); a read the recording does not hold raises
  ``NotRecorded`` naming it (``Read.label``, or the command).

A new evidence source is a declaration: its ``Read`` constants (or a function of the host's
facts that returns them) next to its pure parser, a function that gets them with
``host.reads.get``/``get_all`` and parses, and, if a suite needs it on every host, a
``ReadSource`` for the session (see ``posture/fixtures.py``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .command import build_command
from .errors import CommandFailed, InfraError, NotRecorded
from .transport.protocol import CommandResult

if TYPE_CHECKING:
    from .host import Host


@dataclass(frozen=True)
class Read:
    """One read-only command (arguments shell-quoted) and whether it runs as root
    (``None``: as the host's target says). ``label`` says in words what it reads (for a
    recording that does not hold it); it is not part of the read's identity."""

    script: str
    sudo: bool | None = None
    label: str = field(default="", compare=False)

    @classmethod
    def of(cls, cmd: str, *args: object, sudo: bool | None = None) -> Read:
        return cls(build_command(cmd, args), sudo)

    @classmethod
    def file(cls, path: str, sudo: bool | None = None) -> Read:
        """The content of the file ``path`` (exit non-zero, no output: missing or unreadable);
        the one way a file is read, so a recording can answer it by path."""
        return cls(build_command("cat -- %s 2>/dev/null", (path,)), sudo, f"the file {path}")

    @property
    def words(self) -> str:
        """What the read reads, in words (its label, else its command's first line)."""
        if self.label:
            return self.label
        first = self.script.strip().splitlines()[0] if self.script.strip() else ""
        return f"the output of `{first[:70]}{'...' if len(first) > 70 else ''}`"


# What a suite wants read on a host while the session prepares it (empty: nothing there).
ReadSource = Callable[["Host"], Iterable[Read]]


@runtime_checkable
class ReplaysReads(Protocol):
    """A transport whose machine is a recording: reads are answered from it, not run."""

    def answer(self, read: Read) -> CommandResult | None:
        """The recorded result of ``read``; None: the recording does not hold it."""
        ...

    def not_recorded(self, what: Read | str) -> NotRecorded:
        """The error for evidence the recording does not hold (a read, or in words)."""
        ...


# -- the framing ---------------------------------------------------------------------------


def batch_script(scripts: Sequence[str]) -> str:
    """One POSIX sh script that runs ``scripts`` and prints, in this order: a line
    ``==>azl-rc RC0 RC1 ...``, the byte counts of every read's stdout and stderr (one ``wc -c``
    line each), a line ``==>azl-data``, then every read's stdout and stderr back to back.

    Each read writes to a private temporary directory on the host (removed by the same
    command). A handful of processes per batch, not several per read: on a pool the batch
    runs once on every node, and the framing should cost next to nothing beside the reads."""
    lines = ['d=$(mktemp -d) || exit 97', "trap 'rm -rf \"$d\"' EXIT"]
    for i, script in enumerate(scripts):
        lines.append(f'( {script}\n) </dev/null >"$d/{i}.o" 2>"$d/{i}.e"; azl_r{i}=$?')
    n = len(scripts)
    files = " ".join(f"{i}.o {i}.e" for i in range(n))
    lines.append(f"printf '==>azl-rc{' %s' * n}\\n' "
                 + " ".join(f'"$azl_r{i}"' for i in range(n)))
    lines.append('cd "$d" || exit 97')
    lines.append(f"wc -c {files}")
    lines.append("printf '==>azl-data\\n'")
    lines.append(f"cat {files}")
    return "\n".join(lines) + "\n"


def parse_batch(output: bytes, scripts: Sequence[str], duration: float) -> list[CommandResult]:
    """The results of ``batch_script(scripts)`` from its standard output."""
    n = len(scripts)
    cut = InfraError(f"batch of {n} reads: output cut short")
    head, sep, data = output.partition(b"\n==>azl-data\n")
    lines = head.split(b"\n")
    if not sep or not lines[0].startswith(b"==>azl-rc") or len(lines) < 1 + 2 * n:
        raise cut
    try:
        rcs = [int(x) for x in lines[0].split()[1:]]
        sizes = [int(line.split()[0]) for line in lines[1 : 1 + 2 * n]]
    except (ValueError, IndexError):
        raise cut from None
    if len(rcs) != n or sum(sizes) > len(data):
        raise cut
    results: list[CommandResult] = []
    pos = 0
    for i, script in enumerate(scripts):
        n_out, n_err = sizes[2 * i], sizes[2 * i + 1]
        out = data[pos : pos + n_out]
        err = data[pos + n_out : pos + n_out + n_err]
        pos += n_out + n_err
        results.append(CommandResult(script, rcs[i], out, err, duration / n))
    return results


# -- sections of one read ------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One ``==> NAME ARGS`` section: the words after the name, and the lines below it."""

    args: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip()


def split_sections(text: str, names: Collection[str] | None = None) -> dict[str, Section]:
    """Split ``==> NAME [ARGS]`` headed output into its sections (a repeated name: the last).

    Without ``names`` every line that starts with ``==> `` starts a section. With ``names``
    only those do, and a value printed without its newline and so glued to the next marker
    (``1==> getenforce``, as /sys/fs/selinux/enforce prints) stays the previous section's
    last line.
    """
    marker = (
        re.compile(r"^==> (\S*) ?(.*)$") if names is None else
        re.compile(r"^(.*?)==> (" + "|".join(map(re.escape, names)) + r")(?: (.*))?$")
    )
    built: dict[str, tuple[str, list[str]]] = {}
    body: list[str] | None = None
    for line in text.splitlines():
        m = marker.match(line if names is None else line.rstrip())
        if m is None:
            if body is not None:
                body.append(line)
            continue
        if names is None:
            name, args = m.group(1), m.group(2)
        else:
            if m.group(1) and body is not None:
                body.append(m.group(1))
            name, args = m.group(2), m.group(3) or ""
        body = []
        built[name] = (args.strip(), body)
    return {name: Section(args, tuple(lines)) for name, (args, lines) in built.items()}


# -- one host's reads ----------------------------------------------------------------------


class HostReads:
    """What was read from one host in this run (``host.reads``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.results: dict[Read, CommandResult] = {}
        self._lock = threading.Lock()
        transport = host.transport
        self.replay = transport if isinstance(transport, ReplaysReads) else None

    @property
    def replayed(self) -> bool:
        """Whether the host is a recording (reads answered from it, nothing run)."""
        return self.replay is not None

    def not_recorded(self, what: str) -> NotRecorded:
        """The error for evidence ``what`` (in words) that the host's recording lacks."""
        if self.replay is not None:
            return self.replay.not_recorded(what)
        return NotRecorded(f"{self.host.name}: the host does not show {what}")

    def _answer(self, read: Read) -> CommandResult:
        assert self.replay is not None
        found = self.replay.answer(read)
        if found is None:
            raise self.replay.not_recorded(read)
        return found

    def fetch(self, reads: Iterable[Read]) -> None:
        """Run the reads not fetched yet: one round trip for the user's, one for root's. On
        a recording, keep the answers it holds (the others raise when a test gets them)."""
        with self._lock:
            todo = [r for r in dict.fromkeys(reads) if r not in self.results]
            if self.replay is not None:
                for r in todo:
                    found = self.replay.answer(r)
                    if found is not None:
                        self.results[r] = found
                return
            for sudo in (False, True):
                batch = [r for r in todo if self._as_root(r) is sudo]
                if not batch:
                    continue
                scripts = [r.script for r in batch]
                result = self.host.run(batch_script(scripts), sudo=sudo)
                if result.rc == 97:
                    raise InfraError(f"{self.host.name}: cannot make a temporary directory "
                                     f"for the batched reads: {result.stderr.strip()}")
                parsed = parse_batch(result.stdout_bytes, scripts, result.duration)
                self.results.update(zip(batch, parsed, strict=True))

    def _as_root(self, read: Read) -> bool:
        if getattr(self.host.transport, "always_root", False):
            return True  # every command runs as root there: one batch, one round trip
        return self.host.spec.sudo if read.sudo is None else read.sudo

    def get(self, read: Read) -> CommandResult:
        """The read's result: fetched with the others, or run now and kept."""
        with self._lock:
            found = self.results.get(read)
        if found is not None:
            return found
        result = self.fresh(read)
        with self._lock:
            return self.results.setdefault(read, result)

    def get_all(self, reads: Sequence[Read]) -> list[CommandResult]:
        """The results of ``reads``, those not kept yet fetched together (one round trip)."""
        with self._lock:
            missing = [r for r in reads if r not in self.results]
        if len(missing) > 1:
            self.fetch(missing)
        return [self.get(r) for r in reads]

    def fresh(
        self, read: Read, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        """Run ``read`` now and keep nothing (its answer changes between calls); ``check``:
        a non-zero exit raises ``CommandFailed``, as ``host.run`` does. A recording answers
        what it holds (the same answer each time)."""
        if self.replay is not None:
            found = self._answer(read)
            if check and found.rc != 0:
                raise CommandFailed(self.host.name, read.script, found.rc, found.stderr)
            return found
        return self.host.run(read.script, sudo=read.sudo, timeout=timeout, check=check)

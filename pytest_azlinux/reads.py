"""Declared reads: what read-only checks fetch from a host, in one round trip, once per run.

A check declares each command it reads as a ``Read`` (a read-only script and whether it
needs root). ``ReadSet.fetch`` runs every declared read of a host in one command per
privilege (one for the user, one under sudo) and keeps the results for the run, so the
checks of a suite become pure functions of what was read. A read that was not fetched runs
on its own the first time and is kept too. Commands with side effects never go here: a
test that must run its own command still calls ``host.run``.

The batch writes each read's output to a private temporary directory on the host (removed
by the same command) so stdout, stderr and the exit code of every read stay apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .errors import InfraError
from .host import Host, build_command
from .transport.protocol import CommandResult

# Warm-ups a module of read-only checks registers on import (so only suites that were
# collected add theirs): the session runs them for every host it prepares, in the same
# concurrent pass as the connect, so a pool's reads are not fetched one host at a time.
_WARMUPS: list[Callable[[Host], None]] = []


@dataclass(frozen=True)
class Read:
    """One read-only command (arguments shell-quoted) and whether it runs as root
    (``None``: as the host's target says)."""

    script: str
    sudo: bool | None = None

    @classmethod
    def of(cls, cmd: str, *args: object, sudo: bool | None = None) -> Read:
        return cls(build_command(cmd, args), sudo)


def batch_script(scripts: Sequence[str]) -> str:
    """One POSIX sh script that runs ``scripts`` and prints, in this order: a line
    ``==>azl-rc RC0 RC1 ...``, the byte counts of every read's stdout and stderr (one ``wc -c``
    line each), a line ``==>azl-data``, then every read's stdout and stderr back to back.

    A handful of processes per batch, not several per read: on a pool the batch runs once on
    every node, and the framing should cost next to nothing beside the reads themselves."""
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


@dataclass
class ReadSet:
    """The reads of one host for this run (kept on the ``Host``: ``host.reads``)."""

    host: Host
    results: dict[Read, CommandResult] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self, reads: Iterable[Read]) -> None:
        """Run the reads not fetched yet: one round trip for the user's, one for root's."""
        with self._lock:
            todo = [r for r in dict.fromkeys(reads) if r not in self.results]
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
        result = self.host.run(read.script, sudo=read.sudo)
        with self._lock:
            return self.results.setdefault(read, result)


def reads_of(host: Host) -> ReadSet:
    """The host's ``ReadSet`` (made on first use)."""
    found = getattr(host, "reads", None)
    if isinstance(found, ReadSet):
        return found
    made = ReadSet(host)
    host.reads = made
    return made


def warm_on_prepare(warmup: Callable[[Host], None]) -> None:
    """Run ``warmup(host)`` for every host the session prepares (once per callable)."""
    if warmup not in _WARMUPS:
        _WARMUPS.append(warmup)


def warm(host: Host) -> None:
    """Run the registered warm-ups on ``host``. A failure is left to the test that needs the
    read: it runs again there and is reported in that test."""
    for warmup in list(_WARMUPS):
        try:
            warmup(host)
        except InfraError:
            return

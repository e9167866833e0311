"""Host: run commands and read or write files on one machine, whatever the transport."""

from __future__ import annotations

import dataclasses
import re
import shlex
import threading
from collections.abc import Mapping

from .command import build_command
from .errors import (
    CommandFailed,
    CommandRefused,
    CommandTimeout,
    ConnectionLost,
    HostUnreachable,
    InfraError,
)
from .facts import FACTS, ImageFacts, parse_facts
from .reads import HostReads
from .redaction import redact
from .targets import HostSpec
from .transport.protocol import CommandResult, Transport

__all__ = ["CommandResult", "Host", "build_command"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _exports(env: Mapping[str, str]) -> str:
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise CommandRefused(f"env: {name!r} is not a variable name")
        if "\0" in value:
            raise CommandRefused(f"env: the value of {name} contains a NUL byte")
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


class Host:
    """One machine of a target.

    ``run`` never raises for a non-zero exit unless ``check=True`` (``CommandFailed``); it
    raises ``InfraError`` subclasses when the machine cannot be reached or a command times
    out (the plugin reports those as ERROR).
    """

    def __init__(self, spec: HostSpec, transport: Transport, default_timeout: float = 60.0) -> None:
        self.spec = spec
        self.transport = transport
        self.default_timeout = default_timeout
        self._lock = threading.Lock()
        self._facts: ImageFacts | None = None
        self._facts_lock = threading.Lock()
        self.reads = HostReads(self)  # what was read from this host in this run

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        return self.spec.address

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.transport.description}>"

    def run(
        self,
        cmd: str,
        *args: object,
        timeout: float | None = None,
        sudo: bool | None = None,
        check: bool = False,
        env: Mapping[str, str] | None = None,
        stdin: bytes | str | None = None,
    ) -> CommandResult:
        """Run ``cmd`` (args shell-quoted) with ``sh`` on the host.

        Errors show the command without ``env`` values and with the host's secrets
        (passwords of its target) replaced by ``***``.
        """
        try:
            command = build_command(cmd, args)
            script = f"export {_exports(env)}; {command}" if env else command
        except CommandRefused as exc:
            raise CommandRefused(f"{self.name}: {exc}") from None
        data = stdin.encode() if isinstance(stdin, str) else stdin
        as_root = self.spec.sudo if sudo is None else sudo
        limit = self.default_timeout if timeout is None else timeout
        try:
            with self._lock:  # one shell per host: commands of one host are serialised
                result = self.transport.run(script, timeout=limit, stdin=data, sudo=as_root)
        except CommandTimeout:
            raise CommandTimeout(self.name, self._shown(command), limit) from None
        except ConnectionLost as exc:
            raise ConnectionLost(self._shown(str(exc).replace(script, command))) from None
        except HostUnreachable as exc:
            cause = self._shown(exc.cause.replace(script, command))
            raise type(exc)(exc.host, exc.address, cause) from None
        if env:  # the values stay out of what is shown of the command
            result = dataclasses.replace(result, command=command)
        if check and result.rc != 0:
            raise CommandFailed(self.name, self._shown(command), result.rc,
                                self._shown(result.stderr))
        return result

    def _shown(self, text: str) -> str:
        return redact(text, self.spec.secrets())

    def check_output(self, cmd: str, *args: object, **kwargs: object) -> str:
        """stdout of a command that must succeed, without the trailing newline."""
        result = self.run(cmd, *args, check=True, **kwargs)  # type: ignore[arg-type]
        return result.stdout.rstrip("\n")

    def read_bytes(self, path: str, *, sudo: bool | None = None) -> bytes:
        return self.run("cat --", path, sudo=sudo, check=True).stdout_bytes

    def read_text(self, path: str, *, sudo: bool | None = None) -> str:
        return self.read_bytes(path, sudo=sudo).decode("utf-8", "replace")

    def write(
        self, path: str, data: bytes | str, *, mode: int | None = None, sudo: bool | None = None
    ) -> None:
        cmd = build_command("cat > %s", (path,))
        if mode is not None:
            cmd += f" && chmod {mode:o} " + shlex.quote(path)
        self.run(cmd, stdin=data, sudo=sudo, check=True)

    def exists(self, path: str, *, sudo: bool | None = None) -> bool:
        return self.run("test -e", path, sudo=sudo).rc == 0

    def which(self, command: str) -> str | None:
        result = self.run("command -v", command)
        return result.stdout.strip() or None if result.rc == 0 else None

    @property
    def facts(self) -> ImageFacts:
        """Identity of the image this host runs (read once).

        Cached under this host's own lock, not with ``functools.cached_property``: on Python
        3.11 that holds one lock for every instance of the class while it computes, so the
        session's workers preparing a pool read their hosts' facts one host at a time."""
        facts = self._facts
        if facts is None:
            with self._facts_lock:
                facts = self._facts
                if facts is None:
                    facts = self._facts = self._read_facts()
        return facts

    def _read_facts(self) -> ImageFacts:
        result = self.reads.get(FACTS)
        if "==> uname" not in result.stdout:
            said = result.stderr.strip() or "no error output"
            raise InfraError(f"{self.name}: cannot read image facts (exit code {result.rc}): "
                             f"{said}")
        return parse_facts(result.stdout).with_node_labels(self.spec.labels)

    def close(self) -> None:
        self.transport.close()

"""A persistent remote ``sh`` that runs one command after another.

Opening an SSH channel (or an exec stream) per command costs tens of milliseconds; a shell
kept open answers in well under one. The shell first re-executes itself with a tag in its
environment (``AZL_SHELL=<tag>``, inherited by everything it starts, so whatever it started
can be found and ended later) and makes a private directory; it reports ``<tag> R <pid>
<session> <capture> <dir>``. Each command is then framed by a random token ``T``:

    azl_n=$((azl_n+1)); ( eval '<script>' ) </dev/null >"$azl_d/$azl_n.o" 2>"$azl_d/$azl_n.e" &
    azl_fin T      # prints "T S <pid>", waits, prints the .o file, "T O", the .e file, "T E <rc>"

The command writes into files of its own, not into the channel: a process it leaves behind
cannot mix into later output, and the markers follow the output on the one stream. ``eval``
in a subshell costs a fork, no exec, and has no argument-length limit. Standard input
travels base64-encoded in a here-document piped into the command.

A simple command (``cat -- /etc/os-release``: literal words, a program or a builtin that
changes nothing, no stdin) needs no subshell: it cannot change the shell's state, so it
runs in the foreground of the shell itself and saves the fork (a third of a ``true``'s
round trip, a quarter of a ``cat``'s):

    azl_n=$((azl_n+1)); echo T S 0; cat -- /etc/os-release </dev/null >... 2>...; azl_end T $?

"S 0" says the command runs as a child of the shell; a timeout kills the shell's children.

Where SELinux is enabled the command writes into pipes instead, each drained by a ``cat``
into the file (``capture`` "pipes"). A program that runs in a domain of its own inherits
the command's output: policies let domains use a pipe of the caller's, but not a file in a
temporary or home directory (``kmod_t`` on ``user_tmp_t``, ``auditctl_t`` on
``user_home_t``). With files, an enforcing host would fail those programs' writes and a
permissive one would log denials the read itself caused. The price: a process the command
leaves behind with its output open holds the command until it ends (as ``ssh host cmd``
does).

Output that could not be kept is no result. After each command ``azl_end`` checks that the
command's files exist and that a byte can still be written beside them (builtins only; a
``cat`` on the failing path for the kernel's cause) and adds the cause to the end marker:
``T E <rc> <cause>``; the session then raises ``OutputLost`` instead of returning.

``close()`` ends what the shell started: it kills a running command, then the shell becomes
a sweeper (its own tag removed) that kills every process of the shell's session (sshd makes
one per channel; also what ``sudo`` or ``env -i`` started, which lose the tag), every process
carrying the tag and everything below those, and removes the directory. When that cannot be
done in-band (the connection is gone), the transport runs ``sweep_script`` through a new
connection.
"""

from __future__ import annotations

import selectors
import shlex
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..errors import CommandRefused, CommandTimeout, ConnectionLost, OutputLost
from ..redaction import redact
from .protocol import CommandResult
from .shell_scripts import (
    CANDIDATE_DIRS,
    TAG_VARIABLE,
    frame,
    kill_script,
    new_token,
    simple_command,
    sweep_script,
)

__all__ = ["SELINUX_ENFORCE", "TAG_VARIABLE", "ShellSession", "Stream", "kill_script",
           "simple_command", "sweep_script"]

KILL_GRACE = 5.0  # after the kill, how long the markers may take to come back
PROBE_AFTER = 5.0  # silence (s) while a command runs before the connection is probed
START_TIMEOUT = 30.0  # the shell's start: re-exec, private directory
_MIN_FREE_KIB = 512 * 1024  # room for command output in the private directory
# Present where SELinux is enabled: command output then travels through pipes (see above).
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"

# Sent once, after the start: where the files go, and the end of every frame.
# azl_end writes both end markers at once when there is no output: one packet, one wakeup.
# It forgets the paths the shell remembered for programs (hash -r): a program run in the
# shell itself would otherwise stay found where it was, for later commands too.
_SETUP = """azl_d={dir}; azl_n=0
trap 'rm -rf "$azl_d"' EXIT
azl_fin() {{
  azl_p=$!; printf '%s S %s\\n' "$1" "$azl_p"; wait "$azl_p"; azl_end "$1" $?
}}
azl_end() {{
  hash -r 2>/dev/null
  azl_x=
  if [ ! -e "$azl_d/$azl_n.o" ] || [ ! -e "$azl_d/$azl_n.e" ] ||
     ! {{ printf x >"$azl_d/p"; }} 2>/dev/null; then
    azl_x=$(printf x | cat 2>&1 >"$azl_d/p" | tr "\\n" " "); azl_x=" ${{azl_x#cat: }}"
    azl_x=${{azl_x% }}
    [ -n "${{azl_x# }}" ] || azl_x=" a file in it could not be created or written"
  fi
  : >"$azl_d/p" 2>/dev/null
  if [ -s "$azl_d/$azl_n.o" ] || [ -s "$azl_d/$azl_n.e" ]; then
    if [ -s "$azl_d/$azl_n.o" ]; then cat "$azl_d/$azl_n.o"; : >"$azl_d/$azl_n.o"; fi
    printf '%s O\\n' "$1"
    if [ -s "$azl_d/$azl_n.e" ]; then cat "$azl_d/$azl_n.e"; : >"$azl_d/$azl_n.e"; fi
    printf '%s E %s%s\\n' "$1" "$2" "$azl_x"
  else printf '%s O\\n%s E %s%s\\n' "$1" "$1" "$2" "$azl_x"; fi
  case $azl_n in *00) rm -f "$azl_d"/*.[oer];; esac
}}
"""


class Stream(Protocol):
    """A bidirectional byte stream with separate stdout and stderr (an SSH channel...)."""

    def send(self, data: bytes) -> None: ...

    def fileno(self) -> int: ...

    def read_available(self) -> tuple[bytes, bytes, bool]:
        """Return (stdout, stderr, eof) without blocking."""
        ...

    def close(self) -> None: ...


Killer = Callable[[str], None]
Liveness = Callable[[], bool]


class ShellSession:
    """Runs framed commands through one long-lived shell on ``stream``.

    ``killer(script)`` runs a ``kill_script`` out of band (the command's process tree);
    ``alive()``, if given, answers whether the connection still carries traffic (called
    after ``PROBE_AFTER`` s of silence while a command runs); ``secrets`` are replaced by
    ``***`` in the errors this session raises; ``capture`` ("files" or "pipes") overrides
    the host's choice.
    """

    def __init__(
        self, stream: Stream, host: str, killer: Killer, *,
        alive: Liveness | None = None, secrets: Sequence[str] = (),
        capture: str | None = None,
    ) -> None:
        self._stream = stream
        self._host = host
        self._killer = killer
        self._alive = alive
        self._secrets = tuple(secrets)
        self.tag = "azl" + new_token()
        self.pid: int | None = None  # the shell's, once started
        self.workdir: str | None = None  # its private directory, once started
        # the session its commands run in, where the shell has one of its own (see start)
        self.session: int | None = None
        # "files" or "pipes" (see the module's docstring): the host's choice unless given
        self.capture: str | None = capture
        self.broken = False
        # False until the remote shell reported the command's pid. A connection that drops
        # before that (typically one the server closed while idle) is taken as not having
        # started the command, which is then sent once more on a new connection.
        self.run_started = False
        self._running: int | None = None  # pid of the command in flight, 0: in the shell
        self._busy = False  # a command was sent and its end marker not yet read
        self._pending = bytearray()  # stdout read past the last end marker
        self._stray_err = bytearray()  # the shell's own stderr, between commands
        self._setup = ""
        self._sel = selectors.DefaultSelector()
        self._sel.register(stream.fileno(), selectors.EVENT_READ)

    @property
    def started(self) -> bool:
        return self.pid is not None

    @property
    def usable(self) -> bool:
        """Neither broken nor left in the middle of a command (an interrupted ``run``)."""
        return not self.broken and not self._busy

    # -- start ------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Tag the shell and make its private directory (done by the first ``run``)."""
        if self.started:
            return
        tag = self.tag
        # The files go to tmpfs if it has room: a file created per command costs ~1 ms on
        # a journalling disk under load, ~10 us on tmpfs.
        # First a directory with room; where none has it (a small tmpfs on a read-only
        # image), any writable one.
        # A directory counts once a file in it takes a byte: a full filesystem still makes
        # directories (they need an inode, not a block), then every command's output is lost.
        # Why none would do goes to stderr, one line.
        inner = (
            f'azl_e=; for azl_m in {_MIN_FREE_KIB} 0; do '
            f'for azl_t in {CANDIDATE_DIRS}; do '
            '[ -n "$azl_t" ] && [ -d "$azl_t" ] || continue; '
            'set -- $(df -Pk "$azl_t" 2>/dev/null); '
            '[ "${11:-$azl_m}" -ge "$azl_m" ] 2>/dev/null || continue; '
            f'azl_d=$(mktemp -d "$azl_t/{tag}.XXXXXX" 2>&1) || '
            '{ azl_e="$azl_e; $azl_t: ${azl_d##*: }"; azl_d=; continue; }; '
            '{ printf x >"$azl_d/p"; } 2>/dev/null && : >"$azl_d/p" && break 2; '
            'azl_x=$(printf x | cat 2>&1 >"$azl_d/p" | tr "\\n" " "); azl_x=${azl_x% }; '
            'azl_e="$azl_e; $azl_t: ${azl_x#cat: }"; rm -rf "$azl_d"; azl_d=; '
            "done; done; "
            '[ -n "$azl_d" ] || printf "%s\\n" "${azl_e#; }" >&2; '
            # The session this shell's commands run in, where it was made for the shell (by
            # sshd; or for sudo, its parent): the sweep ends all of it ("-": none of its own).
            'azl_s=-; read -r azl_l </proc/$$/stat && set -- ${azl_l##*) } && '
            '{ [ "$4" = $$ ] || { [ "$4" = "$2" ] && read -r azl_l </proc/$2/comm && '
            '[ "$azl_l" = sudo ]; }; } && azl_s=$4; '
            f"azl_c=files; [ -e {SELINUX_ENFORCE} ] && azl_c=pipes; "
            f'printf "%s R %s %s %s %s\\n" {tag} "$$" "$azl_s" "$azl_c" "$azl_d"; exec sh'
        )
        # A line of its own: sh may read ahead of what it runs, and exec drops what it read.
        self._send(f"{TAG_VARIABLE}={tag} exec sh -c {shlex.quote(inner)}\n".encode())
        deadline = time.monotonic() + timeout
        line = self._read_line(f"{tag} R ".encode(), deadline)
        if line is None:
            ended = self.broken or time.monotonic() < deadline
            self._drop()
            raise ConnectionLost(
                f"{self._host}: the remote shell "
                f"{'ended at its start' if ended else f'did not start within {timeout:g} s'}"
                f"{self._said()}")
        fields = line.split(b" ", 3)
        if (len(fields) < 4 or not fields[0].isdigit()
                or not (fields[1].isdigit() or fields[1] == b"-")
                or fields[2] not in (b"files", b"pipes")):
            self._drop()
            raise ConnectionLost(f"{self._host}: unexpected shell start {line[:200]!r}")
        self.pid = int(fields[0])
        self.session = int(fields[1]) if fields[1].isdigit() else None
        if self.capture is None:
            self.capture = "pipes" if fields[2] == b"pipes" else "files"
        workdir = fields[3].decode("utf-8", "replace")
        if not workdir:
            why = self._said()
            self.close()
            raise OutputLost(
                f"{self._host}: no directory can take command output "
                f"(tried /dev/shm, $TMPDIR, /tmp, /var/tmp, $HOME){why or ': none writable'}")
        self.workdir = workdir
        self._setup = _SETUP.format(dir=shlex.quote(workdir))

    def _read_line(self, prefix: bytes, deadline: float) -> bytes | None:
        """The rest of the first stdout line starting with ``prefix``; None on EOF/timeout."""
        buf = bytearray()
        while True:
            at = buf.find(prefix)
            if at >= 0:
                end = buf.find(b"\n", at)
                if end >= 0:
                    self._pending += buf[end + 1 :]
                    return bytes(buf[at + len(prefix) : end])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sel.select(min(remaining, 1.0))
            out, err, eof = self._stream.read_available()
            buf += out
            self._stray_err += err
            if eof and not out and not err:
                return None

    def _said(self) -> str:
        text = self._stray_err.decode("utf-8", "replace").strip()
        return f": {text.splitlines()[-1][:300]}" if text else ""

    # -- commands ---------------------------------------------------------------------
    def run(self, script: str, *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        if "\0" in script:
            raise CommandRefused(f"{self._host}: a command cannot contain a NUL byte")
        self.run_started = False
        if self.broken or self._busy:
            raise ConnectionLost(f"{self._host}: the shell is no longer usable")
        self.start()
        start = time.monotonic()
        token = new_token()
        framed = self._setup + frame(script, token, stdin, pipes=self.capture == "pipes")
        self._setup = ""
        self._busy = True
        self._send(framed.encode())
        out, err, rc = self._collect(token, script, start + timeout, timeout)
        return CommandResult(script, rc, out, err, time.monotonic() - start)

    def _send(self, data: bytes) -> None:
        try:
            self._stream.send(data)
        except (OSError, EOFError) as exc:
            self._drop()
            raise ConnectionLost(f"{self._host}: connection lost sending a command: {exc}") from exc

    def _collect(
        self, token: str, script: str, deadline: float, timeout: float
    ) -> tuple[bytes, bytes, int]:
        tok = token.encode()
        mark_s, mark_o, mark_e = tok + b" S ", tok + b" O\n", tok + b" E "
        buf = self._pending
        self._pending = bytearray()
        stage, scan, body = 0, 0, 0  # 0: want S, 1: want O, 2: want E
        stdout = b""
        rc: int | None = None
        err = self._stray_err
        self._stray_err = bytearray()
        timed_out = False
        lost = b""
        last_data = time.monotonic()
        while rc is None:
            # Parse what is there; each search starts where the last one could not have
            # missed a marker.
            if stage == 0:
                at = buf.find(mark_s)
                nl = buf.find(b"\n", at) if at >= 0 else -1
                if nl >= 0:
                    self._running = int(buf[at + len(mark_s) : nl])
                    self.run_started = True
                    err += buf[:at]  # the shell's own output, nothing of the command
                    body = scan = nl + 1
                    stage = 1
            if stage == 1:
                at = buf.find(mark_o, scan)
                if at >= 0:
                    stdout = bytes(buf[body:at])
                    body = scan = at + len(mark_o)
                    stage = 2
                else:  # a marker split across reads starts in the last len(marker) bytes
                    scan = max(body, len(buf) - len(mark_o) + 1)
            if stage == 2:
                at = buf.find(mark_e, scan)
                nl = buf.find(b"\n", at) if at >= 0 else -1
                if nl >= 0:
                    err += buf[body:at]
                    code, _, lost = bytes(buf[at + len(mark_e) : nl]).partition(b" ")
                    rc = int(code)
                    self._pending = buf[nl + 1 :]
                    break
                scan = at if at >= 0 else max(body, len(buf) - len(mark_e) + 1)
            now = time.monotonic()
            if now >= deadline:
                if timed_out:  # the kill did not bring the markers back: give up on the shell
                    self._drop()
                    raise self._timeout(script, timeout)
                timed_out = True
                if self._running is not None:
                    self._kill_running()
                deadline = time.monotonic() + KILL_GRACE
                continue
            if self._alive is not None and now - last_data >= PROBE_AFTER:
                if not self._alive():
                    silent = time.monotonic() - last_data  # the probe's wait included
                    self._drop()
                    raise ConnectionLost(redact(
                        f"{self._host}: no answer from the host for {silent:.0f} s "
                        f"(connection dead) while running: {script}", self._secrets))
                last_data = time.monotonic()
            self._sel.select(min(deadline - now, 1.0, PROBE_AFTER))
            chunk_out, chunk_err, eof = self._stream.read_available()
            if chunk_out or chunk_err:
                last_data = time.monotonic()
                buf += chunk_out
                err += chunk_err
            elif eof:
                self._drop()
                raise ConnectionLost(redact(
                    f"{self._host}: connection closed while running: {script}", self._secrets))
        self._busy = False
        self._running = None
        if timed_out:
            raise self._timeout(script, timeout)
        if lost:  # what it printed may be cut short or missing: no result at all
            raise OutputLost(redact(
                f"{self._host}: the output of a command could not be kept in {self.workdir}: "
                f"{lost.decode('utf-8', 'replace').strip()} (exit code {rc}, not trusted): "
                f"{script}", self._secrets))
        return stdout, bytes(err), rc

    def _kill_running(self) -> None:
        if self._running == 0:  # a simple command in the shell: its children, not the shell
            assert self.pid is not None
            self._killer(kill_script(self.pid, spare_root=True))
        elif self._running is not None:
            self._killer(kill_script(self._running))

    def _timeout(self, script: str, timeout: float) -> CommandTimeout:
        return CommandTimeout(self._host, redact(script, self._secrets), timeout)

    # -- end ---------------------------------------------------------------------------
    def close(self, wait: float = 5.0) -> bool:
        """End the shell and everything it started; True if that was done in-band.

        False means the shell could not be reached (or did not confirm within ``wait``):
        whoever owns the connection then runs ``sweep_script(tag, workdir)`` another way.
        """
        if self.broken:
            return False
        if not self.started:
            self._drop()
            return True  # nothing was started through this shell
        if self._busy:
            if self._running is None:  # interrupted before the pid was read
                self._drop()
                return False
            self._kill_running()
        ack = new_token()
        sweeper = f'printf "%s K\\n" {ack}; exec </dev/null >/dev/null 2>&1; ' + sweep_script(
            self.tag, self.workdir, self.session)
        try:
            self._stream.send(
                f"unset {TAG_VARIABLE}; exec sh -c {shlex.quote(sweeper)}\n".encode())
            done = self._read_line(f"{ack} K".encode(), time.monotonic() + wait) is not None
        except (OSError, EOFError):
            done = False
        self._drop()
        return done

    def _drop(self) -> None:
        """Stop using the shell without ending it (the transport sweeps what it left)."""
        if self.broken:
            return
        self.broken = True
        self._sel.close()
        self._stream.close()

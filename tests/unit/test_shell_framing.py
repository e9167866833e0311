"""The persistent-shell framing (transport/shell.py), without SSH.

Two streams stand in for an SSH channel:

- ``FakeStream`` is a FAKE: it answers the session's lines with scripted bytes, so marker
  parsing, chunk boundaries, lost connections and the timeout path can be driven exactly.
- ``PipeStream`` is a real ``sh`` on pipes: the frame's shell code runs for real (output
  files, background processes, kill and sweep scripts). No root, no sshd.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import selectors
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_azlinux.errors import CommandRefused, CommandTimeout, ConnectionLost
from pytest_azlinux.transport import shell as shell_module
from pytest_azlinux.transport.local import tagged_pids
from pytest_azlinux.transport.shell import ShellSession
from pytest_azlinux.transport.shell_scripts import (
    frame as _frame,
)
from pytest_azlinux.transport.shell_scripts import (
    kill_script,
    simple_command,
    sweep_script,
)

FAKE_PID = 4242


class FakeStream:
    """FAKE SSH channel: every line the session sends goes to ``respond``, which queues
    replies with ``emit``; ``read_available`` hands out one queued chunk per call, so the
    chunk boundaries a test chooses are the ones the session sees."""

    def __init__(self, respond: Callable[[FakeStream, str, str], None]) -> None:
        self.respond = respond
        self.sent: list[str] = []
        self.closed = False
        self._queue: deque[tuple[bytes, bytes, bool]] = deque()
        self._lock = threading.Lock()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)

    # what a test uses
    def emit(self, out: bytes = b"", err: bytes = b"", eof: bool = False) -> None:
        with self._lock:
            self._queue.append((out, err, eof))
        os.write(self._w, b"x")

    def emit_chunks(self, data: bytes, size: int) -> None:
        for i in range(0, len(data), size):
            self.emit(data[i : i + size])

    # the Stream protocol
    def send(self, data: bytes) -> None:
        if self.closed:
            raise EOFError("fake stream closed")
        text = data.decode()
        self.sent.append(text)
        if text.startswith("AZL_SHELL="):
            tag = re.match(r"AZL_SHELL=(\w+) ", text)
            assert tag is not None
            self.emit(f"{tag.group(1)} R {FAKE_PID - 1} - files /dev/shm/azl.fake\n".encode())
            return
        token = re.search(r"azl_(?:fin|end) (\w+)", text)
        self.respond(self, "command" if token else "other", token.group(1) if token else text)

    def fileno(self) -> int:
        return self._r

    def read_available(self) -> tuple[bytes, bytes, bool]:
        with self._lock:
            if not self._queue:
                return b"", b"", False
            out, err, eof = self._queue.popleft()
            if not self._queue:
                try:
                    while os.read(self._r, 4096):
                        pass
                except BlockingIOError:
                    pass
        return out, err, eof

    def close(self) -> None:
        self.closed = True


def reply(token: str, out: bytes = b"", err: bytes = b"", rc: int = 0) -> bytes:
    """What the remote shell prints for one command: S marker, output, O, stderr, E."""
    t = token.encode()
    return t + b" S %d\n" % FAKE_PID + out + t + b" O\n" + err + t + b" E %d\n" % rc


def answering(
    out: bytes = b"", err: bytes = b"", rc: int = 0, chunk: int = 1 << 20
) -> Callable[[FakeStream, str, str], None]:
    def respond(stream: FakeStream, kind: str, token: str) -> None:
        if kind == "command":
            stream.emit_chunks(reply(token, out, err, rc), chunk)

    return respond


def session(respond: Callable[[FakeStream, str, str], None], **kwargs: object) -> tuple[
    ShellSession, FakeStream, list[str]
]:
    stream = FakeStream(respond)
    killed: list[str] = []  # the kill scripts
    return ShellSession(stream, "fakehost", killed.append, **kwargs), stream, killed  # type: ignore[arg-type]


# -- framing (fake stream) ------------------------------------------------------------------------
def test_result_is_parsed_from_the_markers() -> None:
    shell, stream, _ = session(answering(b"hello\n", b"oops\n", 3))
    result = shell.run("echo hello; echo oops >&2; exit 3", timeout=5)
    assert (result.rc, result.stdout, result.stderr) == (3, "hello\n", "oops\n")
    assert result.command == "echo hello; echo oops >&2; exit 3"
    assert shell.pid == FAKE_PID - 1 and shell.workdir == "/dev/shm/azl.fake"
    assert shell.run_started and shell.usable
    # The start line goes alone (sh may read ahead; exec would drop that), then the setup
    # with the first command only.
    assert stream.sent[0].startswith("AZL_SHELL=") and stream.sent[0].count("\n") == 1
    assert "azl_fin()" in stream.sent[1]
    shell.run("true", timeout=5)
    assert "azl_fin()" not in stream.sent[2]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 25])
def test_markers_split_across_chunks(size: int) -> None:
    out = b"line one\nno newline at the end"
    shell, _, _ = session(answering(out, b"e1\ne2", 7, chunk=size))
    for _ in range(3):  # and again: nothing of one command is left for the next
        result = shell.run("x", timeout=5)
        assert (result.rc, result.stdout_bytes, result.stderr_bytes) == (7, out, b"e1\ne2")


def test_output_that_looks_like_a_marker_is_output() -> None:
    fake = b"AZL0000 S 1\nAZL0000 O\nAZL0000 E 0\n deadbeef O\n"
    shell, _, _ = session(answering(fake, fake))
    result = shell.run("cat fake", timeout=5)
    assert result.stdout_bytes == fake and result.stderr_bytes == fake


def test_the_shells_own_stderr_is_kept_with_the_command() -> None:
    def respond(stream: FakeStream, kind: str, token: str) -> None:
        stream.emit(err=b"sh: 1: something the shell said\n")
        stream.emit(reply(token, b"ok\n", b"", 0))

    shell, _, _ = session(respond)
    result = shell.run("true", timeout=5)
    assert result.stdout == "ok\n"
    assert "something the shell said" in result.stderr


def test_bytes_after_the_end_marker_do_not_hide_it_or_leak_into_the_next() -> None:
    """Issue 18.4 at the parsing level: data right after the end marker (in the old
    framing, a background process's output) made a finished command time out."""
    def respond(stream: FakeStream, kind: str, token: str) -> None:
        stream.emit(reply(token, b"alive\n") + b"late\n")

    shell, _, _ = session(respond)
    start = time.monotonic()
    first = shell.run("echo alive", timeout=10)
    second = shell.run("echo alive", timeout=10)
    assert first.stdout == second.stdout == "alive\n"
    assert time.monotonic() - start < 5  # not a timeout
    assert "late" not in second.stdout


@pytest.mark.parametrize("data", [
    b"", b"plain\n", bytes(range(256)) * 40, b"AZL0000IN\nnot the end\n", b"\x00\x00 no newline",
])
def test_stdin_travels_base64_in_a_here_document(data: bytes) -> None:
    shell, stream, _ = session(answering())
    shell.run("cat", timeout=5, stdin=data)
    frame = stream.sent[-1]
    token = re.search(r"azl_fin (\w+)\n", frame)
    assert token is not None
    heredoc = re.search(rf"<<'{token.group(1)}IN'.*?\n(.*?){token.group(1)}IN\n", frame, re.S)
    assert heredoc is not None, frame
    assert base64.b64decode(heredoc.group(1)) == data
    assert "</dev/null" not in frame.split("\n")[0]


def test_a_command_without_stdin_reads_dev_null() -> None:
    shell, stream, _ = session(answering())
    shell.run("cat", timeout=5)
    assert "</dev/null" in stream.sent[-1]


def test_nul_byte_is_refused_not_dropped() -> None:
    shell, stream, _ = session(answering())
    with pytest.raises(CommandRefused, match="NUL"):
        shell.run("echo a\0b", timeout=5)
    assert stream.sent == []  # nothing was sent, not even the start


# -- timeouts (fake stream) -----------------------------------------------------------------------
def test_timeout_kills_the_command_and_the_shell_stays_usable() -> None:
    tokens: list[str] = []

    def respond(stream: FakeStream, kind: str, token: str) -> None:
        tokens.append(token)
        if len(tokens) == 1:
            stream.emit(f"{token} S {FAKE_PID}\n".encode())  # started, never ends by itself
        else:
            stream.emit(reply(token, b"next\n"))

    shell, stream, killed = session(respond)
    real_killer = shell._killer

    def killer(script: str) -> None:
        real_killer(script)
        stream.emit(f"{tokens[0]} O\n{tokens[0]} E 143\n".encode())  # the kill ends it

    shell._killer = killer
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"timed out after 0.5 s: sleep 100"):
        shell.run("sleep 100", timeout=0.5)
    assert killed == [kill_script(FAKE_PID)]
    assert time.monotonic() - start < 5
    assert shell.usable
    assert shell.run("echo next", timeout=5).stdout == "next\n"


def test_timeout_whose_kill_brings_nothing_back_breaks_the_shell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shell_module, "KILL_GRACE", 0.3)

    def respond(stream: FakeStream, kind: str, token: str) -> None:
        stream.emit(f"{token} S {FAKE_PID}\n".encode())

    shell, stream, killed = session(respond)
    with pytest.raises(CommandTimeout):
        shell.run("sleep 100", timeout=0.3)
    assert killed == [kill_script(FAKE_PID)]
    assert shell.broken and stream.closed
    with pytest.raises(ConnectionLost):
        shell.run("true", timeout=1)


def test_timeout_before_the_pid_arrived_kills_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell_module, "KILL_GRACE", 0.2)
    shell, _, killed = session(lambda stream, kind, token: None)
    shell.start()
    with pytest.raises(CommandTimeout):
        shell.run("true", timeout=0.2)
    assert killed == [] and shell.broken


def test_secrets_are_not_in_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell_module, "KILL_GRACE", 0.1)

    def respond(stream: FakeStream, kind: str, token: str) -> None:
        stream.emit(f"{token} S {FAKE_PID}\n".encode())

    shell, _, _ = session(respond, secrets=["hunter2-pw"])
    with pytest.raises(CommandTimeout) as info:
        shell.run("login --password hunter2-pw", timeout=0.2)
    assert "hunter2-pw" not in str(info.value) and "hunter2-pw" not in info.value.command
    assert "login --password ***" in str(info.value)


# -- lost connections (fake stream) --------------------------------------------------------------
def test_connection_lost_before_the_pid_was_reported() -> None:
    shell, _, _ = session(lambda stream, kind, token: stream.emit(eof=True))
    shell.start()
    with pytest.raises(ConnectionLost, match="connection closed while running: echo x"):
        shell.run("echo x", timeout=5)
    assert not shell.run_started  # the transport may send it again on a new connection
    assert shell.broken


def test_connection_lost_after_the_pid_was_reported() -> None:
    def respond(stream: FakeStream, kind: str, token: str) -> None:
        stream.emit(f"{token} S {FAKE_PID}\npartial".encode())
        stream.emit(eof=True)

    shell, _, _ = session(respond)
    with pytest.raises(ConnectionLost):
        shell.run("make install", timeout=5)
    assert shell.run_started  # it ran: never sent again
    assert shell.broken


def test_connection_lost_at_start() -> None:
    class Dead(FakeStream):
        def send(self, data: bytes) -> None:
            raise OSError("Socket is closed")

    stream = Dead(answering())
    shell = ShellSession(stream, "fakehost", lambda pid: None)
    with pytest.raises(ConnectionLost, match="Socket is closed"):
        shell.run("true", timeout=5)
    assert not shell.run_started and shell.broken


def test_silent_dead_connection_is_found_by_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell_module, "PROBE_AFTER", 0.2)
    probes: list[float] = []

    def alive() -> bool:
        probes.append(time.monotonic())
        return len(probes) < 3  # answers twice, then the host is gone

    shell, _, _ = session(lambda stream, kind, token: stream.emit(f"{token} S 9\n".encode()),
                          alive=alive)
    start = time.monotonic()
    with pytest.raises(ConnectionLost, match="no answer from the host"):
        shell.run("sleep 600", timeout=600)
    assert len(probes) == 3
    assert time.monotonic() - start < 30  # not the command's 600 s


def test_close_of_an_idle_shell_sweeps_in_band() -> None:
    def respond(stream: FakeStream, kind: str, text: str) -> None:
        if kind == "command":
            stream.emit(reply(text))
            return
        ack = re.search(r'printf "%s K\\n" (\w+)', text)
        assert ack is not None and text.startswith("unset AZL_SHELL; exec sh -c ")
        stream.emit(f"{ack.group(1)} K\n".encode())

    shell, stream, killed = session(respond)
    shell.run("true", timeout=5)
    assert shell.close() is True
    assert stream.closed and killed == []
    assert f"AZL_SHELL={shell.tag}" in stream.sent[-1]


def test_close_of_a_shell_interrupted_before_the_pid_is_left_to_the_transport() -> None:
    shell, stream, _ = session(lambda stream, kind, token: None)
    shell.start()
    shell._busy = True  # as after a KeyboardInterrupt in the middle of run()
    assert not shell.usable
    assert shell.close() is False
    assert stream.closed


# -- the frame's shell code, run by a real sh on pipes --------------------------------------------
class PipeStream:
    """A real ``sh`` on pipes (no SSH): the session's shell code runs for real."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        # A session of its own, as sshd gives each channel: the sweep ends all of it.
        self.proc = subprocess.Popen(["sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, start_new_session=True)
        assert self.proc.stdout and self.proc.stderr and self.proc.stdin
        self._fds = (self.proc.stdout.fileno(), self.proc.stderr.fileno())
        for fd in self._fds:
            os.set_blocking(fd, False)
        self._sel = selectors.DefaultSelector()
        for fd in self._fds:
            self._sel.register(fd, selectors.EVENT_READ)
        self._open = {fd: True for fd in self._fds}

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def fileno(self) -> int:
        return self._sel.fileno()

    def read_available(self) -> tuple[bytes, bytes, bool]:
        chunks = []
        for fd in self._fds:
            data = b""
            if self._open[fd]:
                try:
                    data = os.read(fd, 1 << 20)
                    if not data:
                        self._open[fd] = False
                        self._sel.unregister(fd)
                except BlockingIOError:
                    pass
            chunks.append(data)
        return chunks[0], chunks[1], not any(self._open.values())

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()


def local_kill(script: str) -> None:
    subprocess.run(["sh", "-c", script], check=False, timeout=30)


@pytest.fixture(params=["files", "pipes"])
def real_shell(request: pytest.FixtureRequest) -> Iterator[ShellSession]:
    """A real sh capturing output either way (pipes is what SELinux hosts get)."""
    stream = PipeStream()
    shell = ShellSession(stream, "local-sh", local_kill, capture=request.param)
    yield shell
    if not shell.broken:
        shell.close()
    subprocess.run(["sh", "-c", sweep_script(shell.tag, shell.workdir)], check=False)
    stream.proc.wait(timeout=10)


@pytest.fixture(params=["dash", "bash"])
def sh_as(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ShellSession]:
    """A real sh capturing into files, as dash (Debian's sh) or as bash (Azure Linux's)."""
    program = shutil.which(request.param)
    if program is None:
        pytest.skip(f"{request.param} is not installed")
    (tmp_path / "sh").symlink_to(program)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    stream = PipeStream(env)
    shell = ShellSession(stream, "local-sh", local_kill, capture="files")
    yield shell
    if not shell.broken:
        shell.close()
    subprocess.run(["sh", "-c", sweep_script(shell.tag, shell.workdir)], check=False)
    stream.proc.wait(timeout=10)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_real_sh_output_exit_code_and_stdin(real_shell: ShellSession) -> None:
    result = real_shell.run("echo out; echo err >&2; exit 4", timeout=30)
    assert (result.rc, result.stdout, result.stderr) == (4, "out\n", "err\n")
    data = bytes(range(256)) * 100
    assert real_shell.run("cat", timeout=30, stdin=data).stdout_bytes == data
    assert real_shell.run("printf %s \"$1$#\"", timeout=30).stdout == "0"  # no positional args
    assert real_shell.run("x=1; exit 0", timeout=30).rc == 0
    assert real_shell.run('echo "${x:-unset}"', timeout=30).stdout == "unset\n"  # own subshell
    assert real_shell.run("if then", timeout=30).rc == 2  # a syntax error stays in the command
    assert real_shell.run("echo fine", timeout=30).stdout == "fine\n"


def test_real_sh_background_output_stays_out_of_later_commands(real_shell: ShellSession) -> None:
    """Issue 18.4: a process a command leaves behind writes after the command ended."""
    first = real_shell.run("(sleep 1; echo late; echo late >&2) & echo first", timeout=30)
    if real_shell.capture == "pipes":  # the command lasts as long as its output is held open
        assert (first.stdout, first.stderr) == ("first\nlate\n", "late\n")
        assert first.duration >= 0.9
    else:
        assert first.stdout == "first\n"
    end = time.monotonic() + 2.5
    outputs = []
    while time.monotonic() < end:  # across the moment "late" is written
        result = real_shell.run("echo alive", timeout=10)
        outputs.append((result.rc, result.stdout, result.stderr))
        time.sleep(0.05)
    assert set(outputs) == {(0, "alive\n", "")}


def test_real_sh_long_script_has_no_argument_limit(real_shell: ShellSession) -> None:
    word = "x" * 1_000_000
    result = real_shell.run(f"echo {word} | wc -c", timeout=60)
    assert (result.rc, result.stdout.strip()) == (0, str(len(word) + 1))


def test_real_sh_timeout_kills_the_whole_tree(real_shell: ShellSession) -> None:
    script = "sh -c 'sleep 301.5 & sleep 302.5 & wait' & sleep 303.5; wait"
    with pytest.raises(CommandTimeout):
        real_shell.run(script, timeout=1)
    wait_until(lambda: not _running("sleep 30[123].5"), "the command tree is still running")
    assert real_shell.run("echo after", timeout=30).stdout == "after\n"


def test_real_sh_close_ends_what_commands_left_and_the_shell(real_shell: ShellSession) -> None:
    real_shell.run("sleep 604.5 >/dev/null 2>&1 & (sleep 605.5; echo x) >/dev/null 2>&1 &",
                   timeout=30)
    assert tagged_pids(real_shell.tag)
    assert real_shell.workdir is not None and Path(real_shell.workdir).is_dir()
    assert real_shell.close() is True
    wait_until(lambda: not tagged_pids(real_shell.tag), "processes of the shell are left")
    assert not _running("sleep 60[45].5")
    wait_until(lambda: not Path(str(real_shell.workdir)).exists(), "the directory is left")


def test_real_sh_close_while_a_command_runs(real_shell: ShellSession) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            real_shell.run("sleep 606.5", timeout=120)
        except BaseException as exc:  # the session is closed under it
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: real_shell._running is not None, "the command did not start")
    real_shell.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    wait_until(lambda: not tagged_pids(real_shell.tag), "processes of the shell are left")


def test_the_host_chooses_pipes_where_selinux_is_enabled() -> None:
    """Files here, where /sys/fs/selinux/enforce is absent (the SELinux VMs get pipes:
    tests/integration/test_vm_hosts.py)."""
    stream = PipeStream()
    shell = ShellSession(stream, "local-sh", local_kill)
    try:
        assert shell.run("echo x", timeout=30).stdout == "x\n"
        expected = "pipes" if Path("/sys/fs/selinux/enforce").exists() else "files"
        assert shell.capture == expected
    finally:
        shell.close()
        stream.proc.wait(timeout=10)


def test_sweep_script_ends_a_lost_shell(real_shell: ShellSession) -> None:
    real_shell.run("sleep 607.5 >/dev/null 2>&1 &", timeout=30)
    real_shell._drop()  # the connection is gone; the transport sweeps through another
    subprocess.run(["sh", "-c", sweep_script(real_shell.tag, real_shell.workdir)], check=True,
                   timeout=60)
    assert not tagged_pids(real_shell.tag)
    assert not Path(str(real_shell.workdir)).exists()


# -- simple commands run in the shell itself -------------------------------------------------
@pytest.mark.parametrize("script", [
    "true", "cat -- /etc/os-release", "/usr/bin/stat -c '%a %U:%G' /etc/shadow",
    "sysctl -n net.ipv4.ip_forward", "echo 'it''s' a=b", "ls -ld /proc/1/ns/pid",
])
def test_simple_commands_skip_the_subshell(script: str) -> None:
    assert simple_command(script)
    frame = _frame(script, "T", None)
    assert "eval" not in frame and f"S 0; {script} </dev/null >" in frame


@pytest.mark.parametrize("script", [
    "cd /tmp", "exit 3", "export A=1", "A=1 env", "'cd' /", "printf -v x 1", "read x",
    "exec true", ". ./x", "set -e", "trap x EXIT", "wait", "kill 1", "azl_end T 0",
    "echo $HOME", 'echo "x"', "cat /etc/*", "ls ~", "echo {a,b}", "echo `id`",
    "echo a; echo b", "echo a | wc", "cat <x", "echo x >y", "true &", "(true)",
    "echo a\\ b", "echo a#b", "true\n", "echo\tx", "true ", "",
])
def test_anything_else_keeps_its_subshell(script: str) -> None:
    assert not simple_command(script)
    assert "eval" in _frame(script, "T", None)


def test_stdin_and_pipes_keep_the_subshell() -> None:
    assert "eval" in _frame("cat", "T", b"x")
    assert "eval" in _frame("true", "T", None, pipes=True)


def test_simple_commands_in_the_shell(sh_as: ShellSession, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"a\x00b\n" * 1000)
    assert sh_as.run(f"cat -- {tmp_path}/f", timeout=30).stdout_bytes == b"a\x00b\n" * 1000
    missing = sh_as.run(f"ls -- {tmp_path}/missing", timeout=30)
    assert missing.rc == 2 and "missing" in missing.stderr and missing.stdout == ""
    unknown = sh_as.run("azl-no-such-program --x", timeout=30)
    assert unknown.rc == 127 and "azl-no-such-program" in unknown.stderr
    assert sh_as.run("false", timeout=30).rc == 1
    assert sh_as.run("cd /", timeout=30).rc == 0  # in a subshell: the shell stays where it is
    assert sh_as.run("pwd", timeout=30).stdout != "/\n"
    assert sh_as.run("echo 'a  b' c", timeout=30).stdout == "a  b c\n"


def test_a_program_run_in_the_shell_is_looked_up_again_later(
    sh_as: ShellSession, tmp_path: Path
) -> None:
    """The shell remembers where it found a program; a later command must not be told of a
    program that has gone since (a lookup remembered by the shell would still name it)."""
    program = tmp_path / "azl-probe-prog"  # tmp_path is on the shell's PATH (sh_as)
    program.write_text("#!/bin/sh\necho here\n")
    program.chmod(0o755)
    assert sh_as.run("azl-probe-prog", timeout=30).stdout == "here\n"
    program.chmod(0o644)
    assert sh_as.run("command -v azl-probe-prog", timeout=30).rc != 0
    assert sh_as.run("azl-probe-prog", timeout=30).rc in (126, 127)  # bash tries it: 126


def test_a_simple_command_that_times_out_is_killed_and_the_shell_lives(
    sh_as: ShellSession,
) -> None:
    with pytest.raises(CommandTimeout):
        sh_as.run("sleep 309.5", timeout=1)
    wait_until(lambda: not _running("sleep 309.5"), "the command is still running")
    assert sh_as.pid is not None
    os.kill(sh_as.pid, 0)  # the shell it ran in is alive
    assert sh_as.run("echo after", timeout=30).stdout == "after\n"


def test_kill_and_sweep_scripts_have_no_single_quote() -> None:
    """Callers (kube.py) wrap them in single quotes."""
    assert "'" not in kill_script(123)
    assert "'" not in kill_script(123, spare_root=True)
    assert "'" not in sweep_script("azl0123", "/tmp/it's here")


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def test_sweep_script_removes_a_directory_it_was_never_told_of(tmp_path: Path) -> None:
    """A shell lost before its start line arrived: its directory is found by its tag."""
    tag = "azl" + "0123456789abcdef"
    lost = tmp_path / f"{tag}.Ab3dE9"
    (lost / "sub").mkdir(parents=True)
    other = tmp_path / "azlffffffffffffffff.Ab3dE9"  # another shell's
    other.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path))
    subprocess.run(["sh", "-c", sweep_script(tag, None)], check=True, timeout=60, env=env)
    assert not lost.exists() and other.exists()


@pytest.mark.parametrize("capture", ["files", "pipes"])
def test_real_sh_close_ends_what_dropped_the_tag(capture: str) -> None:
    """``env -i`` clears AZL_SHELL; the process is still in the shell's session."""
    stream = PipeStream()
    shell = ShellSession(stream, "local-sh", local_kill, capture=capture)
    try:
        shell.run("env -i sleep 631.5 >/dev/null 2>&1 &", timeout=30)
        assert shell.session == stream.proc.pid  # a session of its own, as under sshd
        wait_until(lambda: _pids_of("sleep 631.5") != [], "not started")
        assert not any(p in tagged_pids(shell.tag) for p in _pids_of("sleep 631.5"))
        assert shell.close() is True
        wait_until(lambda: _pids_of("sleep 631.5") == [], "the untagged process survived")
    finally:
        for pid in _pids_of("sleep 631.5"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        stream.proc.wait(timeout=10)


def _pids_of(command: str) -> list[int]:
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if path.read_bytes().replace(b"\0", b" ").strip() == command.encode():
                found.append(int(path.parent.name))
    return found

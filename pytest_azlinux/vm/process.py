"""A running qemu: found again by its ``-name`` (never by a pid alone), stopped, its console
read, and the wait until the guest's sshd answers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .net import ssh_banner

POLL_SECONDS = 0.5
Waited = Literal["up", "exited", "timeout", "cancelled"]


# A bootloader draws on the serial console with terminal escapes (grub: clear screen, move
# the cursor, colours). In a message they are noise or worse (they recolour the reader's
# terminal), so they go; a cursor move starts a new line, as it does on the screen.
_CURSOR_MOVE = re.compile(r"\x1b\[[0-9;?]*[Hf]")
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, erase, cursor
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles
    r"|\x1b[ -/]*[0-~]?"  # other escapes (charset selection, keypad modes), or a lone ESC
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


def clean_console(text: str) -> list[str]:
    """The console's lines as a reader sees them: escapes and control characters removed,
    a line redrawn after a carriage return shown as last drawn, blank lines left out."""
    text = _ESCAPE.sub("", _CURSOR_MOVE.sub("\n", text))
    shown = []
    for line in text.split("\n"):
        # a carriage return redraws the line: what is left on screen is the last drawing
        drawn = [part for part in line.split("\r") if _CONTROL.sub("", part).strip()]
        if drawn:
            shown.append(_CONTROL.sub("", drawn[-1]).rstrip())
    return shown


def console_tail(console_log: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of the console, cleaned (empty if it printed nothing)."""
    try:
        text = console_log.read_bytes().decode(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join(clean_console(text)[-lines:])


def console_note(console_log: Path, lines: int, empty: str) -> str:
    """``console tail:`` and the tail for a boot-failure message, or ``empty`` (what an
    empty console means for this kind of VM) when nothing was written to it."""
    tail = console_tail(console_log, lines)
    return f"console tail:\n{tail}" if tail else empty


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def is_our_qemu(pid: int, name: str) -> bool:
    """True if ``pid`` is the qemu of VM ``name`` (not a recycled pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"azl-vm-{name}".encode() in argv


def stop_qemu(pid: int, name: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only if the pid is that VM's qemu."""
    if not is_our_qemu(pid, name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_our_qemu(pid, name):
            return
        time.sleep(0.1)
    if is_our_qemu(pid, name):
        os.kill(pid, signal.SIGKILL)


def kill_qemu(pid: int | None, name: str) -> None:
    """SIGKILL that VM's qemu now, without waiting (safe in a signal handler)."""
    if pid is not None and is_our_qemu(pid, name):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def wait_for_sshd(
    address: str,
    deadline: float,
    alive: Callable[[], bool],
    cancel: threading.Event | None = None,
) -> Waited:
    """Poll until sshd at ``address`` sends its banner (``up``), qemu is gone (``exited``),
    ``deadline`` (monotonic) passed (``timeout``) or ``cancel`` was set (``cancelled``)."""
    while time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            return "cancelled"
        if not alive():
            return "exited"
        if ssh_banner(address, timeout=2.0, read_timeout=5.0) is not None:
            return "up"
        if cancel is not None:
            cancel.wait(POLL_SECONDS)
        else:
            time.sleep(POLL_SECONDS)
    return "timeout"

"""Console tails in boot-failure messages: terminal escapes and control characters removed,
an empty console said to be empty (issue 28 #12).

The console is a recorded one (tests/data/console/README.md says how it was captured): a
truncated copy of the project's qcow2 booted under qemu, grub's escapes and all.
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_azlinux.vm.process import clean_console, console_note, console_tail

DATA = Path(__file__).resolve().parents[1] / "data" / "console"
TRUNCATED = DATA / "truncated-qcow2-400M.log"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
EMPTY = "the console stayed empty"


def test_recorded_console_carries_escapes() -> None:
    """The recording is what the fix is about: raw ESC bytes and CRs, as qemu wrote them."""
    raw = TRUNCATED.read_bytes()
    assert b"\x1b[H\x1b[J\x1b[1;1H" in raw[:16] and b"\x1b[6n" in raw and b"\r\n" in raw


def test_tail_of_a_recorded_console_has_no_escape_or_control_character() -> None:
    tail = console_tail(TRUNCATED, 8)
    assert not CONTROL.search(tail), repr(tail)
    lines = tail.splitlines()
    assert len(lines) == 8
    assert "Failed to mount /dev/vda1 as root file system." in lines
    assert lines[-1].startswith("(initramfs) [  106.737082] clocksource:")  # ESC[6n gone


def test_screen_clear_leaves_the_first_kernel_line_whole() -> None:
    lines = clean_console(TRUNCATED.read_bytes().decode())
    assert lines[0].startswith("[    0.000000] Linux version 6.1.0-50-amd64 ")
    assert all(not CONTROL.search(line) for line in lines)


def test_cursor_moves_start_lines_and_colours_go() -> None:
    """A menu drawn row by row with cursor moves, in colour, and a window title (written
    here, not recorded: the recording has no colours): a row is a line, no code is left."""
    drawn = (
        "\x1b[2;1H\x1b[0m\x1b[37m\x1b[40m    GNU GRUB  version 2.06\x1b[m"
        "\x1b[4;2H\x1b[1m*Debian GNU/Linux\x1b[m\r\n\x1b]0;title\x07grub> "
    )
    assert clean_console(drawn) == ["    GNU GRUB  version 2.06", "*Debian GNU/Linux", "grub>"]


def test_carriage_return_redraw_shows_the_last_drawing() -> None:
    assert clean_console("Booting in 5s\rBooting in 4s\rBooting now   \n") == ["Booting now"]


def test_empty_console_is_said_to_be_empty(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"")
    assert console_note(log, 8, EMPTY) == EMPTY
    log.write_bytes(b"\x1b[H\x1b[J\r\n")  # only escapes: nothing a reader could see
    assert console_note(log, 8, EMPTY) == EMPTY


def test_non_empty_console_is_its_tail(tmp_path: Path) -> None:
    note = console_note(TRUNCATED, 2, EMPTY)
    assert note.startswith("console tail:\nEnter 'help' for a list of built-in commands.\n")
    assert len(note.splitlines()) == 3

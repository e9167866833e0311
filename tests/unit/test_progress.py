"""When a long phase speaks (``progress.Phase``): a line per tenth or per 10 s in a log, one
updated line on a terminal, the items waiting longest named when it drags, one closing
line. The clock is a stand-in (time is what is tested), and so is the terminal reporter: it
keeps what pytest's ``TerminalReporter`` would be asked to write (the pytester tests in
``tests/plugin/test_progress_runs.py`` use the real one)."""

from __future__ import annotations

from typing import Any

from pytest_azlinux import progress
from pytest_azlinux.progress import Phase, Terminal


class Reporter:
    """Stands in for pytest's terminal reporter: records rewrites and lines."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.calls: list[tuple[str, str]] = []

    def isatty(self) -> bool:
        return self.tty

    def rewrite(self, line: str, **_: Any) -> None:
        self.calls.append(("rewrite", line))

    def write(self, text: str, **_: Any) -> None:
        self.calls.append(("write", text))

    def write_line(self, line: str, **_: Any) -> None:
        self.calls.append(("line", line))

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        return [text for kind, text in self.calls if kind == "line"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_per_tenth_and_one_closing_line() -> None:
    out, clock = Reporter(tty=False), Clock()
    phase = Phase("preparing hosts", 40, Terminal(out), clock, tick=None)
    for n in range(40):
        clock.now += 0.05
        phase.begin(f"h{n}")
        phase.step(f"h{n}", "connected")
        phase.end(f"h{n}", "unreachable" if n == 7 else "facts read")
    phase.close()
    lines = out.lines()
    assert len(lines) == 10  # 10 %, 20 %, ... 90 %, then the closing line
    assert lines[0] == "azl: preparing hosts: 4 of 40 · 4 facts read · 0 s"
    assert lines[1] == "azl: preparing hosts: 8 of 40 · 7 facts read, 1 unreachable · 0 s"
    assert lines[-1] == "azl: preparing hosts: 40 of 40 · 39 facts read, 1 unreachable in 2.0 s"


def test_a_log_hears_every_10_s_and_the_slowest_are_named_when_it_drags() -> None:
    out, clock = Reporter(tty=False), Clock()
    phase = Phase("preparing hosts", 100, Terminal(out), clock, tick=None)
    for n in range(5):
        phase.begin(f"aks-{n}")
    phase.end("aks-0", "facts read")
    clock.now += 4
    phase.begin("aks-9")
    assert out.lines() == []  # under 10 % done and under 10 s: nothing yet
    clock.now += 7  # the ticker's look at a phase that has not moved
    phase._show()
    assert out.lines() == ["azl: preparing hosts: 1 of 100 · 1 facts read · 11 s · waiting "
                           "longest: aks-1 (11 s), aks-2 (11 s), aks-3 (11 s)"]
    clock.now += 3
    phase._show()
    assert len(out.lines()) == 1  # 3 s later: not again


def test_a_terminal_line_is_updated_in_place_and_ends_with_a_newline() -> None:
    out, clock = Reporter(tty=True), Clock()
    phase = Phase("preparing hosts", 10, Terminal(out), clock, tick=None)
    for n in range(10):
        clock.now += 0.25  # each change after REFRESH: each is shown
        phase.end(f"h{n}", "facts read")
    phase.close()
    rewrites = [text for kind, text in out.calls if kind == "rewrite"]
    assert rewrites[0] == "azl: preparing hosts: 1 of 10 · 1 facts read · 0 s"
    assert len(rewrites) == 11  # ten updates and the closing text over them
    assert rewrites[-1] == "azl: preparing hosts: 10 of 10 · 10 facts read in 2.5 s"
    assert out.calls[-1] == ("write", "\n") and out.lines() == []


def test_a_few_items_show_their_stage() -> None:
    out, clock = Reporter(tty=False), Clock()
    phase = Phase("booting image", 1, Terminal(out), clock, tick=None)
    phase.step("vm-1", "kernel")
    clock.now += 12
    phase._show()
    assert out.lines() == ["azl: booting image: vm-1 kernel · 12 s · waiting longest: "
                           "vm-1 (12 s)"]
    phase.end("vm-1", "sshd up")
    phase.close()
    assert out.lines()[-1] == "azl: booting image: vm-1 sshd up in 12.0 s"


def test_silent_without_a_terminal_or_with_q() -> None:
    progress.use_terminal(None)
    with progress.phase("preparing hosts", 3) as phase:
        assert phase.out is None
        phase.end("a", "facts read")
    out = Reporter(tty=False)
    progress.use_terminal(out, quiet=True)
    with progress.phase("preparing hosts", 1) as phase:
        phase.end("a", "facts read")
    assert out.calls == []
    progress.use_terminal(None)


def test_among_tests_whole_lines_from_the_callers_thread() -> None:
    out = Reporter(tty=True)
    progress.use_terminal(out)
    try:
        phase = progress.phase("preparing hosts (xdist workers)", 2, among_tests=True)
        assert phase.out is not None and not phase.out.live and phase._ticker is None
        phase.end("a", "facts read")
        phase.end("b", "unreachable")
        phase.close()
        assert [kind for kind, _ in out.calls] == ["line", "line"]
    finally:
        progress.use_terminal(None)


def test_phases_at_once_share_the_terminal_line() -> None:
    out, clock = Reporter(tty=True), Clock()
    terminal = Terminal(out)
    boots = Phase("booting image", 1, terminal, clock, tick=None)
    hosts = Phase("preparing hosts", 1, terminal, clock, tick=None)
    clock.now += 1
    boots.step("vm-1", "sshd up")
    hosts.begin("vm-1")
    assert out.calls[-1] == ("rewrite", "azl: booting image: vm-1 sshd up · 1 s | "
                                        "azl: preparing hosts: vm-1 starting · 1 s")
    boots.end("vm-1", "cloud-init done")
    boots.close()
    assert out.calls[-3:] == [
        ("rewrite", "azl: booting image: vm-1 cloud-init done in 1.0 s"), ("write", "\n"),
        ("rewrite", "azl: preparing hosts: vm-1 starting · 1 s")]

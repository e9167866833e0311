"""Progress of a run's long phases (preparing hosts, booting images and VMs, creating pods),
so a person watching a terminal or a CI log can tell a slow pool from a hung run.

A phase is opened with ``phase(title, total)`` and told about its items as they move
(``begin``, ``step`` to a state, ``end`` in a final state); it says::

    azl: preparing hosts: 312 of 1000 · 298 facts read, 12 connected, 2 unreachable · 14 s

On a terminal it is one line, updated in place (at most ``REFRESH`` times a second); in a
log (output that is not a terminal) a line each time another tenth of the items is done, or
``EVERY`` seconds without one; when the phase drags (``DRAGS`` seconds), the items waiting
longest are named. The phase ends with one line: what it did, in how long. With ``-q``, or
without pytest's terminal reporter (``-p no:terminal``), it is silent.

Where the lines go is set once per process by the plugin (``use_terminal``), the way
``logging`` is configured once: the phases are called from kinds, the lab and the session,
which know nothing of pytest's terminal. Under xdist the workers stay silent and the
controller reports (``xdist_scheduling.HostsPrepared``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

REFRESH = 0.2  # s between updates of the terminal line
EVERY = 10.0  # s: in a log, a line at least this often while the phase runs
STEPS = 10  # in a log, a line each time another 1/STEPS of the items is done
DRAGS = 10.0  # s: after this long, name the items waiting longest
SLOWEST = 3  # items named when the phase drags
ITEMS_SHOWN = 3  # a phase of this few items shows each one's state, not counts
TICK = 1.0  # s between looks at a phase that has not moved (the seconds go on)


class Terminal:
    """pytest's terminal reporter as a progress output. ``live``: one line rewritten in
    place, shared by the phases running at once (an image booting while hosts are
    prepared): ``booting image: ... | preparing hosts: ...``."""

    def __init__(self, reporter: Any, live: bool | None = None) -> None:
        self.reporter = reporter
        self.live = bool(reporter.isatty()) if live is None else live
        self.lock = threading.Lock()
        self.showing: dict[int, str] = {}  # phase -> its text on the live line

    def update(self, key: int, text: str) -> None:
        with self.lock:
            self.showing[key] = text
            self._render()

    def _render(self) -> None:
        line = " | ".join(self.showing.values())
        width = getattr(getattr(self.reporter, "_tw", None), "fullwidth", 0)
        if width and len(line) >= width:
            line = line[: width - 2] + "…"
        self.reporter.rewrite(line, erase=True)
        self.reporter.flush()

    def line(self, text: str, *, key: int | None = None) -> None:
        """A whole line; on a live terminal it replaces ``key``'s part of the line."""
        with self.lock:
            if self.live and self.showing:
                if key is not None:
                    self.showing.pop(key, None)
                self.reporter.rewrite(text, erase=True)
                self.reporter.write("\n", flush=True)
                if self.showing:
                    self._render()
                return
            # pytest's progress dots may have left the line open (xdist's do)
            writer = getattr(self.reporter, "_tw", None)
            if getattr(writer, "width_of_current_line", 0):
                self.reporter.write("\n")
            self.reporter.write_line(text)
            self.reporter.flush()


_output: Terminal | None = None


def configure(config: Any) -> None:
    """From a pytest config: its terminal reporter, silent with ``-q`` and on xdist workers
    (the controller reports for them)."""
    if hasattr(config, "workerinput"):
        use_terminal(None)
        return
    # -p no:terminal: neither the reporter nor its -v/-q option exist
    use_terminal(config.pluginmanager.get_plugin("terminalreporter"),
                 quiet=getattr(config.option, "verbose", 0) < 0)


def use_terminal(reporter: Any | None, *, quiet: bool = False) -> None:
    """Where this process's phases report: pytest's terminal reporter, or nowhere (None,
    or ``quiet``)."""
    global _output
    _output = None if reporter is None or quiet else Terminal(reporter)


def phase(title: str, total: int, *, among_tests: bool = False) -> Phase:
    """A phase of ``total`` items, reporting where ``use_terminal`` said (or nowhere).

    ``among_tests``: the phase runs while tests report (the xdist controller): whole lines
    only, written from the caller's thread, so they never cut into pytest's own line."""
    if among_tests and _output is not None:
        return Phase(title, total, Terminal(_output.reporter, live=False), tick=None)
    return Phase(title, total, _output)


class Phase:
    """One long phase: its items' states, told to the output as they change."""

    def __init__(self, title: str, total: int, out: Terminal | None,
                 clock: Callable[[], float] = time.monotonic, tick: float | None = TICK
                 ) -> None:
        self.title = title
        self.total = total
        self.out = out
        self.clock = clock
        self.started = clock()
        self.state: dict[str, str] = {}  # item -> its latest state
        self.since: dict[str, float] = {}  # item -> when it began (while not done)
        self.done: set[str] = set()
        self.lock = threading.Lock()
        self.shown_at = self.started  # when a line was last written or updated
        self.shown_tenth = 0  # in a log: the tenth (1/STEPS) of the items last reported
        self.closed = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if out is not None and tick is not None:
            self._ticker = threading.Thread(target=self._tick, args=(tick,),
                                            name="azl-progress", daemon=True)
            self._ticker.start()

    # -- what the phases call ------------------------------------------------------------
    def begin(self, item: str) -> None:
        """``item`` is being worked on (its wait counts from now)."""
        with self.lock:
            self.since.setdefault(item, self.clock())
        self._show()

    def step(self, item: str, state: str) -> None:
        """``item`` reached ``state`` and goes on (``connected``, ``kernel``)."""
        with self.lock:
            self.since.setdefault(item, self.clock())
            self.state[item] = state
        self._show()

    def end(self, item: str, state: str) -> None:
        """``item`` is done, in ``state`` (``facts read``, ``unreachable``, ``up``)."""
        with self.lock:
            self.state[item] = state
            self.since.pop(item, None)
            self.done.add(item)
        self._show()

    def close(self) -> None:
        """The last line: what the phase did and in how long."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.out is not None:
            elapsed = self.clock() - self.started
            self.out.line(f"azl: {self.title}: {self._counts()} in {elapsed:.1f} s",
                          key=id(self))

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the text --------------------------------------------------------------------------
    def text(self) -> str:
        """``azl: <title>: 312 of 1000 · 298 facts read, 2 unreachable · 14 s · waiting
        longest: a (41 s), b (40 s)``."""
        now = self.clock()
        with self.lock:
            parts = [f"azl: {self.title}: {self._counts()}", f"{now - self.started:.0f} s"]
            if now - self.started >= DRAGS and self.since:
                oldest = sorted(self.since.items(), key=lambda kv: kv[1])[:SLOWEST]
                parts.append("waiting longest: " + ", ".join(
                    f"{item} ({now - began:.0f} s)" for item, began in oldest))
        return " · ".join(parts)

    def _counts(self) -> str:
        if self.total <= ITEMS_SHOWN:  # a few VMs: each one's stage
            items = sorted(set(self.state) | set(self.since))
            shown = [f"{item} {self.state.get(item, 'starting')}" for item in items]
            return ", ".join(shown) or "starting"
        tally: dict[str, int] = {}
        for state in self.state.values():
            tally[state] = tally.get(state, 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in
                           sorted(tally.items(), key=lambda kv: -kv[1]))
        return f"{len(self.done)} of {self.total}" + (f" · {counts}" if counts else "")

    # -- when to say it --------------------------------------------------------------------
    def _show(self) -> None:
        out = self.out
        if out is None or self.closed:
            return
        now = self.clock()
        with self.lock:
            if out.live:
                due = now - self.shown_at >= REFRESH
            else:
                tenth = len(self.done) * STEPS // self.total if self.total else 0
                due = tenth > self.shown_tenth or now - self.shown_at >= EVERY
                if due and len(self.done) == self.total:
                    due = False  # the closing line says it
                if due:
                    self.shown_tenth = max(self.shown_tenth, tenth)
            if not due:
                return
            self.shown_at = now
        text = self.text()
        if out.live:
            out.update(id(self), text)
        else:
            out.line(text)

    def _tick(self, every: float) -> None:
        """Between changes: the seconds go on, a log gets its line every ``EVERY``."""
        while not self._stop.wait(every):
            self._show()

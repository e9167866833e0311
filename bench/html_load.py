"""How long a page takes to load in headless Chromium, through the DevTools protocol.

A helper of bench/bench_reports.py (Debian's ``chromium``, for the bench only: not a test
dependency). Each measurement starts a fresh browser (``--remote-debugging-pipe``: the
protocol over fds 3/4, no port, no extra package), opens the page and reads the page's own
navigation timing: DOMContentLoaded and load (ms from the navigation's start, parsing, the
page's script and layout included), the first contentful paint, the DOM's size, and what one
keystroke in the page's filter box costs (the filter runs over every row, then a layout).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--mute-audio")
TIMINGS = """JSON.stringify((() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByType("paint")
    .find(p => p.name === "first-contentful-paint");
  return {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
          fcp: paint ? paint.startTime : -1, nodes: document.getElementsByTagName("*").length,
          ready: document.body.getAttribute("data-ready")};
})())"""
FILTER = """(() => {
  const box = document.getElementById("filter");
  if (!box) return -1;
  const t0 = performance.now();
  box.value = "no-such-test"; box.dispatchEvent(new Event("input"));
  document.body.offsetHeight;
  const t1 = performance.now();
  box.value = ""; box.dispatchEvent(new Event("input"));
  document.body.offsetHeight;
  return t1 - t0;
})()"""


@dataclass(frozen=True)
class PageLoad:
    dom_content_loaded_ms: float
    load_ms: float
    first_paint_ms: float
    elements: int
    filter_ms: float  # one keystroke in the filter box (-1: the page has none)
    wall_s: float  # navigate -> load event, as the harness saw it


class _Browser:
    def __init__(self, profile: Path) -> None:
        chromium = shutil.which("chromium")
        if chromium is None:
            raise SystemExit("html load: chromium is not installed (apt-get install chromium)")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def fds() -> None:  # the child's fd 3 reads our requests, fd 4 writes its answers
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)
            for fd in (3, 4):  # dup2 onto itself keeps close-on-exec
                os.set_inheritable(fd, True)

        self.proc = subprocess.Popen(
            [chromium, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "about:blank"], preexec_fn=fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._next = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 300.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(self._read())
        raise TimeoutError(method)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)


def load_once(page: Path) -> PageLoad:
    with tempfile.TemporaryDirectory(prefix="azl-chromium-") as profile:
        browser = _Browser(Path(profile))
        try:
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target,
                                   flatten=True)["sessionId"]
            browser.call("Page.enable", session)
            browser.events.clear()
            start = time.monotonic()
            browser.call("Page.navigate", session, url=page.resolve().as_uri())
            browser.wait_event("Page.loadEventFired")
            wall = time.monotonic() - start
            value = browser.call("Runtime.evaluate", session, expression=TIMINGS,
                                 returnByValue=True)["result"]["value"]
            t = json.loads(value)
            filter_ms = browser.call("Runtime.evaluate", session, expression=FILTER,
                                     returnByValue=True)["result"]["value"]
        finally:
            browser.close()
    return PageLoad(t["dcl"], t["load"], t["fcp"], t["nodes"], float(filter_ms), wall)


def best_load(page: Path, runs: int = 3) -> PageLoad:
    """The fastest of ``runs`` cold loads (by the load event)."""
    return min((load_once(page) for _ in range(runs)), key=lambda p: p.load_ms)

"""Commands on a Kubernetes node through a privileged debug pod and the exec API.

One debug pod per node per run (pinned with ``nodeName``, hostPID, host root at /host),
created on first use and deleted at ``close`` (and by the run's cleanup in any case). A
single exec stream runs ``sh -c 'exec nsenter -t 1 -m -u -i -n -p -- sh'``: a shell in the
node's namespaces, kept open and driven by the persistent-shell framing of ``shell.py``,
so a command costs one round trip instead of one exec request.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

from ..errors import CommandTimeout, ConnectionLost, HostUnreachable
from ..targets import HostSpec
from .protocol import CommandResult
from .shell import ShellSession, kill_script

NODE_SHELL = "exec nsenter -t 1 -m -u -i -n -p -- sh"
_STDOUT, _STDERR, _STATUS = 1, 2, 3


class _ExecStream:
    """Adapts an exec websocket to the shell session's ``Stream``.

    A reader thread pumps frames into buffers and wakes ``fileno()`` (a pipe): TLS keeps
    decrypted frames in its own buffer, invisible to select() on the socket itself.
    """

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._out = bytearray()
        self._err = bytearray()
        self._status = bytearray()
        self._err_tail = bytearray()  # for the error message when the stream dies early
        self._eof = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True, name="azl-kube-exec")
        self._thread.start()

    def _pump(self) -> None:
        ws = self._ws
        try:
            while ws.is_open():
                ws.update(timeout=1.0)
                chunks = [ws.read_channel(ch) if ch in ws._channels else b""
                          for ch in (_STDOUT, _STDERR, _STATUS)]
                if any(chunks):
                    with self._lock:
                        self._out += chunks[0]
                        self._err += chunks[1]
                        self._status += chunks[2]
                        self._err_tail = (self._err_tail + chunks[1])[-2000:]
                    self._wake()
        except Exception:
            pass
        finally:
            with self._lock:
                self._eof = True
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wfd, b"x")

    def send(self, data: bytes) -> None:
        if self._eof or not self._ws.is_open():
            raise EOFError("exec stream closed")
        self._ws.write_stdin(data)

    def fileno(self) -> int:
        return self._rfd

    def read_available(self) -> tuple[bytes, bytes, bool]:
        try:
            while os.read(self._rfd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._lock:
            out, err = bytes(self._out), bytes(self._err)
            self._out.clear()
            self._err.clear()
            eof = self._eof and not out and not err
        return out, err, eof

    def diagnostics(self) -> str:
        """What the stream said before it closed: stderr tail and the exec status."""
        with self._lock:
            parts = [self._err_tail.decode("utf-8", "replace").strip(),
                     _status_message(bytes(self._status))]
        return "; ".join(p for p in parts if p)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()
        self._thread.join(timeout=3)
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


class KubeTransport:
    """Runs shell scripts on the node ``spec.node`` of a cluster target."""

    def __init__(self, spec: HostSpec, context: Any) -> None:
        self.spec = spec
        self._cluster = context  # the target's ClusterContext
        self.node = spec.node or spec.name
        self.description = f"kube debug-pod on node {self.node}"
        self._pod: str | None = None
        self._shell: ShellSession | None = None
        self._lock = threading.Lock()

    def _context(self) -> Any:
        if self._cluster is None:
            raise HostUnreachable(self.spec.name, self.spec.address,
                                  f"cluster target {self.spec.target} is not resolved here")
        return self._cluster

    # -- connection -------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self._shell is not None and not self._shell.broken:
                return
            self._open()

    def _open(self) -> None:
        from ..cluster.pods import create_pod, debug_pod_manifest, pod_name, wait_running
        from ..errors import ClusterError

        ctx = self._context()
        if self._pod is None:
            name = pod_name("azl-debug", ctx.ledger.run_id, self.node)
            body = debug_pod_manifest(name, self.node, ctx.config.debug_image, ctx.ledger.labels)
            try:
                create_pod(ctx.api, ctx.ledger, body)
                wait_running(ctx.api, ctx.namespace, name, ctx.pod_timeout)
            except ClusterError as exc:
                raise HostUnreachable(self.spec.name, self.spec.address, str(exc)) from None
            self._pod = name
        # The first exec right after Running may race the runtime (or kwok's exec config).
        deadline = time.monotonic() + 10
        while True:
            stream: _ExecStream | None = None
            try:
                stream = self._exec_stream()
                shell = ShellSession(stream, self.spec.name, self._kill)
                probe = shell.run("echo azl-ready", timeout=30)
                if probe.rc == 0 and probe.stdout.strip() == "azl-ready":
                    self._shell = shell
                    return
                cause = f"probe exited {probe.rc}: {probe.stderr.strip()[:300]}"
                shell.close()
            except (ConnectionLost, CommandTimeout, OSError) as exc:
                said = stream.diagnostics() if stream is not None else ""
                cause = f"{exc}" + (f" ({said})" if said else "")
                if stream is not None:
                    stream.close()
            except Exception as exc:
                cause = _describe(exc)
            if time.monotonic() > deadline:
                raise HostUnreachable(
                    self.spec.name, self.spec.address,
                    f"no shell in debug pod {ctx.namespace}/{self._pod}: {cause}")
            time.sleep(0.5)

    def _exec_stream(self) -> _ExecStream:
        from kubernetes.stream import stream

        from ..cluster.k8s import client

        ctx = self._context()
        core = client.CoreV1Api(ctx.api)
        ws = stream(
            core.connect_get_namespaced_pod_exec, self._pod, ctx.namespace,
            command=["sh", "-c", NODE_SHELL], stdin=True, stdout=True, stderr=True,
            tty=False, _preload_content=False, binary=True,
        )
        return _ExecStream(ws)

    def _kill(self, pid: int) -> None:
        """Kill a timed-out command through a second exec of the same pod."""
        from ..cluster.pods import exec_once

        ctx = self._context()
        with contextlib.suppress(Exception):
            argv = ["sh", "-c", f"exec nsenter -t 1 -m -u -i -n -p -- sh -c '{kill_script(pid)}'"]
            exec_once(ctx.api, ctx.namespace, str(self._pod), argv, timeout=15)

    # -- commands ---------------------------------------------------------------------
    def run(
        self, script: str, *, timeout: float, stdin: bytes | None = None, sudo: bool = False
    ) -> CommandResult:
        # The node shell already runs as root: ``sudo`` changes nothing here.
        for attempt in (1, 2):
            self.connect()
            shell = self._shell
            assert shell is not None
            try:
                return shell.run(script, timeout=timeout, stdin=stdin)
            except ConnectionLost:
                self._shell = None
                if attempt == 2 or shell.run_started:
                    raise
            except CommandTimeout:
                if shell.broken:
                    self._shell = None
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        from ..cluster.pods import delete_pod

        with self._lock:
            if self._shell is not None:
                self._shell.close()
                self._shell = None
            if self._pod is not None:
                ctx = None
                with contextlib.suppress(HostUnreachable):
                    ctx = self._context()
                if ctx is not None:
                    with contextlib.suppress(Exception):  # else the run's cleanup deletes it
                        delete_pod(ctx.api, ctx.namespace, self._pod, timeout=30)
                self._pod = None


def _describe(exc: BaseException) -> str:
    from ..cluster.api import api_error

    status, message = api_error(exc)
    return f"{status} {message}" if status else f"{type(exc).__name__}: {exc}"


def _status_message(raw: bytes) -> str:
    """The message of a failed exec's status (channel 3), empty on success."""
    import json

    if not raw:
        return ""
    try:
        status = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return raw.decode("utf-8", "replace")[:500]
    if status.get("status") == "Success":
        return ""
    return str(status.get("message", ""))[:500]

"""Commands on a Kubernetes node through a privileged debug pod and the exec API.

One debug pod per node per run (pinned with ``nodeName``, hostPID, host root at /host),
created on first use and deleted by the run's cleanup (by the run label, all at once). A
single exec stream runs ``sh -c 'exec nsenter -t 1 -m -u -i -n -p -- sh'``: a shell in the
node's namespaces, kept open and driven by the persistent-shell framing of ``shell.py``,
so a command costs one round trip instead of one exec request.

The transport gets its cluster (API client, run ledger, namespace) as a value: the
``ClusterContext`` the target's resolution made (``cluster/target.py``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from websocket import WebSocketException

from ..errors import (
    ClusterError,
    CommandTimeout,
    ConnectionLost,
    HostUnreachable,
    PermissionDenied,
    PodSecurityRejected,
)
from ..targets import HostSpec
from .protocol import CommandResult
from .shell import ShellSession

if TYPE_CHECKING:
    from ..cluster.context import ClusterContext

NODE_SHELL = "exec nsenter -t 1 -m -u -i -n -p -- sh"
READY_WITHIN = 10.0  # the first exec right after Running may race the runtime: retried this long
_STDOUT, _STDERR, _STATUS = 1, 2, 3
# How an exec stream ends without anyone's fault in this process: the server closed it, the
# network dropped it. Anything else in the reader is a bug and is handed to the caller.
_STREAM_ENDED = (WebSocketException, OSError)
# How long the reader waits for a frame before it looks again whether the stream is open.
# Data wakes it at once, and so does close() (the socket is shut down); a short wait only
# costs CPU: a pool's 1000 idle streams waking every second each take the GIL 1000 times a
# second for the whole run.
_IDLE_WAIT = 30.0


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
        self._ended = ""  # why the stream ended, when it ended by an error
        self._failure: Exception | None = None  # a bug in the reader: raised to the caller
        self._eof = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True, name="azl-kube-exec")
        self._thread.start()

    def _pump(self) -> None:
        ws = self._ws
        try:
            while ws.is_open():
                ws.update(timeout=_IDLE_WAIT)
                chunks = [ws.read_channel(ch) if ch in ws._channels else b""
                          for ch in (_STDOUT, _STDERR, _STATUS)]
                if any(chunks):
                    with self._lock:
                        self._out += chunks[0]
                        self._err += chunks[1]
                        self._status += chunks[2]
                        self._err_tail = (self._err_tail + chunks[1])[-2000:]
                    self._wake()
        except _STREAM_ENDED as exc:
            with self._lock:
                self._ended = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug, not swallowed: re-raised in read_available
            with self._lock:
                self._failure = exc
        finally:
            with self._lock:
                self._eof = True
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # the pipe is full (already woken) or closed
            os.write(self._wfd, b"x")

    def send(self, data: bytes) -> None:
        if self._eof or not self._ws.is_open():
            raise EOFError("exec stream closed")
        try:
            self._ws.write_stdin(data)
        except _STREAM_ENDED as exc:  # closed by the server since the check above
            raise EOFError(f"exec stream closed: {exc}") from None

    def fileno(self) -> int:
        return self._rfd

    def read_available(self) -> tuple[bytes, bytes, bool]:
        """Buffered output; an error the reader thread did not expect is raised here."""
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            if self._failure is not None:
                raise self._failure
            out, err = bytes(self._out), bytes(self._err)
            self._out.clear()
            self._err.clear()
            eof = self._eof and not out and not err
        return out, err, eof

    def diagnostics(self) -> str:
        """What the stream said before it closed: stderr tail, exec status, how it ended."""
        with self._lock:
            parts = [self._err_tail.decode("utf-8", "replace").strip(),
                     _status_message(bytes(self._status)), self._ended]
        return "; ".join(p for p in parts if p)

    def close(self) -> None:
        # Send the close frame and shut the socket down (which wakes the reader) without
        # waiting for the server's reply: websocket-client would wait up to 3 s for it while
        # the reader thread, reading the same socket, may take it first (a 1000-node run
        # spent 90 s closing its streams, 32 at a time).
        with contextlib.suppress(*_STREAM_ENDED):
            self._ws.close(timeout=0)
        self._thread.join(timeout=3)
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


class KubeTransport:
    """Runs shell scripts on the node ``spec.node`` of a resolved cluster target."""

    always_root = True  # the node shell runs as root: ``sudo`` changes nothing (reads.py)

    def __init__(self, spec: HostSpec, context: ClusterContext,
                 stage: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.context = context
        self.stage = stage or (lambda _: None)  # progress: the debug pod's stages
        self.node = spec.node or spec.name
        self.description = f"kube debug-pod on node {self.node}"
        self._pod: str | None = None
        self._shell: ShellSession | None = None
        self._lock = threading.Lock()

    def _unreachable(self, cause: str) -> HostUnreachable:
        return HostUnreachable(self.spec.name, self.spec.address, cause)

    # -- connection -------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self._shell is not None and not self._shell.broken:
                return
            self._open()

    def _open(self) -> None:
        from ..cluster.pods import create_pod, debug_pod_manifest, pod_name, wait_running

        ctx = self.context
        if self._pod is None:
            name = pod_name("azl-debug", ctx.ledger.run_id, self.node)
            body = debug_pod_manifest(name, self.node, ctx.config.debug_image, ctx.ledger.labels)
            try:
                create_pod(ctx.api, ctx.ledger, body)
                self.stage("pod created")
                wait_running(ctx.api, ctx.namespace, name, ctx.pod_timeout, self.node)
                self.stage("pod running")
            except PodSecurityRejected:  # the namespace's level refused it: not a lost node
                raise
            except ClusterError as exc:
                raise self._unreachable(str(exc)) from None
            self._pod = name
        deadline = time.monotonic() + READY_WITHIN
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
            except PermissionDenied as exc:  # no retry can help: say what is missing
                if stream is not None:
                    stream.close()
                raise self._unreachable(str(exc)) from None
            except (ConnectionLost, CommandTimeout, OSError, EOFError, ClusterError) as exc:
                said = stream.diagnostics() if stream is not None else ""
                cause = f"{exc}" + (f" ({said})" if said else "")
                if stream is not None:
                    stream.close()
            if time.monotonic() > deadline:
                raise self._unreachable(
                    f"no shell in debug pod {ctx.namespace}/{self._pod}: {cause}")
            time.sleep(0.5)

    def _exec_stream(self) -> _ExecStream:
        from kubernetes.stream import stream

        from ..cluster.api import api_error, api_failure, exec_client
        from ..cluster.k8s import ApiException, client

        ctx = self.context
        core = client.CoreV1Api(exec_client(ctx.api))
        try:
            ws = stream(
                core.connect_get_namespaced_pod_exec, self._pod, ctx.namespace,
                command=["sh", "-c", NODE_SHELL], stdin=True, stdout=True, stderr=True,
                tty=False, _preload_content=False, binary=True,
            )
        except ApiException as exc:  # the client wraps every failed handshake in one
            raise api_failure(f"exec in pod {ctx.namespace}/{self._pod}", *api_error(exc),
                              attempted=("create", "pods/exec", ctx.namespace)) from None
        return _ExecStream(ws)

    def _kill(self, script: str) -> None:
        """Kill a timed-out command (``script``) through a second exec of the same pod."""
        from ..cluster.pods import exec_once

        ctx = self.context
        argv = ["sh", "-c", f"exec nsenter -t 1 -m -u -i -n -p -- sh -c '{script}'"]
        with contextlib.suppress(ClusterError):  # the shell session then gives up on it
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
        """End the node shell. The debug pod stays until the run's cleanup deletes every pod
        of the run in one request (a pool's worth of single deletes would queue behind the
        API rate limit); a reconnect in the same run reuses it."""
        with self._lock:
            if self._shell is not None:
                self._shell.close()
                self._shell = None
            self._pod = None


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

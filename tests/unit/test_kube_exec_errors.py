"""A refused exec handshake is a short error: the server's words, never the header dict
(issue 28 #10).

The handshake is real: the kubernetes client's own ``stream()`` (websocket-client underneath)
opens an exec against an HTTP server on loopback that answers as kube-apiserver does when it
cannot reach a node's kubelet: 500 with a ``Status`` body and the apiserver's response
headers. The body's message is the one the real bed's kube-apiserver gave for a stopped
kubelet (tests/integration/test_real_nodes.py::test_a_stopped_kubelet_is_one_short_
unreachable_error, 2026-12-07: "500 error dialing backend: dial tcp 198.18.2.207:10250:
connect: connection refused"); the server here is a stand-in for kube-apiserver (named as
such), the client code is the real one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pytest_azlinux.cluster.api import api_error, api_failure
from pytest_azlinux.cluster.k8s import ApiException, client

KUBELET_DOWN = "error dialing backend: dial tcp 198.18.7.12:10250: connect: connection refused"
STATUS_BODY = json.dumps({
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": KUBELET_DOWN, "code": 500,
}).encode()  # fmt: skip
HEADERS = {  # what kube-apiserver sends with an error Status
    "Audit-Id": "5b0f6c1e-8f0e-4a53-9f52-7d1c9e0a6b21",
    "Cache-Control": "no-cache, private",
    "Content-Type": "application/json",
    "X-Content-Type-Options": "nosniff",
    "X-Kubernetes-Pf-Flowschema-Uid": "0d5c2f7e-1b7c-4a7b-8a8e-5e0b1c2d3e4f",
}


class _ApiserverStandIn(BaseHTTPRequestHandler):
    """Stand-in for kube-apiserver: every request is answered 500 kubelet-unreachable."""

    def do_GET(self) -> None:
        self.send_response(500)
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(STATUS_BODY)))
        self.end_headers()
        self.wfile.write(STATUS_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def apiserver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiserverStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _refused_exec(host: str) -> ApiException:
    from kubernetes.stream import stream

    config = client.Configuration(host=host)
    core = client.CoreV1Api(client.ApiClient(config))
    with pytest.raises(ApiException) as caught:
        stream(core.connect_get_namespaced_pod_exec, "azl-debug-1", "azl-system",
               command=["sh"], stdin=True, stdout=True, stderr=True, tty=False,
               _preload_content=False, binary=True)  # fmt: skip
    return caught.value


def test_the_client_puts_every_header_in_the_reason(apiserver: str) -> None:
    """What the fix is about: the raw reason carries the header dict."""
    reason = str(_refused_exec(apiserver).reason)
    assert reason.startswith("Handshake status 500 Internal Server Error -+-+- {")
    assert "5b0f6c1e-8f0e-4a53-9f52-7d1c9e0a6b21" in reason and KUBELET_DOWN in reason


def test_refused_exec_is_the_servers_words_only(apiserver: str) -> None:
    status, message = api_error(_refused_exec(apiserver))
    assert (status, message) == (500, KUBELET_DOWN)
    error = api_failure("exec in pod azl-system/azl-debug-1", status, message,
                        attempted=("create", "pods/exec", "azl-system"))  # fmt: skip
    assert str(error) == f"exec in pod azl-system/azl-debug-1: 500 {KUBELET_DOWN}"
    for noise in ("-+-+-", "Audit-Id", "audit-id", "no-cache", "nosniff", "\n"):
        assert noise not in str(error)


@pytest.mark.parametrize(
    ("reason", "said"),
    [  # websocket-client before 1.6 put the body as a bytes repr; a body that is not JSON;
       # no body at all (a proxy in between): the reason phrase
     ("Handshake status 500 Internal Server Error -+-+- {'audit-id': 'x'} -+-+- "
      + repr(STATUS_BODY), KUBELET_DOWN),
     ("Handshake status 502 Bad Gateway -+-+- {'server': 'nginx'} -+-+- upstream timed out",
      "upstream timed out"),
     ("Handshake status 503 Service Unavailable -+-+- {'content-length': '0'} -+-+- None",
      "Service Unavailable")],
)  # fmt: skip
def test_other_handshake_shapes_keep_only_the_servers_words(reason: str, said: str) -> None:
    status, message = api_error(ApiException(status=0, reason=reason))
    assert message == said and status == int(reason.split()[2])

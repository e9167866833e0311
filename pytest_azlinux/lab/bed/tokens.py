"""TEST-BED STAND-IN for an identity provider (Microsoft Entra ID behind kubelogin): short-lived
bearer tokens, the authentication webhook that checks them, and the exec plugin that
prints them.

A token is ``azl1.<payload>.<mac>``: user, groups and expiry, signed with HMAC-SHA256 by a key
in the bed's pki directory. kube-apiserver asks the webhook (``serve``, a process of the bed)
about every bearer token it does not know (TokenReview; its webhook cache 1 s, its overall
token cache 10 s), so an expired token is refused, at most 10 s late, as an expired Entra ID
token would be. ``credential`` is the exec plugin a
kubeconfig names, as it would name kubelogin: it prints an ExecCredential with the token and
its ``expirationTimestamp``.

    python -m pytest_azlinux.lab.bed.idp serve --pki DIR --port N
    python -m pytest_azlinux.lab.bed.idp credential --pki DIR --user U [--group G] [--ttl S]
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import ssl
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

KEY_FILE = "token-signing.key"
PREFIX = "azl1"


def write_key(pki: Path) -> None:
    """A new signing key (mode 0600): tokens of an earlier bed stop working."""
    path = pki / KEY_FILE
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)


def _key(pki: Path) -> bytes:
    return bytes.fromhex((pki / KEY_FILE).read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(pki: Path, user: str, groups: Sequence[str] = (), ttl: float = 3600.0
         ) -> tuple[str, dt.datetime]:
    """A token for ``user`` in ``groups``, valid ``ttl`` seconds, and when it expires."""
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
    payload = _b64(json.dumps({"u": user, "g": list(groups),
                               "exp": int(expires.timestamp())}).encode())
    mac = hmac.new(_key(pki), f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest()
    return f"{PREFIX}.{payload}.{_b64(mac)}", expires


def verify(key: bytes, token: str, now: float | None = None) -> tuple[str, list[str]] | str:
    """(user, groups) of a valid token, or why it is not valid."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return "not a test-bed token"
    mac = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(mac, _unb64(parts[2])):
            return "bad signature"
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, TypeError):
        return "malformed token"
    if int(claims.get("exp", 0)) <= (now if now is not None else time.time()):
        return "token expired"
    return str(claims["u"]), [str(g) for g in claims.get("g", [])]


def review(key: bytes, body: bytes) -> dict[str, object]:
    """The TokenReview answer to a TokenReview request."""
    try:
        request = json.loads(body)
        token = str(request["spec"]["token"])
        api_version = str(request.get("apiVersion") or "authentication.k8s.io/v1")
    except (ValueError, KeyError, TypeError):
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "status": {"authenticated": False, "error": "malformed TokenReview"}}
    found = verify(key, token)
    status: dict[str, object]
    if isinstance(found, str):
        status = {"authenticated": False, "error": found}
    else:
        status = {"authenticated": True, "user": {"username": found[0], "groups": found[1]}}
    return {"apiVersion": api_version, "kind": "TokenReview", "status": status}


def webhook_kubeconfig(pki: Path, port: int) -> str:
    """The kubeconfig kube-apiserver reads to reach the webhook (the bed's CA)."""
    import yaml

    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "azl-token-webhook", "cluster": {
            "server": f"https://127.0.0.1:{port}/authenticate",
            "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {
            "cluster": "azl-token-webhook", "user": "kube-apiserver"}}],
        "current-context": "webhook",
    }, sort_keys=False)


def serve(pki: Path, port: int) -> None:
    key = _key(pki)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = json.dumps(review(key, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would fill the log; tokens must not be logged

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def credential(pki: Path, user: str, groups: Sequence[str], ttl: float) -> str:
    """An ExecCredential (client.authentication.k8s.io/v1) with a fresh token."""
    token, expires = mint(pki, user, groups, ttl)
    return json.dumps({
        "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"token": token,
                   "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}})


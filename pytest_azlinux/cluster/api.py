"""A Kubernetes API client for a target, retries with backoff, and bounded waits."""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import (
    ApiError,
    ClusterError,
    CredentialPluginFailed,
    PermissionDenied,
    TargetsError,
    WaitTimeout,
)
from .credentials import ExecPlugin, attach

T = TypeVar("T")
RETRIED = frozenset({409, 429, 500, 502, 503, 504})
# For calls whose 409 is an answer, not a race to retry: a create that finds the object
# already there, a delete of what is already being deleted.
NOT_ON_CONFLICT = RETRIED - {409}


DEFAULT_QPS = 50.0  # what client-go's rest clients of kubectl-like tools allow
DEFAULT_BURST = 100


class RateLimiter:
    """A token bucket shared by every client of one target: at most ``burst`` requests at
    once, then ``qps`` a second (client-go's client-side limit). ``qps`` 0: no limit."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take a token, sleeping until one is there."""
        if self.qps <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            self._tokens -= 1  # may go negative: later callers queue behind this one
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


def rate_limiter(api: Any) -> RateLimiter:
    """The limiter of ``api``'s configuration (one per target, shared by its exec clients)."""
    found = getattr(api.configuration, "azl_rate_limiter", None)
    if isinstance(found, RateLimiter):
        return found
    made = RateLimiter()
    api.configuration.azl_rate_limiter = made
    return made


def set_rate_limit(api: Any, qps: float, burst: int) -> None:
    """Limit the requests of ``api`` (and the clients made from its configuration)."""
    api.configuration.azl_rate_limiter = RateLimiter(qps, burst)


def _limited(api: Any) -> Any:
    """``api`` with every REST request taking a token of its target's limiter first; with an
    exec plugin's token, a 401 runs the plugin again and repeats the request once."""
    from .k8s import ApiException

    rest = api.rest_client
    request = rest.request

    def limited_request(*args: Any, **kwargs: Any) -> Any:
        rate_limiter(api).acquire()
        try:
            return request(*args, **kwargs)
        except ApiException as exc:
            plugin = getattr(api.configuration, "azl_exec_plugin", None)
            headers = kwargs.get("headers")
            if exc.status != 401 or plugin is None or not isinstance(headers, dict):
                raise
            plugin.invalidate()
            headers["authorization"] = plugin.header()
            rate_limiter(api).acquire()
            return request(*args, **kwargs)

    rest.request = limited_request
    return api


def load_client(kubeconfig: str, context: str | None, where: str) -> Any:
    """An ApiClient for ``kubeconfig``/``context``; configuration errors name the target.
    Its requests are rate limited (``set_rate_limit``; default ``DEFAULT_QPS``/``_BURST``)."""
    from kubernetes.config.config_exception import ConfigException

    from .k8s import client, config

    path = os.path.expanduser(kubeconfig)
    if not os.path.exists(path):
        raise TargetsError(f"{where}: field 'kubeconfig': file not found: {path}")
    cfg = client.Configuration()
    try:
        data, plugin = _split_exec_user(path, context)
        config.kube_config.KubeConfigLoader(
            config_dict=data, active_context=context,
            config_base_path=os.path.dirname(os.path.abspath(path)),
        ).load_and_set(cfg)
        if plugin is not None:
            attach(cfg, plugin)  # runs it once: a broken plugin stops the run here
    except ConfigException as exc:
        raise TargetsError(f"{where}: kubeconfig {path}: {exc}") from None
    except CredentialPluginFailed as exc:
        raise TargetsError(f"{where}: kubeconfig {path}: {exc}") from None
    cfg.retries = 0  # our own retry policy below
    # Hosts are prepared by up to 32 threads at once (--azl-connect-workers): a pool smaller
    # than that drops connections after use and every request pays a new TLS handshake.
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 64)
    return _limited(client.ApiClient(cfg))


def _split_exec_user(path: str, context: str | None) -> tuple[Any, ExecPlugin | None]:
    """The kubeconfig's data without its context user's ``exec`` block, and that block as an
    ``ExecPlugin`` (None when the user has none): the plugin is run here, not by the client."""
    import copy

    import yaml
    from kubernetes.config.config_exception import ConfigException

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigException(f"cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigException("not a kubeconfig (no mapping at the top)")
    name = context or data.get("current-context")
    ctx = next((c.get("context") or {} for c in data.get("contexts") or []
                if isinstance(c, dict) and c.get("name") == name), None)
    if not isinstance(ctx, dict):
        return data, None  # the client names the missing context
    users = [u for u in data.get("users") or []
             if isinstance(u, dict) and u.get("name") == ctx.get("user")]
    block = (users[0].get("user") or {}).get("exec") if users else None
    if not isinstance(block, dict):
        return data, None
    cluster = next((c.get("cluster") for c in data.get("clusters") or []
                    if isinstance(c, dict) and c.get("name") == ctx.get("cluster")), None)
    plugin = ExecPlugin.from_kubeconfig(block, os.path.dirname(os.path.abspath(path)), cluster)
    data = copy.deepcopy(data)
    for user in data["users"]:
        if isinstance(user, dict) and user.get("name") == ctx.get("user"):
            (user.get("user") or {}).pop("exec", None)
    return data, plugin


def exec_client(api: Any) -> Any:
    """An ApiClient of its own for one exec stream, on ``api``'s configuration.

    ``kubernetes.stream.stream`` swaps the client's ``call_api`` while it opens a stream: on a
    client shared by threads (hosts are prepared concurrently), another thread's REST call or
    stream then goes through the wrong path ("Handshake status 200 OK"), and a racing restore
    can leave the swap in place.
    """
    from .k8s import client

    rate_limiter(api).acquire()  # opening the stream is one request
    return client.ApiClient(api.configuration)


def api_error(exc: BaseException) -> tuple[int, str]:
    """(status, message) of an ApiException, the server's message if there is one.

    A refused exec stream comes as status 0 with "Handshake status 403 Forbidden ..." and
    the server's answer in the reason: its status is read from there."""
    import json

    status = int(getattr(exc, "status", 0) or 0)
    body = getattr(exc, "body", None)
    message = str(getattr(exc, "reason", "") or exc)
    if body:
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(body).get("message", message)
    handshake = _HANDSHAKE.match(message)
    if handshake is not None:
        status = status or int(handshake["status"])
        message = _handshake_message(handshake)
    return status, message


# websocket-client's refused handshake: "Handshake status 500 Internal Server Error -+-+-
# {every response header} -+-+- body" (the body as text, or as a bytes repr in older
# releases). The header dict (audit ids, dates, cache headers) is noise in a message.
_HANDSHAKE = re.compile(
    r"Handshake status (?P<status>\d{3}) ?(?P<reason>[^\n]*?)"
    r"(?: -\+-\+- (?P<headers>.*?) -\+-\+- (?P<body>.*))?$", re.DOTALL)


def _handshake_message(found: re.Match[str]) -> str:
    """The server's own words from a refused handshake: the Status body's ``message``, else
    the body's text, else the HTTP reason phrase; never the header dict."""
    import ast
    import json

    body = (found["body"] or "").strip()
    if body.startswith(("b'", 'b"')):
        with contextlib.suppress(ValueError, SyntaxError):
            body = ast.literal_eval(body).decode("utf-8", "replace").strip()
    if body and body != "None":
        with contextlib.suppress(ValueError, AttributeError):
            said = json.loads(body).get("message")
            if said:
                return str(said)
        return body[:500]
    return found["reason"].strip() or "websocket handshake refused"


# RBAC's refusal: 'pods "x" is forbidden: User "u" cannot create resource "pods/exec" in API
# group "" in the namespace "azl-system"' (quotes escaped when it comes inside a handshake).
_FORBIDDEN = re.compile(
    r'User \\*"(?P<user>[^"\\]*)\\*" cannot (?P<verb>[a-z]+) resource '
    r'\\*"(?P<resource>[^"\\]+)\\*" in API group \\*"(?P<group>[^"\\]*)\\*"'
    r'(?: in the namespace \\*"(?P<namespace>[^"\\]+)\\*")?')


def api_failure(
    what: str, status: int, message: str, *,
    attempted: tuple[str, str, str | None] | None = None,
) -> ApiError:
    """The error of a failed call: ``PermissionDenied`` for an RBAC refusal (naming verb,
    resource and namespace), else ``ApiError``.

    ``attempted`` (verb, resource, namespace): what to name when the server refuses without
    saying why ('pods "x" is forbidden: '), as kube-apiserver does when a websocket exec
    has ``get`` on pods/exec but not ``create``."""
    found = _FORBIDDEN.search(message) if status == 403 else None
    if found is None:
        bare = status == 403 and re.search(r'is forbidden: (?:\\*",|$)', message)
        if attempted is not None and bare:
            verb, resource, namespace = attempted
            return PermissionDenied(
                f"{what}; refused without a reason", message, verb=verb, resource=resource,
                namespace=namespace, user="this identity")
        return ApiError(what, status, message)
    resource = found["resource"] + (f".{found['group']}" if found["group"] else "")
    return PermissionDenied(what, message, verb=found["verb"], resource=resource,
                            namespace=found["namespace"], user=found["user"])


def retry(
    call: Callable[[], T], what: str, *, attempts: int = 6, base: float = 0.2,
    retried: frozenset[int] = RETRIED,
) -> T:
    """Run an API call, retrying conflicts (409), throttling (429) and 5xx with backoff.

    A 429's Retry-After is honoured. Every failure leaves as a ``ClusterError`` naming
    ``what`` (an infrastructure ERROR, never a FAIL): an error status as ``ApiError``, whose
    ``status`` tells a 404 from a 409; a connection that fails on every attempt as
    ``ClusterError``. A raw client exception never escapes.
    """
    from urllib3.exceptions import HTTPError

    from .k8s import ApiException

    delay = base
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ApiException as exc:
            status, message = api_error(exc)
            if status not in retried or attempt == attempts:
                raise api_failure(what, status, message) from None
            wait = delay
            headers = getattr(exc, "headers", None) or {}
            if status == 429 and headers.get("Retry-After", "").isdigit():
                wait = max(wait, float(headers["Retry-After"]))
        except HTTPError as exc:
            if attempt == attempts:
                raise ClusterError(f"{what}: API server unreachable: {exc}") from None
            wait = delay
        time.sleep(wait * (1 + random.random() / 2))
        delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def wait_for(
    check: Callable[[], tuple[bool, str]], what: str, timeout: float, interval: float = 0.2
) -> str:
    """Poll ``check`` (-> done, description of the current state) until done or timeout."""
    deadline = time.monotonic() + timeout
    seen = "nothing yet"
    while True:
        done, seen = check()
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:g} s waiting for {what}; last seen: {seen}")
        time.sleep(interval)
        interval = min(interval * 1.5, 2.0)

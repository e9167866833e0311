"""Kubeconfig users whose credential comes from an ``exec`` plugin (kubelogin for Microsoft
Entra ID, ``aws eks get-token``...): run it, use its token, run it again before it expires.

The kubernetes client runs such plugins itself, but logs and drops their failures (the run
then goes on unauthenticated) and waits for them without a limit. Here a plugin runs with
a timeout and without a terminal; a failure names the command and its stderr: a
``CredentialPluginFailed``, which target resolution turns into a one-line usage error
(exit 4) before any test, and which is an ERROR if it happens mid-run. The token is
refreshed through the plugin when it nears its ``expirationTimestamp``, and once more when
the server answers 401 (a token revoked or expired early).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CredentialPluginFailed

PLUGIN_TIMEOUT = 120.0  # a plugin that asks a remote identity provider for a token
STDERR_SHOWN = 400  # characters of a failing plugin's stderr in the message


@dataclass
class ExecPlugin:
    """A kubeconfig ``user.exec`` block and the token it last printed."""

    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    api_version: str = "client.authentication.k8s.io/v1"
    cwd: str | None = None
    cluster: Mapping[str, Any] | None = None  # given to the plugin when provideClusterInfo
    timeout: float = PLUGIN_TIMEOUT
    _token: str | None = None
    _expires: dt.datetime | None = None
    _obtained: dt.datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_kubeconfig(
        cls, block: Mapping[str, Any], cwd: str | None, cluster: Mapping[str, Any] | None,
    ) -> ExecPlugin:
        if not block.get("command"):
            raise CredentialPluginFailed("exec plugin: the kubeconfig user's exec has no command")
        env = {str(e["name"]): str(e["value"]) for e in block.get("env") or []
               if isinstance(e, Mapping) and "name" in e}
        return cls(str(block["command"]), [str(a) for a in block.get("args") or []], env,
                   str(block.get("apiVersion") or cls.api_version), cwd,
                   cluster if block.get("provideClusterInfo") else None)

    @property
    def described(self) -> str:
        return shlex.join([self.command, *self.args])

    def header(self) -> str:
        """``Bearer <token>``, running the plugin first when there is none or it is near its
        expiry."""
        with self._lock:
            if self._token is None or self._near_expiry():
                self._run()
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Forget the token (the server refused it): the next ``header()`` runs the plugin."""
        with self._lock:
            self._token = None

    def _near_expiry(self) -> bool:
        if self._expires is None or self._obtained is None:
            return False
        # Refresh with a quarter of the lifetime left (at most a minute before the end): a
        # request signed just before expiry must not arrive after it.
        margin = min(dt.timedelta(minutes=1), (self._expires - self._obtained) / 4)
        return dt.datetime.now(dt.UTC) >= self._expires - margin

    def _run(self) -> None:
        info: dict[str, Any] = {"apiVersion": self.api_version, "kind": "ExecCredential",
                                "spec": {"interactive": False}}
        if self.cluster is not None:
            info["spec"]["cluster"] = dict(self.cluster)
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        where = f"exec plugin `{self.described}`"
        try:
            proc = subprocess.run(
                [self.command, *self.args], stdin=subprocess.DEVNULL, capture_output=True,
                env=env, cwd=self.cwd or None, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise CredentialPluginFailed(f"{where}: command not found: {self.command}") from None
        except PermissionError as exc:
            raise CredentialPluginFailed(f"{where}: cannot run it: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise CredentialPluginFailed(
                f"{where}: no credential within {self.timeout:g} s (an interactive login? "
                "log in first, e.g. `kubelogin get-token`, or use a non-interactive mode)"
            ) from None
        stderr = " ".join(proc.stderr.decode(errors="replace").split())[-STDERR_SHOWN:]
        if proc.returncode != 0:
            raise CredentialPluginFailed(
                f"{where} exited {proc.returncode}: {stderr or '(no stderr)'}")
        try:
            data = json.loads(proc.stdout)
            status = data["status"]
            token = status["token"]
        except (ValueError, KeyError, TypeError):
            raise CredentialPluginFailed(
                f"{where} printed no ExecCredential with status.token"
                + (f" (stderr: {stderr})" if stderr else "")) from None
        if data.get("apiVersion") != self.api_version:
            raise CredentialPluginFailed(
                f"{where} answered {data.get('apiVersion')}, expected {self.api_version}")
        self._token = str(token)
        self._obtained = dt.datetime.now(dt.UTC)
        self._expires = _timestamp(status.get("expirationTimestamp"), where)


def _timestamp(value: object, where: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise CredentialPluginFailed(
            f"{where}: expirationTimestamp {value!r} is not an RFC 3339 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def attach(cfg: Any, plugin: ExecPlugin) -> None:
    """Make ``cfg`` (a client Configuration) authenticate with ``plugin``'s token, refreshed
    before every request that needs it. Runs the plugin once now: a failure is raised here."""
    def refresh(config: Any) -> None:
        config.api_key["BearerToken"] = plugin.header()

    cfg.api_key = {"BearerToken": plugin.header()}
    cfg.refresh_api_key_hook = refresh
    cfg.azl_exec_plugin = plugin

"""The test bed's stand-in identity provider: its tokens, the webhook's TokenReview answers
and the ExecCredential its plugin prints."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pytest_azlinux.lab.bed import tokens


def _pki(tmp_path: Path) -> Path:
    tokens.write_key(tmp_path)
    return tmp_path


def _review(pki: Path, token: str) -> dict[str, object]:
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                       "spec": {"token": token}}).encode()
    answer = tokens.review(tokens._key(pki), body)
    assert answer["apiVersion"] == "authentication.k8s.io/v1"
    status = answer["status"]
    assert isinstance(status, dict)
    return status


def test_a_fresh_token_names_its_user_and_groups(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    token, _ = tokens.mint(pki, "azl-ci@example.test", ["azl-testers"], ttl=60)
    assert _review(pki, token) == {"authenticated": True, "user": {
        "username": "azl-ci@example.test", "groups": ["azl-testers"]}}


def test_expired_forged_and_foreign_tokens_are_refused(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    token, _ = tokens.mint(pki, "u", ttl=60)
    key = tokens._key(pki)
    assert tokens.verify(key, token, now=time.time() + 61) == "token expired"
    head, payload, _mac = token.split(".")
    assert tokens.verify(key, f"{head}.{payload}.AAAA") == "bad signature"
    tokens.write_key(pki)  # a new bed: the old bed's tokens stop working
    assert _review(pki, token) == {"authenticated": False, "error": "bad signature"}
    assert _review(pki, "eyJhbGciOi.a.b")["error"] == "not a test-bed token"


def test_the_plugin_prints_an_exec_credential(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    data = json.loads(tokens.credential(pki, "u", ["g"], 30))
    assert data["apiVersion"] == "client.authentication.k8s.io/v1"
    assert data["kind"] == "ExecCredential"
    assert data["status"]["expirationTimestamp"].endswith("Z")
    assert _review(pki, data["status"]["token"])["authenticated"] is True

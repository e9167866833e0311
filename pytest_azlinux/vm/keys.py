"""SSH keys made in-process (no ssh-keygen per host: the lab starts many hosts at once)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def ensure_ed25519(path: Path, comment: str) -> str:
    """Write an OpenSSH ed25519 key pair at ``path`` (+ ``.pub``) unless present; return pub."""
    pub_path = path.with_name(path.name + ".pub")
    if path.exists() and pub_path.exists():
        return pub_path.read_text().strip()
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode() + f" {comment}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    pub_path.write_text(public + "\n")
    return public

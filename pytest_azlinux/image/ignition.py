"""The Ignition config of one instance, and how it reaches the machine: qemu's fw_cfg.

Ignition (Azure Container Linux, Flatcar, Fedora CoreOS) reads its config on the first
boot, in the initramfs. On qemu it reads the fw_cfg entry ``opt/org.flatcar-linux/config``
(Flatcar's and ACL's Ignition) or ``opt/com.coreos/config`` (upstream Ignition, CoreOS):
the instance gets both, from the same file, so either family finds it.

The config (spec 3.3.0: read by every Ignition since 2.14, ACL's and Flatcar's included)
does what the cloud-init seed does: the login user with the run's public key, passwordless
sudo, the SSH host key made by the harness (pinned in the run's known_hosts, so the first
connection is already strict), the host name, and a static address on the run's bridge
with no gateway (a systemd-networkd unit matched by MAC address). A config of the user's
(``ignition: PATH``) is merged in through ``ignition.config.merge`` (inline, a data URL).

The file holds the instance's throwaway host private key (as the seed does): it is
written mode 0600 into the instance's directory, removed with it, and never logged. The
run's client private key is never in it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TargetsError

SPEC_VERSION = "3.3.0"
FW_CFG_NAMES = ("opt/org.flatcar-linux/config", "opt/com.coreos/config")
NETWORK_UNIT = "/etc/systemd/network/10-azl-image.network"

# What a failed Ignition writes to the serial console: Ignition's own critical line
# ("Ignition failed: ..."), systemd's unit failure on ACL/Flatcar/CoreOS, and CoreOS's
# emergency banner. Seen there, the boot will not go on: waiting for sshd is pointless.
CONSOLE_FAILURE = re.compile(
    r"Ignition failed|Ignition has failed|Failed to start ignition-\S+|"
    r"ignition\[\d+\]: .*(?:CRITICAL|failed to fetch config)",
)


@dataclass(frozen=True)
class IgnitionSpec:
    """What goes into one instance's config."""

    hostname: str
    user: str
    authorized_key: str  # the run's client public key
    host_key_private: str  # OpenSSH ed25519 private key (PEM text)
    host_key_public: str
    mac: str
    address: str
    prefix: int
    merge: str | None = None  # a config of the user's (JSON text), merged in


def _data(text: str) -> dict[str, str]:
    return {"source": "data:;base64," + base64.b64encode(text.encode()).decode()}


def _file(path: str, text: str, mode: int) -> dict[str, Any]:
    return {"path": path, "mode": mode, "overwrite": True, "contents": _data(text)}


def network_unit(spec: IgnitionSpec) -> str:
    return (
        f"[Match]\nMACAddress={spec.mac}\n\n[Network]\nAddress={spec.address}/{spec.prefix}\n"
        "DHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )


def ignition_config(spec: IgnitionSpec) -> dict[str, Any]:
    """The Ignition 3.3 config of one instance, as a JSON document."""
    ignition: dict[str, Any] = {"version": SPEC_VERSION}
    if spec.merge is not None:
        ignition["config"] = {"merge": [_data(spec.merge)]}
    files = [
        _file("/etc/hostname", spec.hostname + "\n", 0o644),
        _file("/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {spec.hostname}\n", 0o644),
        _file(f"/etc/sudoers.d/azl-{spec.user}", f"{spec.user} ALL=(ALL) NOPASSWD:ALL\n", 0o440),
        _file("/etc/ssh/ssh_host_ed25519_key", spec.host_key_private, 0o600),
        _file("/etc/ssh/ssh_host_ed25519_key.pub", spec.host_key_public + "\n", 0o644),
        _file(NETWORK_UNIT, network_unit(spec), 0o644),
    ]
    return {
        "ignition": ignition,
        "passwd": {"users": [{"name": spec.user, "sshAuthorizedKeys": [spec.authorized_key]}]},
        "storage": {"files": files},
    }


def write_config(spec: IgnitionSpec, out: Path) -> Path:
    """Write the instance's config at ``out``, readable by its owner only."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(ignition_config(spec), fh, indent=1)
    return out


def fw_cfg_args(config: Path) -> list[str]:
    """qemu's arguments that hand ``config`` to Ignition under both names it is read by."""
    args: list[str] = []
    for name in FW_CFG_NAMES:
        args += ["-fw_cfg", f"name={name},file={config}"]
    return args


def load_user_config(target: str, path: str) -> str:
    """The user's Ignition config (``ignition: PATH``) as JSON text; a file that cannot be
    one is a usage error naming the file and what is wrong (one line)."""
    where = f"target {target!r}: field 'ignition'"
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TargetsError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetsError(
            f"{where}: {path}: not JSON (line {exc.lineno}: {exc.msg}); an Ignition config is "
            "JSON (Butane YAML must be translated with butane first)"
        ) from None
    version = doc.get("ignition", {}).get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version.startswith("3."):
        raise TargetsError(
            f"{where}: {path}: ignition.version is {version!r}; a spec 3.x config is needed"
        )
    return text


SECRET_LINE = re.compile(r"PRIVATE KEY|data:[^,\s]*;base64,|\"source\": \"data:")


def redact(text: str) -> str:
    """``text`` without the lines that may carry the config's secrets (an Ignition that
    logs the config it read to the console prints the host key's data URL)."""
    return "\n".join(
        "(a line of the Ignition config, not shown)" if SECRET_LINE.search(line) else line
        for line in text.splitlines()
    )


def console_failure(text: str) -> str | None:
    """The console line that says Ignition failed, or None."""
    for line in text.splitlines():
        if CONSOLE_FAILURE.search(line):
            return line.strip()
    return None

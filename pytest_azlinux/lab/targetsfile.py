"""The targets file a lab writes: one ``ssh`` target named ``lab`` with pinned host keys."""

from __future__ import annotations

from pathlib import Path

import yaml

from .hostfs import USER
from .state import LabHost, LabState
from .variants import load_variant

TARGET_NAME = "lab"


def write_known_hosts(state: LabState, path: Path) -> None:
    lines = []
    for host in state.hosts:
        key = host.host_key_pub.read_text().split()
        lines.append(f"{host.address} {key[0]} {key[1]}")
    path.write_text("\n".join(lines) + "\n")


def _host_entry(host: LabHost) -> dict[str, object]:
    entry: dict[str, object] = {"name": host.name, "address": host.address,
                                "scratch_devices": [host.loop] if host.loop else []}
    profile = load_variant(host.variant).profile
    if profile:
        entry["profile"] = profile
    return entry


def write_targets(state: LabState, state_dir: Path) -> Path:
    """Write ``known_hosts`` and ``targets.yaml`` into the state dir; return the latter."""
    known_hosts = state_dir / "known_hosts"
    write_known_hosts(state, known_hosts)
    target = {
        "kind": "ssh",
        "description": f"lab {state.name}: {len(state.hosts)} namespaced hosts on {state.subnet}",
        "defaults": {
            "user": USER,
            "identity_file": str(state_dir / "id"),
            "known_hosts": str(known_hosts),
            "host_key_policy": "strict",
            "sudo": False,
            "connect_timeout": 10,
        },
        "hosts": [_host_entry(h) for h in sorted(state.hosts, key=lambda h: h.index)],
    }
    path = state_dir / "targets.yaml"
    header = f"# Written by `azl lab up` for lab {state.name!r}; rewritten on every up.\n"
    path.write_text(header + yaml.safe_dump({"targets": {TARGET_NAME: target}}, sort_keys=False))
    return path

"""The targets file a lab writes: one ``ssh`` target named ``lab`` with pinned host keys."""

from __future__ import annotations

from pathlib import Path

import yaml

from .hostfs import USER
from .state import LabState

TARGET_NAME = "lab"


def write_known_hosts(state: LabState, path: Path) -> None:
    lines = []
    for host in state.hosts:
        key = host.host_key_pub.read_text().split()
        lines.append(f"{host.address} {key[0]} {key[1]}")
    path.write_text("\n".join(lines) + "\n")


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
        "hosts": [
            {"name": h.name, "address": h.address, "scratch_devices": [h.loop] if h.loop else []}
            for h in sorted(state.hosts, key=lambda h: h.index)
        ],
    }
    path = state_dir / "targets.yaml"
    header = f"# Written by `azl lab up` for lab {state.name!r}; rewritten on every up.\n"
    path.write_text(header + yaml.safe_dump({"targets": {TARGET_NAME: target}}, sort_keys=False))
    return path

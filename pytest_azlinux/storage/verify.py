"""Known data and its verification, shared by every snapshot flow (host and CSI).

A dataset is written on the target with random content; its manifest (path -> sha256) is
kept on our side. Verification re-reads the tree and names every file that is missing,
changed or unexpected.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..transport.protocol import CommandResult

Manifest = dict[str, str]


class Runner(Protocol):
    def run(self, cmd: str, *args: object, timeout: float | None = None,
            sudo: bool | None = None, check: bool = False) -> CommandResult: ...


@dataclass(frozen=True)
class DatasetSpec:
    """How much data to write: ``files`` files in ``dirs`` directories, sizes cycling."""

    files: int = 24
    dirs: int = 4
    sizes_kib: tuple[int, ...] = (4, 64, 1024, 4096)


def write_dataset_script(root: str, spec: DatasetSpec) -> str:
    """Shell that writes random files under ``root`` (created if needed)."""
    lines = [f"set -e; mkdir -p {shlex.quote(root)}; cd {shlex.quote(root)}"]
    for i in range(spec.files):
        size = spec.sizes_kib[i % len(spec.sizes_kib)]
        path = f"d{i % spec.dirs}/f{i:03d}.bin"
        lines.append(f"mkdir -p d{i % spec.dirs}; "
                     f"head -c {size * 1024} /dev/urandom > {path}")
    lines.append("sync")
    return "; ".join(lines)


def manifest_script(root: str) -> str:
    """Shell printing ``sha256  ./path`` for every regular file under ``root``."""
    return (f"cd {shlex.quote(root)} && find . -type f -print0 | sort -z | "
            "xargs -0 -r sha256sum")


def parse_manifest(text: str) -> Manifest:
    out: Manifest = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, path = line.partition("  ")
        out[path.removeprefix("./")] = digest.strip()
    return out


def compare_manifests(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """Differences as sentences naming each file; empty when the data is intact."""
    problems = []
    for path in sorted(expected):
        if path not in actual:
            problems.append(f"{path}: missing")
        elif actual[path] != expected[path]:
            problems.append(f"{path}: content changed (sha256 {actual[path][:12]}..., "
                            f"expected {expected[path][:12]}...)")
    problems.extend(f"{path}: unexpected file" for path in sorted(set(actual) - set(expected)))
    return problems


def read_manifest(runner: Runner, root: str, *, sudo: bool = True) -> Manifest:
    result = runner.run(manifest_script(root), sudo=sudo, timeout=300, check=True)
    return parse_manifest(result.stdout)

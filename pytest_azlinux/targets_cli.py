"""``azl targets [--file PATH]``: list and validate a targets file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .targets import DEFAULT_FILE_NAME, load_targets


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("targets", help="list and validate targets")
    p.add_argument("--file", type=Path, help=f"targets file (default: ./{DEFAULT_FILE_NAME})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.file or (Path(DEFAULT_FILE_NAME) if Path(DEFAULT_FILE_NAME).exists() else None)
    targets = load_targets(path)
    print(f"targets from {path or 'built-in defaults'}:")
    for name, target in sorted(targets.targets.items()):
        print(f"  {name:24} {target.kind:8} {target.description or ''}")
    return 0

"""The ``azl`` command: ``azl lab ...``, ``azl report ...``, ``azl targets``, ``azl cluster``.

Each command group lives beside what it drives and registers its own sub-commands
(``register(subparsers)``); a handler returns the exit code. Only the group named on the
command line is imported (``azl report ...`` does not load the lab or the cluster client,
half a second of imports); ``azl --help`` and anything else load them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .errors import AzlError

# command group -> module with register(subparsers)
GROUPS: dict[str, str] = {
    "cluster": "pytest_azlinux.cluster.cli",
    "lab": "pytest_azlinux.lab.cli",
    "report": "pytest_azlinux.report.cli",
    "targets": "pytest_azlinux.targets_cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``azl`` parser with every group, or only the group ``only``."""
    parser = argparse.ArgumentParser(prog="azl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, module in GROUPS.items():
        if only is not None and name != only:
            continue
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words and words[0] in GROUPS else None)
    args = parser.parse_args(words)
    try:
        return int(args.func(args) or 0)
    except AzlError as exc:
        print(f"azl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("azl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

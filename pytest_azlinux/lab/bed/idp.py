"""The commands of the bed's stand-in identity provider (``tokens.py``): the webhook server
and the exec plugin. A module of its own, so ``python -m`` runs it without importing it twice
(the bed package imports ``tokens``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .tokens import credential, serve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_azlinux.lab.bed.idp")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="the authentication webhook")
    s.add_argument("--pki", type=Path, required=True)
    s.add_argument("--port", type=int, required=True)
    c = sub.add_parser("credential", help="print an ExecCredential (an exec plugin)")
    c.add_argument("--pki", type=Path, required=True)
    c.add_argument("--user", required=True)
    c.add_argument("--group", action="append", default=[])
    c.add_argument("--ttl", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.pki, args.port)
        return 0
    try:
        sys.stdout.write(credential(args.pki, args.user, args.group, args.ttl) + "\n")
    except OSError as exc:
        print(f"azl test-bed credential: cannot read the signing key: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

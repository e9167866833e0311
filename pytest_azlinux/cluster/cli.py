"""``azl cluster rbac``: the ClusterRole, Role (and bindings) a run needs, as YAML for
``kubectl apply -f -``, or the docs' table of the rules (``--markdown``)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, cast

from ..errors import ConfigError
from .rbac import FEATURES, Feature, Subjects, manifests, render_markdown, render_yaml

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def register(sub: Any) -> None:
    group = sub.add_parser("cluster", help="cluster targets: what a run needs from the cluster")
    cmds = group.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    p: argparse.ArgumentParser = cmds.add_parser(
        "rbac", help="print the helper namespace, ClusterRole, Role and bindings a run needs",
        description="Print the least-privilege RBAC objects of a run on a cluster target, "
        "one rule per reason (a comment above it). Apply with `kubectl apply -f -`.")
    p.add_argument("--namespace", default="azl-system",
                   help="the target's helper namespace (default: azl-system)")
    p.add_argument("--features", default=",".join(FEATURES),
                   help="what the runs use, comma-separated, of: " + "; ".join(
                       f"{k} ({v})" for k, v in FEATURES.items()) + ". Default: all")
    p.add_argument("--service-account", action="append", default=[], metavar="NS/NAME",
                   help="bind the roles to this service account (repeatable)")
    p.add_argument("--user", action="append", default=[],
                   help="bind the roles to this user (repeatable; on AKS with Entra ID, "
                   "the user's object id or UPN)")
    p.add_argument("--group", action="append", default=[],
                   help="bind the roles to this group (repeatable; an Entra ID group id)")
    p.add_argument("--no-namespace", action="store_true",
                   help="leave out the Namespace (it exists, made and labelled by you)")
    p.add_argument("--markdown", action="store_true",
                   help="print the table of every rule (docs/cluster.md, Permissions)")
    p.set_defaults(func=run)


def _features(raw: str) -> list[Feature]:
    names = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise ConfigError(f"--features: unknown {', '.join(unknown)} "
                          f"(known: {', '.join(FEATURES)})")
    return [cast(Feature, f) for f in names]


def run(args: argparse.Namespace) -> int:
    if not _DNS_LABEL.fullmatch(args.namespace):
        raise ConfigError(f"--namespace: {args.namespace!r} is not a namespace name")
    for sa in args.service_account:
        ns, _, name = sa.partition("/")
        if not ns or not name:
            raise ConfigError(f"--service-account: expected NAMESPACE/NAME, got {sa!r}")
    if args.markdown:
        sys.stdout.write(render_markdown(args.namespace))
        return 0
    subjects = Subjects(args.service_account, args.user, args.group)
    objects = manifests(args.namespace, _features(args.features), subjects,
                        with_namespace=not args.no_namespace)
    sys.stdout.write(render_yaml(objects))
    return 0

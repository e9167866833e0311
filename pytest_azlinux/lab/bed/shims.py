"""TEST-BED SIMULATION: how exec into a pod on a simulated node reaches a lab host.

kwok runs pod exec commands on this machine. Its per-pod ``Exec`` (``stages.py``) puts
``<root>/podbin`` first in PATH and names the pod's node in ``AZL_TESTBED_NODE``; the ``sh``
shim there enters the lab host bound to that node (``<root>/nodes/<node>.enter`` holds the
argv that enters it), and the ``nsenter`` shim takes "the node's namespaces" (``-t 1``) as
"where the sh shim already is".
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

SH_SHIM = """#!/bin/sh
# TEST-BED SIMULATION (pytest-azlinux cluster test bed): kwok runs pod exec commands on this
# machine; this stand-in for sh moves them into the lab host bound to the pod's simulated
# node (kwok's Exec for the pod sets AZL_TESTBED_NODE).
if [ -n "$AZL_TESTBED_NODE" ] && [ -z "$AZL_TESTBED_INSIDE" ]; then
    f="$AZL_TESTBED_ROOT/nodes/$AZL_TESTBED_NODE.enter"
    if [ ! -r "$f" ]; then
        echo "azl test bed: simulated node $AZL_TESTBED_NODE is bound to no lab host" >&2
        exit 126
    fi
    export AZL_TESTBED_INSIDE=1
    # shellcheck disable=SC2046
    exec $(cat "$f") /bin/sh "$@"
fi
exec /bin/sh "$@"
"""

NSENTER_SHIM = """#!/bin/sh
# TEST-BED SIMULATION: in a pod on a simulated node, "nsenter -t 1 ..." means "the node's
# namespaces"; the sh shim already entered the bound lab host, so run the command as is.
if [ -n "$AZL_TESTBED_INSIDE" ]; then
    target=
    while [ $# -gt 0 ]; do
        case "$1" in
            -t|--target) target=$2; shift 2 ;;
            --target=*) target=${1#--target=}; shift ;;
            --) shift; break ;;
            -*) shift ;;
            *) break ;;
        esac
    done
    if [ "$target" = 1 ] || [ -z "$target" ]; then
        [ $# -gt 0 ] || set -- /bin/sh
        exec "$@"
    fi
    echo "azl test bed: nsenter -t $target is not simulated" >&2
    exit 126
fi
exec /usr/bin/nsenter "$@"
"""


def podbin(root: Path) -> Path:
    """The directory of the shims, first in kwok's PATH."""
    return root / "podbin"


def nodes_dir(root: Path) -> Path:
    """Where each simulated node's binding to a lab host is written."""
    return root / "nodes"


def install_shims(root: Path) -> None:
    directory = podbin(root)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("sh", SH_SHIM), ("nsenter", NSENTER_SHIM)):
        shim = directory / name
        shim.write_text(text)
        shim.chmod(0o755)


def bind_node(root: Path, node: str, enter: Sequence[str]) -> None:
    """Route exec into pods on ``node`` through ``enter`` (argv that enters a lab host)."""
    directory = nodes_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{node}.enter").write_text(shlex.join(enter) + "\n")


def unbind_nodes(root: Path, prefix: str) -> None:
    """Remove the bindings of the nodes whose names start with ``prefix``."""
    for f in nodes_dir(root).glob("*.enter"):
        if f.name.startswith(prefix):
            f.unlink()

"""The shape every target kind has: a validated target in, hosts and a context out.

A kind (``local``, ``ssh``, ``lab``, ``cluster``...) is one module with one ``resolve``
function registered in ``kinds/__init__.py``. The core calls it and never imports the kind's
package: the lab and the cluster test bed stay a layer of their own.

``Resolved.context`` is what the target's transports and fixtures share (a cluster client and
its run ledger, for instance): it travels as a value, from the resolved target to the
transports it creates, never through a module-global registry keyed by a name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..targets import AnyTarget, HostSpec
from ..transport.protocol import Transport


@dataclass(frozen=True)
class Resolved:
    """A target resolved for this run."""

    hosts: Sequence[HostSpec]
    context: Any = None  # handed to every transport and fixture of the target
    undo: Callable[[], None] | None = None  # run at the end of the run (also after Ctrl-C)
    undo_what: str = ""  # what the undo does, for the cleanup failure message


class Resolver(Protocol):
    def __call__(self, name: str, config: AnyTarget, *, start: bool) -> Resolved:
        """Resolve target ``name``; ``start`` is True on the controlling process only (it may
        start or prepare shared things; xdist workers only look them up)."""
        ...


@runtime_checkable
class HostsStarting(Protocol):
    """A context whose hosts may still be starting (an image target's VMs boot in the
    background): the session waits for a host before its first connection."""

    def wait_ready(self, host: str) -> None:
        """Return once ``host`` can be connected to; raise an InfraError if it never will."""
        ...


@runtime_checkable
class MakesTransports(Protocol):
    """A context that makes its hosts' transports itself (a recorded image's answers its
    reads from the recording): the session asks it before the access's own transport."""

    def transport(self, spec: HostSpec) -> Transport:
        ...

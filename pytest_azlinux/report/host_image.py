"""One host's entry of the run's image record (``image_file.py``), read on the test side.

Costs one inventory read per host for the run: the inventory's reads are fetched with the
others while the session prepares the host (``INVENTORY_READS``, registered as a read-ahead
source by ``fixtures.py``) and kept by ``host.reads``; the package checks of the suites use
the same results.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import AzlError
from ..host import Host
from ..packages.inventory import READS, host_inventory
from ..reads import Read
from .image_file import HostEntry, host_entry


def inventory_reads(host: Host) -> Iterable[Read]:
    """A ``ReadSource``: the whole-inventory reads, on every host."""
    reads: tuple[Read, ...] = READS
    return reads


def host_image_entry(host: Host) -> HostEntry:
    """``host``'s facts and every installed package; where the packages cannot be read (no
    source answers, a malformed manifest, a recording that lacks them) the entry says why
    instead of listing none."""
    facts = host.facts
    try:
        inventory = host_inventory(host)
    except AzlError as exc:
        return host_entry(facts.os_release, facts.kernel, facts.arch,
                          facts.node_image_version, None, note=str(exc))
    packages = {name: [(p.evr, p.arch) for p in found]
                for name, found in inventory.packages.items()}
    return host_entry(facts.os_release, facts.kernel, facts.arch, facts.node_image_version,
                      packages, source=inventory.where)

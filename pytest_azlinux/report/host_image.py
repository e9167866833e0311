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
from ..packages.inventory import READS, Inventory, host_inventory
from ..reads import Read
from .image_file import HostEntry, host_entry


def inventory_reads(host: Host) -> Iterable[Read]:
    """A ``ReadSource``: the whole-inventory reads, on every host."""
    reads: tuple[Read, ...] = READS
    return reads


# Hosts of one image answer the inventory alike, and ``host_inventory`` then hands them one
# Inventory: its listing is built once (a pool of 1000 nodes: once, not 1000 times).
_LISTINGS: dict[int, tuple[Inventory, HostEntry]] = {}
_LISTINGS_KEPT = 16


def _listing(inventory: Inventory) -> HostEntry:
    """The packages part of an entry (``packages``, ``packages_source``); shared, read-only."""
    known = _LISTINGS.get(id(inventory))
    if known is None or known[0] is not inventory:
        packages = {name: [(p.evr, p.arch) for p in found]
                    for name, found in inventory.packages.items()}
        listing = host_entry({}, "", "", None, packages, source=inventory.where)
        if len(_LISTINGS) >= _LISTINGS_KEPT:
            _LISTINGS.clear()
        known = _LISTINGS[id(inventory)] = (inventory, listing)
    return known[1]


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
    listing = _listing(inventory)
    entry = host_entry(facts.os_release, facts.kernel, facts.arch, facts.node_image_version,
                       {}, source=inventory.where)
    entry["packages"] = listing["packages"]
    return entry

"""Which host pairs ``azl_host_pair`` tests run on (``--azl-pairing``)."""

from __future__ import annotations

from typing import Any

import pytest

from .session import AzlSession, HostParam


def host_pairs(azl: AzlSession, mode: str) -> tuple[list[Any], list[str]]:
    """The pair parameters and their ids, per target: ``ring`` (each host to the next; one
    pair of two hosts), ``all`` ordered pairs, or ``star`` (the first host to every other).
    A target with fewer than two hosts gives one skipped parameter saying so."""
    pairs: list[Any] = []
    ids: list[str] = []
    for target in azl.selected:
        hosts = azl.params_of(target)
        if len(hosts) < 2:
            pairs.append(pytest.param(
                (None, None),
                marks=pytest.mark.skip(
                    reason=f"needs at least 2 hosts; target {target.name} has {len(hosts)}"
                ),
            ))
            ids.append(target.name)
            continue
        chosen: list[tuple[HostParam, HostParam]]
        if mode == "all":
            chosen = [(a, b) for a in hosts for b in hosts if a is not b]
        elif mode == "star":
            chosen = [(hosts[0], b) for b in hosts[1:]]
        else:
            chosen = [(hosts[i], hosts[(i + 1) % len(hosts)]) for i in range(len(hosts))]
            if len(hosts) == 2:
                chosen = chosen[:1]
        pairs.extend(chosen)
        ids.extend(f"{a.id}->{b.id}" for a, b in chosen)
    return pairs, ids

"""What a test needs of its target, checked at collection: a skip with the reason otherwise
(``azl_destructive`` without ``--azl-allow-destructive``, ``azl_requires(hosts=, kinds=)``)."""

from __future__ import annotations

import pytest

from .runstate import item_host, item_target
from .session import AzlSession


def apply_requirements(item: pytest.Item, azl: AzlSession, *, allow_destructive: bool) -> None:
    if item.get_closest_marker("azl_destructive") and not allow_destructive:
        item.add_marker(pytest.mark.skip(
            reason="destructive: changes the target; run with --azl-allow-destructive"
        ))
    bound = item_target(item)
    for mark in item.iter_markers("azl_requires"):
        targets = [bound] if item_host(item) is not None and bound else azl.selected
        for target in targets:
            need = int(mark.kwargs.get("hosts", 1))
            have = len(azl.params_of(target))
            if have < need:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs at least {need} hosts; target {target.name} has {have}"
                ))
            kinds = mark.kwargs.get("kinds")
            if kinds and target.kind not in kinds:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs a target of kind {'/'.join(kinds)}; "
                    f"{target.name} is {target.kind}"
                ))

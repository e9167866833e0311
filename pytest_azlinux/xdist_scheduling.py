"""xdist scheduling that keeps all tests of one host on one worker.

A host's tests share one connection; an unreachable host is tried once. Tests not bound to a
host are spread by module, as ``--dist loadscope`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdist.scheduler import LoadScopeScheduling

from .session import host_id_in


class HostScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def __init__(self, config: Any, log: Any, host_ids: Sequence[str]) -> None:
        super().__init__(config, log)
        self._host_ids = list(host_ids)

    def _split_scope(self, nodeid: str) -> str:
        host = host_id_in(nodeid, self._host_ids)
        if host is not None:
            return f"host:{host}"
        return str(super()._split_scope(nodeid))

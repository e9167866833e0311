"""Target kinds: one table, one entry per kind (its name, model and resolver).

A kind's entry is all the core knows of it: ``targets.py`` validates a target with the
entry's model (chosen by ``kind:``), the session resolves it with the entry's resolver.
Resolvers are named by import path and imported on first use, so the core does not import
the lab (``azl lab``) or the Kubernetes client unless a target of that kind is selected.
The table itself lives in ``kind_table.py``, below ``targets.py``; it is re-exported here.

A plugin adds a kind by returning its entry from the ``pytest_azl_target_kinds`` hook, as
``builtin.py`` does for these.
"""

from __future__ import annotations

from ..kind_table import BUILTIN, BUILTIN_KINDS, TargetKind, kind_table
from .protocol import Resolved, Resolver

__all__ = ["BUILTIN", "BUILTIN_KINDS", "Resolved", "Resolver", "TargetKind", "kind_table"]

"""The cleanup ledger: everything created on a target is written down and undone.

Undo steps run last-in first-out; one failing step does not stop the others. pytest tears
fixtures down on Ctrl-C too, so a ledger held by a fixture is honoured after an interrupt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("pytest_azlinux.cleanup")


@dataclass
class CleanupLedger:
    """Undo steps, each with a description for the error message when it fails."""

    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def add(self, description: str, undo: Callable[[], object]) -> None:
        self.steps.append((description, undo))

    def run(self) -> list[str]:
        """Run every undo step (LIFO); return the descriptions of the ones that failed."""
        failures: list[str] = []
        while self.steps:
            description, undo = self.steps.pop()
            try:
                undo()
            except Exception as exc:  # keep going: the next step may still succeed
                log.warning("cleanup failed: %s: %s", description, exc)
                failures.append(f"{description}: {exc}")
        return failures

"""How a command reaches a machine: one module per way (local, ssh, kube)."""

from .protocol import CommandResult, Transport

__all__ = ["CommandResult", "Transport"]

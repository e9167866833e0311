"""pytest-azlinux: decide whether an Azure Linux image or AKS node pool is fit for production.

The public surface: ``Host`` and ``CommandResult`` (host.py), ``ImageFacts`` (facts.py), the
error hierarchy (errors.py) and the fixtures registered by the pytest plugin.
"""

from .errors import (
    AzlError,
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    HostUnreachable,
    InfraError,
    TargetsError,
)

__version__ = "0.1.0"

__all__ = [
    "AzlError",
    "CommandFailed",
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyError",
    "HostUnreachable",
    "InfraError",
    "TargetsError",
    "__version__",
]

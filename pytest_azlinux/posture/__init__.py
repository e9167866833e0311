"""Image posture checks: pure functions from command output + a profile to findings.

Each ``check_*`` returns a list of ``Finding`` (empty = the host meets the profile). The
I/O lives in ``gather.py`` (one command per probe) and ``packages.py`` (rpm / dpkg-query).
"""

from .findings import Finding, format_findings

__all__ = ["Finding", "format_findings"]

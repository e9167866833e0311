"""Image posture checks: pure functions from command output + a profile to findings.

Each ``check_*`` returns a list of ``Finding`` (empty = the host meets the profile). The
I/O lives in ``gather.py`` (declared reads) and, for installed packages, in the host's one
package inventory (``pytest_azlinux.packages``).
"""

from .findings import Finding, format_findings

__all__ = ["Finding", "format_findings"]

"""The local lab: namespaced Azure Linux-like hosts with real sshd on one machine.

``Lab(name).up(hosts=3)`` gives hosts reachable over SSH at 198.18.x.y; ``lab.targets_file``
is a targets file with the ssh target ``lab``; ``lab.down()`` removes everything.
"""

from __future__ import annotations

from .errors import LabError
from .lab import Lab
from .state import LabHost
from .variants import DEFAULT_VARIANTS, variant_names

__all__ = ["DEFAULT_VARIANTS", "Lab", "LabError", "LabHost", "variant_names"]

"""A hardening baseline for Azure Linux 3.0: controls as data, one read per host, pure checks.

- ``controls/*.yaml``: the controls (one file per area), loaded by ``load_controls()``;
- ``checks/``: the check kinds, registered once in ``checks.KINDS`` (what each reads, with
  the parser of each read, what passes, the judgement);
- ``readplan.py``: the one gathering command per host (``ReadPlan``, ``SectionRead``);
- ``evidence.py``: what that command printed, parsed on demand (``Evidence.get``);
- ``baseline.py``: one host's run (level, not-applicable rules, cached evidence);
- ``fixtures.py``: the pytest side (``azl_hardening``, item properties, ``control_id``);
- ``docs.py``: docs/hardening.md, generated from the controls.
"""

from .base import Verdict
from .baseline import HostBaseline
from .evidence import Evidence
from .fixtures import CONTROL_KEY, check_control, control_id, control_params
from .loader import ControlSet, load_controls
from .model import Control
from .readplan import ReadPlan, gather_script

__all__ = [
    "CONTROL_KEY",
    "Control",
    "ControlSet",
    "Evidence",
    "HostBaseline",
    "ReadPlan",
    "Verdict",
    "check_control",
    "control_id",
    "control_params",
    "gather_script",
    "load_controls",
]

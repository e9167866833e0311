"""Names the lab gives to kernel objects, derived from the lab name so labs coexist.

Interface names are limited to 15 characters (IFNAMSIZ - 1): a lab name longer than six
characters is shortened to a stable hash-based key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..vm.net import iface_key
from .errors import LabError

_LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
MAX_HOSTS = 253  # .2 .. .254 of the lab's /24
LAB_NAME_ENV = "AZL_LAB_NAME"
DEFAULT_LAB_NAME = "azl"


def lab_name(chosen: str | None = None) -> str:
    """Which lab is meant: ``chosen`` (``azl lab --name``, a target's ``lab:``) wins, then
    ``$AZL_LAB_NAME``, then ``azl``. The CLI and the ``kind: lab`` target both ask here."""
    return check_lab_name(chosen or os.environ.get(LAB_NAME_ENV) or DEFAULT_LAB_NAME)


def check_lab_name(name: str) -> str:
    if not _LAB_NAME.match(name):
        raise LabError(
            f"invalid lab name {name!r}: use 1-32 lower-case letters, digits or '-'"
        )
    return name


@dataclass(frozen=True)
class LabNames:
    """Names of one lab's kernel objects."""

    lab: str

    @property
    def bridge(self) -> str:
        return f"azb-{iface_key(self.lab)}"

    def host(self, index: int) -> str:
        """Host name (also its hostname and the test id): ``<lab>-<index>``."""
        return f"{self.lab}-{index}"

    def netns(self, index: int) -> str:
        return f"azl-{self.lab}-{index}"

    def veth(self, index: int) -> str:
        """The machine's end of the host's link (on the bridge)."""
        if not 1 <= index <= MAX_HOSTS:
            raise LabError(f"host index {index} out of range 1..{MAX_HOSTS}")
        return f"az-{iface_key(self.lab)}-{index}"

    def bridge_alias(self, state_dir: str) -> str:
        """Written on the bridge so a second lab of the same name is detected."""
        return f"azl-lab:{state_dir}"

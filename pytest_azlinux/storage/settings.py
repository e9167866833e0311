"""The storage suite's settings: ``suites.storage`` of a target."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from ..settings import SuiteSettings

if TYPE_CHECKING:  # the session imports suite settings at start-up, not the other way round
    pass

BackendName = Literal["btrfs", "lvm-thin"]


class StorageSettings(SuiteSettings):
    """``suites.storage``; every field optional.

    - ``backends``: the snapshot backends to run (default: all).
    - ``fio_seconds``: background fio randrw during the snapshot (0 = none).
    - ``overwrite_existing``: format a scratch device that already holds a filesystem or a
      partition table (``blkid`` finds one). Off by default: such a device is refused.
    - ``seed``: the dataset's seed, to write the same data again (default: a new one per run;
      a failure message names the seed it used).
    """

    suite: ClassVar[str] = "storage"

    backends: tuple[BackendName, ...] = ("btrfs", "lvm-thin")
    fio_seconds: int = Field(default=0, ge=0, le=3600)
    overwrite_existing: bool = False
    seed: int | None = Field(default=None, ge=0, lt=2**63)


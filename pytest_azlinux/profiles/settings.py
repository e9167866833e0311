"""The image suite's settings: ``suites.image`` of a target."""

from __future__ import annotations

from typing import ClassVar

from ..settings import SuiteSettings


class ImageSettings(SuiteSettings):
    """``profiles_dir``: extra image profile directories for this target's hosts (relative
    to the targets file; read by ``profiles.fixtures.profile_dirs``)."""

    suite: ClassVar[str] = "image"

    profiles_dir: str | list[str] | None = None

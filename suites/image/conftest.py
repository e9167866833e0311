"""Image posture suite: ``azl_profile`` comes from pytest_azlinux.profiles.fixtures."""

from pytest_azlinux.profiles.fixtures import azl_profile

__all__ = ["azl_profile"]

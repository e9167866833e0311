"""Image profiles: the expected posture of each image variant, as data (YAML) with sources.

``load_profiles(dirs)`` reads ours and users' own; ``select_profile`` picks one for a host;
suites read the frozen ``Profile`` (``profile.selinux``, ``profile.source("selinux")``).
"""

from ..errors import ProfileError
from .loader import BUILTIN_DIR, ENV_DIRS, ProfileSet, dirs_from_env, load_profiles
from .model import AppArmorState, KernelFlavour, PackageMinimum, Profile, SELinuxMode
from .select import detect_profile_name, select_profile

__all__ = [
    "BUILTIN_DIR",
    "ENV_DIRS",
    "AppArmorState",
    "KernelFlavour",
    "PackageMinimum",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "SELinuxMode",
    "detect_profile_name",
    "dirs_from_env",
    "load_profiles",
    "select_profile",
]

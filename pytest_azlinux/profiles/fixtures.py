"""The ``azl_profile`` fixture: the image profile of the current host.

Profile directories (users' own files, added to ours; later ones win by name):
the ``--azl-profiles-dir`` option / ``azl_profiles_dir`` ini value when the plugin registers
them, ``AZL_PROFILES_DIR`` (``os.pathsep``-separated), and the target's
``suites.image.profiles_dir`` (relative paths: to the targets file's directory).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..errors import TargetsError
from ..host import Host
from ..session import SelectedTarget
from .loader import ProfileSet, dirs_from_env, load_profiles
from .model import Profile
from .select import select_profile


def _option_dirs(config: pytest.Config) -> list[str]:
    out: list[str] = []
    value = config.getoption("azl_profiles_dir", default=None)
    if value:
        out.extend(value if isinstance(value, list) else [value])
    try:
        ini = config.getini("azl_profiles_dir")
    except ValueError:  # not registered (yet) by the plugin
        ini = None
    if ini:
        out.extend(
            str(Path(config.rootpath) / d) for d in (ini if isinstance(ini, list) else [ini])
        )
    return [str(d) for d in out]


def profile_dirs(config: pytest.Config, target: SelectedTarget) -> list[str]:
    dirs = [*_option_dirs(config), *dirs_from_env()]
    setting = target.settings("image").get("profiles_dir")
    if setting:
        for d in setting if isinstance(setting, list) else [setting]:
            path = Path(str(d)).expanduser()
            base = _targets_dir(config)
            dirs.append(str(path if path.is_absolute() or base is None else base / path))
    return dirs


def _targets_dir(config: pytest.Config) -> Path | None:
    from ..runstate import SESSION_KEY

    session = config.stash.get(SESSION_KEY, None)
    path = getattr(getattr(session, "targets_file", None), "path", None)
    return Path(path).parent if path else None


def host_profile(config: pytest.Config, host: Host, target: SelectedTarget) -> Profile:
    """Select (and load) the profile of one host; a bad profile fails with one line."""
    try:
        profiles: ProfileSet = load_profiles(profile_dirs(config, target))
        return select_profile(
            profiles,
            host.facts,
            host.spec.profile,
            host.spec.labels,
            where=f"target {target.name}, host {host.name}",
        )
    except TargetsError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except: no chained traceback


def successor_profile(
    config: pytest.Config, target: SelectedTarget, profile: Profile
) -> Profile | None:
    """``profile.successor`` as a profile of the same profile set, or None (no successor, or
    one that names no profile: the message then shows the text as written)."""
    if not profile.successor:
        return None
    profiles = load_profiles(profile_dirs(config, target))
    return profiles.get(profile.successor) if profile.successor in profiles else None


@pytest.fixture
def azl_profile(
    request: pytest.FixtureRequest, azl_host: Host, azl_target: SelectedTarget
) -> Profile:
    """The image profile of the current host (``.selinux``, ``.source("selinux")``, ``.reason``)."""
    return host_profile(request.config, azl_host, azl_target)

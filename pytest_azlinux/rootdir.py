"""Give ``--azl-targets-file PATH`` (two words) the rootdir that ``--azl-targets-file=PATH`` gets.

pytest picks the rootdir and the ini file before it loads plugins; at that point
``--azl-targets-file`` is an unknown option and PATH looks like a test path, so the rootdir
became the targets file's directory and the project's ini file (testpaths, addopts) was lost.
Once the option is known (``pytest_load_initial_conftests``), the setup is determined again
from the real test paths, and the ini file's ``addopts`` are applied if they were missed.
This reaches into pytest's private ``Config`` fields; a pytest that lacks them keeps its own
choice (the ``=`` spelling always works).
"""

from __future__ import annotations

import shlex

import pytest

_OPTION = "--azl-targets-file"


def redetermine_rootdir(config: pytest.Config, args: list[str]) -> None:
    if _OPTION not in args:  # only the two-word spelling misleads pytest
        return
    from _pytest.config.findpaths import determine_setup

    ns = config.known_args_namespace
    try:
        rootpath, inipath, inicfg, ignored = determine_setup(
            inifile=ns.inifilename,
            override_ini=ns.override_ini,
            args=ns.file_or_dir,
            rootdir_cmd_arg=ns.rootdir or None,
            invocation_dir=config.invocation_params.dir,
        )
    except Exception:  # pytest's own error surfaces later with its own message
        return
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    if not all(hasattr(config, a) for a in ("_rootpath", "_inipath", "_inicfg", "_inicache")):
        return
    missed_addopts = config.inipath is None and inipath is not None
    config._rootpath = rootpath
    config._inipath = inipath
    config._inicfg = inicfg
    config._inicache.clear()
    if hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = ignored
    ns.confcutdir = str(inipath.parent if inipath else rootpath)
    if missed_addopts:
        addopts = config.getini("addopts")
        extra = addopts if isinstance(addopts, list) else shlex.split(str(addopts or ""))
        args[:0] = [str(a) for a in extra]
        config.pluginmanager.consider_preparse(args, exclude_only=False)  # -p from addopts

"""A run owns its report directory: at the start, the files an earlier run wrote there go.

Only what this plugin writes is removed: per-image ``*.xml`` reports it recognises by the
``azl.plugin_version`` suite property near the top of the file, the ``index.html`` it
recognises by its generator tag, and the ``*.image.json`` image records by their generator
field. Anything else in the directory (a user's notes, another
tool's JUnit file, subdirectories of earlier runs kept on purpose) stays.
"""

from __future__ import annotations

from pathlib import Path

from .image_file import SUFFIX as IMAGE_SUFFIX
from .image_file import is_own_image_file

HTML_NAME = "index.html"
HTML_GENERATOR = '<meta name="generator" content="pytest-azlinux">'
_HEAD_BYTES = 16384
_XML_MARK = b'name="azl.plugin_version"'
# The suite's properties come before its first test case; a host list of a large pool can
# make them long, so read on (in chunks) until the mark or the first case.
_SCAN_LIMIT = 8 << 20


def is_own_report(path: Path) -> bool:
    head = _head(path)
    if not head.lstrip().startswith(b"<?xml") or b"<testsuites" not in head:
        return False
    try:
        with path.open("rb") as fh:
            tail, read = b"", 0
            while read < _SCAN_LIMIT:
                chunk = fh.read(1 << 16)
                if not chunk:
                    return False
                read += len(chunk)
                window = tail + chunk  # a mark split across two chunks is still found
                if _XML_MARK in window:
                    return True
                if b"<testcase" in window:
                    return False
                tail = window[-64:]
    except OSError:
        return False
    return False


def is_own_html(path: Path) -> bool:
    return HTML_GENERATOR.encode() in _head(path)


def clear_run_files(directory: Path) -> list[Path]:
    """Remove the files an earlier run of the plugin left in ``directory``; returns them."""
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.is_symlink():
            continue
        own = ((path.suffix == ".xml" and is_own_report(path))
               or (path.name == HTML_NAME and is_own_html(path))
               or (path.name.endswith(IMAGE_SUFFIX) and is_own_image_file(path)))
        if own:
            try:
                path.unlink()
            except FileNotFoundError:  # removed by someone else meanwhile
                continue
            removed.append(path)
    return removed


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(_HEAD_BYTES)
    except OSError:
        return b""

"""A recorded image as a host: reads answered from its recording, commands refused.

Why at the transport: a ``Host`` already takes whatever transport its spec names, and every
piece of evidence reaches a check through ``host.reads`` (``reads.py``). So a recording needs
no host of its own: ``RecordedTransport`` refuses every command with ``NotRecorded`` and
offers ``answer`` (``reads.ReplaysReads``), which ``HostReads`` asks instead of running a
batch. A check on a recorded image is thus the same check, fed the same parser, over the
recording's text; what the recording does not hold is a SKIP naming it, never a guess.

What a release-notes file answers (the ``Read`` values of their owners, so nothing is
matched by command text):

- ``facts.FACTS``: ``/etc/os-release`` from the os-release section; ``uname -r`` from
  ``/proc/version`` and ``uname -m`` from the kernel package's arch; the hostname is the
  file's stem; what it lacks (always the kernel command line and the release files, the
  kernel on OS Guard, the arch on ACL) in a ``not-recorded`` section (``ImageFacts.missing``).
- ``Read.file`` of ``/etc/os-release``, ``/usr/lib/os-release``, ``/proc/version`` and
  ``/proc/sys/crypto/fips_enabled`` (``1``/``0`` from ``FIPS enabled:``).
- ``packages.sources.RPM_ALL``: the Installed Packages section in RPM_ALL's format (no
  epoch: ``rpm -qa`` does not print it). ACL's stub: not recorded.
- ``packages.sources.SPDX_MANIFESTS``: only when manifests were recorded beside the file,
  in a directory ``<stem>.os-manifests/`` laid out as the image's ``/usr/share/os-manifests``
  (``package-manifest*.spdx.json``); release notes do not hold them.
- The inventory reads a recording answers "none of these" (what the live command would say
  on that image): ``DPKG_ALL`` always (no node image keeps a dpkg database); ``SPDX_MANIFESTS``
  exit 3 where the rpm list was recorded; ``RPM_ALL`` exit 127 where only manifests were. An
  ACL file with no manifests beside it answers neither: its packages are not recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import NotRecorded
from ..facts import FACTS, NOT_RECORDED
from ..packages.sources import DPKG_ALL, MANIFEST_DIR, RPM_ALL, SPDX_MANIFESTS
from ..reads import Read
from ..transport.protocol import CommandResult
from .release_notes import RecordedImage

MANIFESTS_SUFFIX = ".os-manifests"


Answer = str | int  # the text a read prints, or the exit code of one that prints nothing


def _result(read: Read, answer: Answer) -> CommandResult:
    if isinstance(answer, int):
        return CommandResult(read.script, answer, b"", b"", 0.0)
    return CommandResult(read.script, 0, answer.encode(), b"", 0.0)


def facts_text(image: RecordedImage) -> str:
    """The recording in the shape ``FACTS`` prints, and a ``not-recorded`` section naming
    the facts it does not hold (``ImageFacts.missing``): release notes hold no kernel
    command line and no release file beside os-release."""
    missing = ["cmdline", "release_files"]
    if not image.kernel_release:
        missing.append("kernel")
    if not image.arch:
        missing.append("arch")
    return (f"==> /etc/os-release\n{image.os_release_text}\n"
            f"==> uname\n{image.kernel_release or ''}\n{image.arch or ''}\n"
            f"==> hostname\n{image.stem}\n"
            f"==> {NOT_RECORDED}\n{' '.join(sorted(missing))}\n")


def rpm_all_text(image: RecordedImage) -> str | None:
    """The package list in ``RPM_ALL``'s format; None: the file holds none (ACL)."""
    if image.package_entries is None:
        return None
    return "".join(f"{p.name}\t{p.evr}\t{p.arch or '(none)'}\n" for p in image.package_entries)


def manifests_text(directory: Path) -> str | None:
    """The manifests recorded in ``directory``, in ``SPDX_MANIFESTS``' format."""
    files = sorted(directory.glob("package-manifest*.spdx.json"))
    if not files:
        return None
    return "".join(f"==> {MANIFEST_DIR}/{f.name}\n{f.read_text()}\n" for f in files)


def recorded_answers(image: RecordedImage) -> dict[Read, Answer]:
    """Every read the recording answers, with the text (or exit code) it answers."""
    out: dict[Read, Answer] = {FACTS: facts_text(image)}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        out[Read.file(path)] = image.os_release_text
    if image.proc_version is not None:
        out[Read.file("/proc/version")] = image.proc_version + "\n"
    if image.fips is not None:
        out[Read.file("/proc/sys/crypto/fips_enabled")] = "1\n" if image.fips else "0\n"
    rpm = rpm_all_text(image)
    manifests = image.path.with_name(image.stem + MANIFESTS_SUFFIX)
    spdx = manifests_text(manifests) if manifests.is_dir() else None
    if rpm is not None or spdx is not None:
        out[RPM_ALL] = rpm if rpm is not None else 127
        out[SPDX_MANIFESTS] = spdx if spdx is not None else 3
        out[DPKG_ALL] = 127
    return out


_WHAT = {RPM_ALL: "the installed packages (ACL's release notes write a stub there)",
         SPDX_MANIFESTS: f"SPDX package manifests (none in {MANIFESTS_SUFFIX}/ beside it)"}


class RecordedTransport:
    """The transport of one recorded image: answers its reads, refuses every command."""

    def __init__(self, image: RecordedImage,
                 answers: Mapping[Read, Answer] | None = None) -> None:
        self.image = image
        self.description = f"recording {image.path}"
        self._answers = dict(recorded_answers(image) if answers is None else answers)

    def connect(self) -> None:
        """Nothing to open: the file was read when the target was resolved."""

    def answer(self, read: Read) -> CommandResult | None:
        # Read.file(path) and Read.file(path, sudo=True) are the same file on a recording
        found = self._answers.get(read)
        if found is None and read.sudo is not None:
            found = self._answers.get(Read(read.script, None))
        return None if found is None else _result(read, found)

    def not_recorded(self, what: Read | str) -> NotRecorded:
        words = what if isinstance(what, str) else _WHAT.get(what, what.words)
        return NotRecorded(f"{self.image.path}: the recording does not hold {words}")

    def run(self, script: str, *, timeout: float, stdin: bytes | None = None,
            sudo: bool = False) -> CommandResult:
        raise self.not_recorded(Read(script))

    def close(self) -> None:
        """Nothing to close."""

"""``kind: recorded``: shipped images replayed from their recordings (AgentBaker release notes).

Nothing is booted or reached: each release-notes file is one host, named after the file's
stem, whose reads the recording answers and whose commands are refused (``NotRecorded``: the
test is a SKIP saying what was not recorded). The files are read here, when the target is
resolved, so a malformed one stops the run at start-up (``RecordingError``, exit 4). The
node label ``kubernetes.azure.com/node-image-version`` travels in the host's labels, as a
cluster node's does, so profile selection can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import RecordingError
from ..recorded.release_notes import RecordedImage, load
from ..recorded.replay import RecordedTransport
from ..targets import AnyTarget, HostSpec, RecordedTarget, is_host_name
from ..transport.protocol import Transport
from .protocol import Resolved


@dataclass(frozen=True)
class RecordedContext:
    """The target's recorded images by host name; it makes each host's transport."""

    images: Mapping[str, RecordedImage]

    def transport(self, spec: HostSpec) -> Transport:
        return RecordedTransport(self.images[spec.name])


def recording_files(path: Path) -> list[Path]:
    """The release-notes files ``path`` names: itself, or the ``*.txt`` in the directory."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.txt") if p.is_file())
        if not files:
            raise RecordingError(f"{path}: no release-notes files (*.txt) in the directory")
        return files
    if not path.exists():
        raise RecordingError(f"{path}: no such file or directory")
    return [path]


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    assert isinstance(config, RecordedTarget)
    files = recording_files(Path(config.path))
    for path in files:
        if not is_host_name(path.stem):
            raise RecordingError(f"{path}: the file's stem {path.stem!r} cannot name a host "
                                 "(letters, digits, '.', '_', '-')")
    images = {p.stem: load(p) for p in files}
    specs = [
        HostSpec(name=stem, target=name, access="recorded", address=str(image.path),
                 profile=config.profile, labels=image.labels)
        for stem, image in images.items()
    ]
    return Resolved(specs, context=RecordedContext(images))

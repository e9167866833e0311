"""``kind: image``: an image file booted under qemu with a cloud-init seed, reached over SSH.

The controller prepares the run's bridge, keys and seeds, starts the boots in the background
and returns at once (boots overlap collection); the first connection to an instance waits
for it (``Resolved.context.wait_ready``). The image package (and qemu's, ``vm``) is imported
only here, when an image target is selected.
"""

from __future__ import annotations

from ..targets import AnyTarget, ImageTarget
from .protocol import Resolved


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    assert isinstance(config, ImageTarget)
    from ..image import run as image_run

    if not start:
        follower = image_run.follow(name, config)
        return Resolved(follower.specs, context=follower)
    run = image_run.prepare(name, config)
    run.start()
    undo = run.keep if config.keep else run.stop
    bridge = run.network.bridge if run.network else ""
    what = f"stop image target {name} (qemu, taps, overlays, bridge {bridge})"
    return Resolved(run.specs, context=run, undo=undo, undo_what=what)

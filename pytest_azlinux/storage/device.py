"""Guards before a device is formatted: named in the target, a block device, not in use."""

from __future__ import annotations

import shlex

from ..errors import (
    DeviceRefused,
    )
from ..host import Host


def check_scratch_device(host: Host, device: str) -> None:
    """Raise ``DeviceRefused`` naming host, device and the reason it is refused."""
    if device not in host.spec.scratch_devices:
        raise DeviceRefused(
            f"{host.name}: {device} is not a scratch device named in the target "
            f"(scratch_devices: {', '.join(host.spec.scratch_devices) or 'none'})"
        )
    dev = shlex.quote(device)
    result = host.run(
        f"[ -b {dev} ] || {{ echo 'not a block device'; exit 0; }}; "
        f"real=$(readlink -f {dev}); name=$(basename \"$real\"); "
        # mounted anywhere (this namespace's view and the kernel's swap list)
        f"awk -v d=\"$real\" '$1==d {{print \"mounted on \" $2}}' /proc/mounts; "
        f"awk -v d=\"$real\" '$1==d {{print \"in use as swap\"}}' /proc/swaps; "
        # partitions or holders (device-mapper, md) stacked on it
        f"for h in /sys/class/block/$name/holders/*; do [ -e \"$h\" ] && "
        f"echo \"held by $(basename $h)\"; done; "
        f"for p in /sys/class/block/$name/$name*; do [ -e \"$p\" ] && "
        f"awk -v d=/dev/$(basename $p) '$1==d {{print \"partition \" d \" mounted on \" $2}}' "
        f"/proc/mounts; done; true",
        sudo=True, timeout=30,
    )
    reasons = [line for line in result.stdout.splitlines() if line.strip()]
    if reasons:
        raise DeviceRefused(f"{host.name}: refusing {device}: {'; '.join(reasons)}")

"""OCI runtime configs (config.json) for the three container profiles, and their variations.

Each profile applies real settings, the ones a container runtime applies for the matching
Kubernetes security context:

- ``restricted``: uid/gid 65534, no capabilities, no_new_privs, the default seccomp profile
  (seccomp.py), private pid/ipc/uts/net/mount/cgroup namespaces, containerd's masked and
  read-only paths, read-only /sys and cgroup mounts, read-only root filesystem;
- ``baseline``: the same but uid 0 with containerd's default capability set and without
  no_new_privs;
- ``privileged``: every capability, no seccomp, no masked or read-only paths, host pid, ipc,
  uts and network namespaces, host /dev, read-write /sys and cgroup, host ``/`` at /host
  (read-only: the probe never writes, this keeps a mistake harmless).

The root filesystem is built from the host's own binaries: the host's /usr, /lib... are
bind-mounted read-only (merged-usr symlinks such as /bin -> usr/bin are recreated), so the
container runs the host's busybox (or shell) with no image to pull.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..analyse.escape import CAP_NAMES, RUNTIME_DEFAULT_CAPS, Profile
from .seccomp import default_profile

PROBE_DIR = "/azl"  # the probe and its runner, read-only
SCRATCH_DIR = "/tmp"  # the one writable directory backed by the host (the bundle's tmp/)
HOST_ROOT_DIR = "/host"  # privileged only
NOBODY = 65534
DISK_GID = 6  # group "disk" on Debian, Fedora and Azure Linux
# containerd pkg/oci/spec.go: its default capabilities (one list, in analyse.escape: what the
# analyser allows a baseline container), masked and read-only paths
DEFAULT_CAPS = RUNTIME_DEFAULT_CAPS
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
HOST_BINARY_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class HostLayout:
    """What the host gives the bundle: architecture, capability range, its binaries."""

    machine: str
    cap_last_cap: int
    binary_dirs: tuple[str, ...]  # real directories, bind-mounted read-only
    binary_links: Mapping[str, str] = field(default_factory=dict)  # e.g. {"/bin": "usr/bin"}
    # CapBnd of a root shell on the host: runc cannot grant more (some sandboxes drop some)
    bounding_mask: int | None = None
    # the namespaces runc itself runs in ("pid:[4026531836]"...): what "host" means for a
    # container that shares one (not the initial ones when the host is itself nested)
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variation:
    """One dangerous setting added to a profile (the tests add them one at a time)."""

    add_caps: tuple[str, ...] = ()  # capability names without CAP_, e.g. ("sys_admin",)
    host_pid: bool = False
    socket: tuple[str, str] | None = None  # (host path, container path) bind-mounted
    writable_proc_sys: bool = False
    no_seccomp: bool = False
    host_net: bool = False  # no network namespace of its own (runc's, the host's)
    # a block device node (container path, major, minor) created root:disk 0660, with a
    # device cgroup rule allowing rwm on it
    block_device: tuple[str, int, int] | None = None
    # a character device node (container path, major, minor) created root:root 0600, with a
    # device cgroup rule allowing rwm on it
    char_device: tuple[str, int, int] | None = None
    # device cgroup rules added as they are, e.g. ("c 1:1 rwm",): no node is created
    device_allow: tuple[str, ...] = ()
    # entries of the default seccomp profile left out (seccomp.default_profile's allow)
    seccomp_allow: tuple[str, ...] = ()
    seccomp_kill: tuple[str, ...] = ()  # denied syscalls that kill the caller instead

    def describe(self) -> str:
        parts = [f"+cap_{c}" for c in self.add_caps]
        parts += ["host-pid"] * self.host_pid + ["writable-/proc/sys"] * self.writable_proc_sys
        parts += ["no-seccomp"] * self.no_seccomp + ["host-net"] * self.host_net
        if self.socket:
            parts.append(f"socket:{self.socket[1]}")
        if self.block_device:
            parts.append("block:{}({}:{})".format(*self.block_device))
        if self.char_device:
            parts.append("char:{}({}:{})".format(*self.char_device))
        parts += [f"device-allow:{r.replace(' ', '_')}" for r in self.device_allow]
        parts += [f"seccomp-allow:{s}" for s in self.seccomp_allow]
        parts += [f"seccomp-kill:{s}" for s in self.seccomp_kill]
        return ",".join(parts) or "none"


def cap_ids(names: Sequence[str]) -> list[str]:
    return [f"CAP_{n.upper()}" for n in names]


def all_caps(cap_last_cap: int, bounding_mask: int | None = None) -> list[str]:
    """Every named capability of this kernel the host can grant (runc rejects unknown ones)."""
    names = list(CAP_NAMES[: min(cap_last_cap, len(CAP_NAMES) - 1) + 1])
    if bounding_mask is not None:
        names = [n for i, n in enumerate(names) if bounding_mask >> i & 1]
    return cap_ids(names)


def _mount(dest: str, kind: str, source: str, options: Sequence[str]) -> dict[str, Any]:
    return {"destination": dest, "type": kind, "source": source, "options": list(options)}


def build_config(
    profile: Profile,
    layout: HostLayout,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    probe_dir: str,
    scratch_dir: str,
    variation: Variation | None = None,
    cgroups_path: str | None = None,
    netns_path: str | None = None,
) -> dict[str, Any]:
    """config.json for a bundle whose rootfs is ``rootfs/`` next to it.

    ``probe_dir`` and ``scratch_dir`` are host paths mounted at /azl (read-only) and /tmp;
    ``netns_path`` joins an existing network namespace (e.g. /run/netns/NAME) instead of
    creating an empty one.
    """
    variation = variation or Variation()
    privileged = profile == "privileged"
    host_pid = privileged or variation.host_pid
    if privileged:
        caps = all_caps(layout.cap_last_cap, layout.bounding_mask)
    else:
        caps = cap_ids(DEFAULT_CAPS) if profile == "baseline" else []
        caps += [c for c in cap_ids(variation.add_caps) if c not in caps]
    user = {"uid": NOBODY, "gid": NOBODY} if profile == "restricted" else {"uid": 0, "gid": 0}
    process: dict[str, Any] = {
        "terminal": False,
        "user": user,
        "args": list(args),
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                *(f"{k}={v}" for k, v in (env or {}).items())],
        "cwd": "/",
        # non-root processes keep capabilities across execve only through the ambient set
        "capabilities": {k: caps for k in
                         ("bounding", "effective", "permitted", "inheritable", "ambient")},
        "noNewPrivileges": profile == "restricted",
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    }
    ro_kernel = [] if privileged else ["ro"]
    mounts = [_mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"])]
    if privileged:
        mounts.append(_mount("/dev", "bind", "/dev", ["rbind", "ro", "nosuid"]))
    else:
        mounts += [
            _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            _mount("/dev/pts", "devpts", "devpts",
                   ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            _mount("/dev/shm", "tmpfs", "shm",
                   ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        ]
    mounts += [
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *ro_kernel]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup",
               ["nosuid", "noexec", "nodev", "relatime", *ro_kernel]),
    ]
    mounts += [_mount(d, "bind", d, ["rbind", "ro", "nosuid", "nodev"])
               for d in layout.binary_dirs]
    mounts += [
        _mount(PROBE_DIR, "bind", probe_dir, ["rbind", "ro", "nosuid", "nodev"]),
        _mount(SCRATCH_DIR, "bind", scratch_dir, ["rbind", "rw", "nosuid", "nodev"]),
    ]
    if privileged:
        mounts.append(_mount(HOST_ROOT_DIR, "bind", "/", ["bind", "ro"]))  # not recursive
    if variation.socket:
        host_path, container_path = variation.socket
        mounts.append(_mount(container_path, "bind", host_path, ["bind", "rw"]))

    namespaces = [{"type": "mount"}]
    if not privileged:
        namespaces += [{"type": t} for t in ("ipc", "uts", "cgroup")]
        if netns_path:
            namespaces.append({"type": "network", "path": netns_path})
        elif not variation.host_net:
            namespaces.append({"type": "network"})
    if not host_pid:
        namespaces.append({"type": "pid"})
    device_rules: list[dict[str, Any]] = [{"allow": privileged, "access": "rwm"}]
    linux: dict[str, Any] = {"namespaces": namespaces, "resources": {"devices": device_rules}}
    if variation.block_device:
        path, major, minor = variation.block_device
        linux["devices"] = [{"path": path, "type": "b", "major": major, "minor": minor,
                             "fileMode": 0o660, "uid": 0, "gid": DISK_GID}]
        device_rules.append({"allow": True, "type": "b", "major": major, "minor": minor,
                             "access": "rwm"})
    if variation.char_device:
        path, major, minor = variation.char_device
        linux.setdefault("devices", []).append(
            {"path": path, "type": "c", "major": major, "minor": minor, "fileMode": 0o600,
             "uid": 0, "gid": 0})
        device_rules.append({"allow": True, "type": "c", "major": major, "minor": minor,
                             "access": "rwm"})
    for rule in variation.device_allow:
        kind, numbers, access = rule.split()
        entry: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        pairs = zip(("major", "minor"), numbers.split(":"), strict=True)
        entry.update({k: int(v) for k, v in pairs if v != "*"})  # "*": left out (any)
        device_rules.append(entry)
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    if not privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = [p for p in READONLY_PATHS
                                  if not (variation.writable_proc_sys and p == "/proc/sys")]
        if not variation.no_seccomp:
            linux["seccomp"] = default_profile(layout.machine, variation.seccomp_allow,
                                                variation.seccomp_kill)
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": True},
        "mounts": mounts,
        "linux": linux,
    }
    if not privileged:  # a hostname needs a UTS namespace of its own
        config["hostname"] = "azl-escape"
    return config

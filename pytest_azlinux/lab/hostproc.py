"""A lab host's kernel objects and processes: netns, veth, loop disk, holder and sshd.

The *holder* is ``ip netns exec NS unshare --uts --pid --fork --mount-proc tini -- sh
START_SCRIPT``: ``ip netns exec`` gives it the host's network namespace and a private mount
namespace, ``unshare`` its own hostname and PID namespace (``ps`` on a host shows only that
host, and when the host's init dies the kernel kills everything in it). PID 1 of the host is
``tini`` (Debian's package): orphans of the host (sshd itself, whatever a command leaves
running in the background) are reparented to it, and it reaps them when they exit, as a
host's init does; without it they stayed zombies. The script mounts the host's private files,
starts sshd and becomes ``sleep infinity`` (tini's child) until ``down`` kills the host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from ..localproc import pid_alive
from ..vm.net import ssh_banner
from .errors import LabError
from .state import LabHost
from .system import link_exists, netns_exists, netns_pids, run, try_run, which

START_SCRIPT = r"""
set -eu
name=$1 addr=$2 sshd=$3 upper=$4 work=$5
shift 5
ip link set lo up
ip addr replace "$addr/24" dev eth0
ip link set eth0 up
mount -t overlay azl-etc -o "lowerdir=/etc,upperdir=$upper,workdir=$work" /etc
if [ -f /usr/lib/os-release ]; then mount --bind /etc/os-release /usr/lib/os-release; fi
while [ $# -ge 2 ]; do mount --bind "$1" "$2"; shift 2; done
hostname "$name"
# ip netns exec gave the host a fresh /sys: mount what a real host has there (runc needs the
# cgroup hierarchies, the LSM checks securityfs), mirroring the machine's cgroup layout.
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
if [ -n "${AZL_CGROUP_MOUNTS:-}" ] && mount -t tmpfs -o mode=755 azl-cgroup /sys/fs/cgroup; then
  printf '%s\n' "$AZL_CGROUP_MOUNTS" | while read -r dir type opts; do
    mkdir -p "$dir" && mount -t "$type" -o "$opts" "$type" "$dir" ||
      echo "cannot mount $type on $dir" >&2
  done
fi
"$sshd" -f /etc/ssh/azl_sshd_config -E /var/log/sshd.log
exec sleep infinity
"""
SSHD_CONFIG = "/etc/ssh/azl_sshd_config"  # in the host's /etc overlay
# private directory (in the host's dir) -> where the host sees it
PRIVATE_DIRS = (("log", "/var/log"), ("tmp", "/tmp"), ("vartmp", "/var/tmp"),
                ("home", "/home"), ("run", "/run"))


def bind_order(host_dir: Path) -> list[str]:
    """``src dst`` pairs for the start script; a mount that would hide the host's own
    directory (a state dir under /tmp, say) goes last, after every source was reached."""
    pairs = [(str(host_dir / src), dst) for src, dst in PRIVATE_DIRS]
    pairs.sort(key=lambda p: str(host_dir).startswith(p[1].rstrip("/") + "/"))
    return [x for pair in pairs for x in pair]


def create_link(host: LabHost, bridge: str) -> None:
    """netns + veth pair (machine end on the bridge, ``eth0`` inside)."""
    if not netns_exists(host.netns):
        run(["ip", "netns", "add", host.netns])
    if not link_exists("eth0", host.netns):
        if link_exists(host.veth):
            run(["ip", "link", "del", host.veth])
        run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0",
             "netns", host.netns])
    run(["ip", "link", "set", host.veth, "master", bridge, "up"])


def cgroup_mounts() -> str:
    """``dir type options`` of the machine's cgroup mounts under /sys/fs/cgroup, one a line."""
    lines = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, options, *_ = line.split()
        if fstype in ("cgroup", "cgroup2") and mountpoint.startswith("/sys/fs/cgroup/"):
            lines.append(f"{mountpoint} {fstype} {options}")
    return "\n".join(lines)


def start_holder(host: LabHost) -> subprocess.Popen[bytes]:
    """Start the host's namespaces and sshd (returns at once; see ``wait_ready``)."""
    sshd = which("sshd") or "/usr/sbin/sshd"
    with (host.path / "holder.log").open("wb") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns,
             "unshare", "--uts", "--pid", "--fork", "--mount-proc",
             which("tini") or "/usr/bin/tini", "--",
             "sh", "-c", START_SCRIPT, "sh", host.name, host.address, sshd,
             str(host.path / "etc-upper"), str(host.path / "etc-work"),
             *bind_order(host.path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "AZL_CGROUP_MOUNTS": cgroup_mounts()},
        )
    host.holder_pid = proc.pid
    return proc


def sshd_pid(host: LabHost) -> int | None:
    """The machine pid of the host's sshd listener (its pid file holds the in-host pid)."""
    try:
        inner = int(host.sshd_pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    for pid in netns_pids(host.netns):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
        if nspid and int(nspid[-1]) == inner and pid_alive(pid):
            return pid
    return None


def wait_ready(host: LabHost, proc: subprocess.Popen[bytes] | None, deadline: float) -> None:
    """Wait until sshd answers on the host's address, or raise with the holder's log."""
    while time.monotonic() < deadline:
        if host.sshd_pid_file.exists() and ssh_banner(host.address, 1.0):
            return
        if (proc is not None and proc.poll() is not None) or (
            proc is None and host.holder_pid and not pid_alive(host.holder_pid)
        ):
            break
        time.sleep(0.05)
    log = (host.path / "holder.log").read_text(errors="replace").strip().splitlines()
    why = log[-1] if log else "sshd did not answer in time"
    raise LabError(f"lab host {host.name} ({host.address}) did not start: {why}")


def init_pid(holder_pid: int) -> int | None:
    """The host's PID 1, its tini (as the machine sees it): the holder's only child."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == holder_pid:
            return int(stat.parent.name)
    return None


def enter_cmd(host: LabHost) -> list[str]:
    """Prefix that runs a command inside the host (all its namespaces)."""
    pid = init_pid(host.holder_pid) if host.holder_pid and pid_alive(host.holder_pid) else None
    if pid is None:
        raise LabError(f"lab host {host.name} is not running (azl lab up repairs it)")
    return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "-p"]


def start_sshd(host: LabHost) -> None:
    sshd = which("sshd") or "/usr/sbin/sshd"
    run([*enter_cmd(host), sshd, "-f", SSHD_CONFIG, "-E", "/var/log/sshd.log"])


def stop_sshd(host: LabHost) -> None:
    pid = sshd_pid(host)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not pid_alive(pid):
                break
            time.sleep(0.02)


def kill_all(host: LabHost, timeout: float = 10.0) -> None:
    """Kill the host's PID 1 (the kernel then kills the rest of its PID namespace and the
    holder reaps it), then SIGKILL whatever is left in the netns until nothing is."""
    if host.holder_pid and pid_alive(host.holder_pid):
        init = init_pid(host.holder_pid)
        if init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
            for _ in range(100):
                if not pid_alive(host.holder_pid):
                    break
                time.sleep(0.01)
    deadline = time.monotonic() + timeout
    while True:
        _reap(host.holder_pid)
        pids = [p for p in netns_pids(host.netns) if pid_alive(p)]
        if host.holder_pid and pid_alive(host.holder_pid):
            pids.append(host.holder_pid)
        if not pids:
            return
        if time.monotonic() > deadline:
            raise LabError(f"lab host {host.name}: processes {pids} survive SIGKILL")
        for pid in set(pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _reap(pid: int | None) -> None:
    """Collect the holder's exit status when this process started it."""
    if pid:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def attach_disk(host: LabHost, size: int) -> str:
    """Sparse disk image + loop device (reused if already attached)."""
    image = host.disk_image
    if not image.exists():
        with image.open("wb") as fh:
            fh.truncate(size)
    attached = run(["losetup", "-j", str(image)], check=False).strip()
    if attached:
        return attached.split(":", 1)[0]
    return run(["losetup", "--find", "--show", str(image)]).strip()


def detach_disk(host: LabHost) -> None:
    image = host.disk_image
    if not image.exists():
        return
    for line in run(["losetup", "-j", str(image)], check=False).splitlines():
        dev = line.split(":", 1)[0]
        if dev:
            try_run(["losetup", "-d", dev])


def destroy(host: LabHost) -> None:
    """Remove the host's processes, namespaces, link and loop device (its files stay)."""
    kill_all(host)
    if netns_exists(host.netns):
        run(["ip", "netns", "del", host.netns])
    if link_exists(host.veth):
        try_run(["ip", "link", "del", host.veth])
    detach_disk(host)


def loop_backing_file(dev: str) -> Path | None:
    path = Path("/sys/block", Path(dev).name, "loop", "backing_file")
    try:
        return Path(path.read_text().strip())
    except OSError:
        return None

"""Re-record the escape probe's output in real runc containers on this machine (as root).

    PYTHONPATH=. python3 tests/data/escape/record.py

One file per profile / weakness, the probe's JSON lines as ``RuncProbe.run`` returns them.
The weaknesses that need something on the host (a listening socket, a process as uid 65534,
a network namespace with an address) are set up here and removed again.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pytest_azlinux.containers import RuncProbe, Variation
from pytest_azlinux.host import Host
from pytest_azlinux.targets import HostSpec
from pytest_azlinux.transport.local import LocalTransport

HERE = Path(__file__).resolve().parent
SOCKET = "/run/containerd/containerd.sock"


@contextlib.contextmanager
def background(*argv: str) -> Iterator[int]:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def record(probe: RuncProbe, name: str, profile: str, variation: Variation | None = None,
           **kwargs: object) -> None:
    run = probe.run(profile, variation, **kwargs)  # type: ignore[arg-type]
    (HERE / f"{name}.jsonl").write_text("\n".join(run.probe_lines) + "\n")
    print(f"{name}: {run.verdict.outcome}", file=sys.stderr)


WEAKNESSES = (
    ("restricted-seccomp-clone-newuser", "restricted",
     Variation(seccomp_allow=("clone:CLONE_NEWUSER",))),
    ("restricted-seccomp-add-key", "restricted", Variation(seccomp_allow=("add_key",))),
    ("restricted-seccomp-request-key", "restricted", Variation(seccomp_allow=("request_key",))),
    ("baseline-seccomp-keyctl", "baseline", Variation(seccomp_allow=("keyctl",))),
    ("baseline-sys-admin-seccomp-mount", "baseline",
     Variation(add_caps=("sys_admin",), seccomp_allow=("mount",))),
    ("restricted-device-allow-mem", "restricted",
     Variation(device_allow=("c 1:1 rwm", "c 1:2 rwm", "c 1:4 rwm"))),
)


def without_python3(script: str) -> str:
    """The probe as it runs in a container without python3 (the probe looks for it by name)."""
    return script.replace("command -v python3", "command -v azl-absent-python3")


def with_noexec_tmpdir(script: str) -> str:
    """The probe with its temp dir on /dev/shm (mounted noexec in the containers here)."""
    return script.replace("#!/bin/sh\n", "#!/bin/sh\nTMPDIR=/dev/shm; export TMPDIR\n", 1)


def main() -> None:
    host = Host(HostSpec(name="local", target="local", access="local", sudo=True),
                LocalTransport())
    probe = RuncProbe(host)
    for profile in ("restricted", "baseline", "privileged"):
        record(probe, profile, profile)
    simple = {
        "restricted-cap-sys-admin": Variation(add_caps=("sys_admin",)),
        "restricted-cap-setuid-setgid": Variation(add_caps=("setuid", "setgid")),
        "restricted-host-pid": Variation(host_pid=True),
        "restricted-host-pid-sys-ptrace": Variation(host_pid=True, add_caps=("sys_ptrace",)),
        "restricted-host-net-net-admin": Variation(host_net=True, add_caps=("net_admin",)),
        "restricted-block-device": Variation(block_device=("/dev/azl-disk", 7, 0)),
        "restricted-writable-proc-sys": Variation(writable_proc_sys=True),
        "restricted-no-seccomp": Variation(no_seccomp=True),
    }
    for name, variation in simple.items():
        record(probe, name, "restricted", variation)
    # weaknesses a stand-in check hid (each one syscall or one device rule)
    for name, profile, variation in WEAKNESSES:
        record(probe, name, profile, variation)
    # a container without python3 (its name hidden from the probe): the x86_64 helper makes
    # the raw syscalls; with a noexec temp dir too, they are not tried
    clone = Variation(seccomp_allow=("clone:CLONE_NEWUSER",))
    blind = RuncProbe(host, script=without_python3(probe.script))
    record(blind, "restricted-no-python3-clone-newuser", "restricted", clone)
    noexec = RuncProbe(host, script=with_noexec_tmpdir(without_python3(probe.script)))
    record(noexec, "restricted-no-python3-noexec-clone-newuser", "restricted", clone)
    with background("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                    "sleep", "120"):
        record(probe, "restricted-host-pid-nobody-process", "restricted",
               Variation(host_pid=True))
    with tempfile.TemporaryDirectory(prefix="azl-escape-sock.") as tmp:
        path = f"{tmp}/containerd.sock"
        listener = ("import socket, sys, time; s = socket.socket(socket.AF_UNIX); "
                    "s.bind(sys.argv[1]); s.listen(1); time.sleep(120)")
        with background(sys.executable, "-c", listener, path):
            record(probe, "restricted-runtime-socket", "restricted",
                   Variation(socket=(path, SOCKET)))
    with background("unshare", "-n", "sleep", "120") as pid:
        subprocess.run(["nsenter", "-t", str(pid), "-n", "sh", "-c",
                        "ip link add azl0 type veth peer name azl1 && "
                        "ip addr add 198.19.254.45/24 dev azl0 && ip link set azl1 up && "
                        "ip link set azl0 up"], check=True)
        record(probe, "restricted-own-netns-node-ip-near", "restricted",
               probe_args={"node_ip": "198.19.254.4"}, netns_path=f"/proc/{pid}/ns/net")


if __name__ == "__main__":
    main()

"""The seccomp profile applied to restricted and baseline containers.

A deny list with the effect of the containerd/Docker default profile for a container without
CAP_SYS_ADMIN: the syscalls that default profile leaves out (namespaces, mounts, keyrings,
BPF, perf, modules, kexec, reboot, swap, ptrace-like memory access, handle-based opens,
clock setting) fail with EPERM, ``clone`` with namespace flags fails, and ``clone3`` returns
ENOSYS so libc falls back to ``clone`` (whose flags a filter can read). Written as a deny
list so it loads whatever syscall names this libseccomp knows (runc ignores unknown names).

``allow`` weakens the profile by exactly the named entries (the escape tests give a container
one weakness at a time): a syscall name leaves it out of the deny list, ``clone:CLONE_NEWUSER``
(any flag name of ``CLONE_NAMESPACE_FLAGS``) drops the rule refusing ``clone`` with that flag.
``kill`` names syscalls that kill the caller (SCMP_ACT_KILL_PROCESS) instead of failing, as
some hardened profiles do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EPERM = 1
ENOSYS = 38

DENIED_SYSCALLS = (
    "mount", "umount", "umount2", "unshare", "setns", "pivot_root",
    "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd",
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "nfsservctl", "lookup_dcookie", "uselib", "ustat",
    "sysfs", "_sysctl", "vm86", "vm86old", "iopl", "ioperm", "syslog",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "move_pages",
    "open_by_handle_at", "name_to_handle_at",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)
# clone flags that create namespaces: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET (include/uapi/linux/sched.h)
CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def default_profile(
    machine: str, allow: Iterable[str] = (), kill: Iterable[str] = ()
) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a host of architecture ``machine`` (uname -m),
    less the entries named in ``allow``, with those in ``kill`` fatal (module docstring)."""
    killed = list(kill)
    allowed = set(allow) | set(killed)
    unknown = {a for a in allowed if a not in DENIED_SYSCALLS
               and a.removeprefix("clone:") not in CLONE_NAMESPACE_FLAGS}
    if unknown:
        raise ValueError(f"not in the default seccomp profile: {', '.join(sorted(unknown))}")
    syscalls: list[dict[str, Any]] = [
        {"names": [n for n in DENIED_SYSCALLS if n not in allowed], "action": "SCMP_ACT_ERRNO",
         "errnoRet": EPERM},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]
    if killed:
        syscalls.append({"names": killed, "action": "SCMP_ACT_KILL_PROCESS"})
    # clone's flags are argument 0 on x86_64 and arm64; one rule per flag (rules are ORed)
    for name, flag in CLONE_NAMESPACE_FLAGS.items():
        if f"clone:{name}" in allowed:
            continue
        syscalls.append({
            "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        })
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ARCHITECTURES.get(machine, []),
        "syscalls": syscalls,
    }

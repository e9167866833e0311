"""Lab VM hosts: qemu VMs with kernels of their own, on the lab's bridge, reached over SSH.

``start_vms(lab, variants)`` builds (or takes from the cache) the image each variant needs,
prepares one instance per variant (a qcow2 overlay over the pristine image, a small config
disk with hostname, address, host key, the lab's public key and the Azure Linux identity
files, a tap device on the lab's bridge), boots them (as many at once as the CPU and memory
budget allow) and waits for sshd. Host keys are made here, before boot, and pinned in the
lab's known_hosts. ``stop_vms(lab)`` kills qemu, deletes taps, unpins keys and removes the
instance files; ``vm_status(lab)`` says what runs.

The lab must be up (``Lab.up``): VMs use its bridge, subnet, client key and known_hosts.
``write_vm_targets`` writes ``<state_dir>/vm-targets.yaml`` (ssh target ``lab-vm``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import AzlError, VmError
from ..vm.accel import choose_accel
from ..vm.firmware import firmware_qemu_args, secure_boot_firmware, setup_mode_firmware
from ..vm.keys import ensure_ed25519
from ..vm.net import delete_link, iface_key, make_tap
from ..vm.process import (
    POLL_SECONDS,
    console_tail,
    is_our_qemu,
    read_pid,
    stop_qemu,
    wait_for_sshd,
)
from ..vm.qemu import Drive, KernelBoot, QemuVm, qemu_command
from ..vm.tpm import Swtpm, start_swtpm, stop_swtpm, tpm_qemu_args
from .vm_image import Progress, VmImage, ensure_image, lab_secure_boot_keys
from .vm_variants import ALL_VARIANTS, NODE_VARIANTS, VM_TARGET_SUITES, VmVariant, get_variant

VM_STATE = "vms.json"
FIRST_VM_HOST = 200  # VMs take .201, .202... of the lab's /24 (namespaced hosts count up from .2)
DEFAULT_MEMORY_MIB = int(os.environ.get("AZL_VM_MEMORY_MIB", "1024"))
MEMORY_BUDGET_MIB = int(os.environ.get("AZL_VM_MEMORY_BUDGET_MIB", "8192"))
# How long a VM may take until sshd answers, by accelerator: KVM boots in seconds; TCG
# (software emulation) took 35-50 s on an idle 2-core machine, 124-286 s at load average
# 4-10, and 326-524 s at load 10-11 with nine VMs booting at once; its bound leaves more than
# twice the worst seen.
BOOT_TIMEOUTS = {"kvm": 180.0, "tcg": 1200.0}
# SSH connect (banner and key exchange) of a booted VM, by accelerator: slow under TCG too.
CONNECT_TIMEOUTS = {"kvm": 20.0, "tcg": 60.0}
_state_lock = threading.Lock()


@dataclass(frozen=True)
class VmNet:
    """What a VM needs from the lab: where to keep files, which bridge, addresses, keys."""

    state_dir: Path
    bridge: str
    subnet: ipaddress.IPv4Network
    lab_name: str
    client_public_key: str
    identity_file: Path
    known_hosts: Path
    used_addresses: frozenset[str] = frozenset()

    @classmethod
    def from_lab(cls, lab: Any) -> VmNet:
        """Read a ``Lab`` (its state file: bridge, subnet, hosts; its key and known_hosts)."""
        if isinstance(lab, VmNet):
            return lab
        state = lab.load_state() if hasattr(lab, "load_state") else None
        if state is None:
            raise AzlError(f"lab VMs: lab {getattr(lab, 'name', lab)!r} is not up (no state)")
        try:
            identity = Path(lab.identity_file)
            return cls(
                state_dir=Path(lab.state_dir),
                bridge=str(state.bridge),
                subnet=ipaddress.IPv4Network(str(state.subnet)),
                lab_name=str(state.name),
                client_public_key=identity.with_name(identity.name + ".pub").read_text().strip(),
                identity_file=identity,
                known_hosts=Path(lab.known_hosts),
                used_addresses=frozenset(h.address for h in state.hosts),
            )
        except (AttributeError, OSError, ValueError) as exc:
            raise AzlError(f"lab VMs: cannot read lab {lab!r}: {exc}") from None


@dataclass
class VmHost:
    """One running lab VM."""

    name: str
    variant: str
    address: str
    prefix: int
    mac: str
    tap: str
    dir: str
    accel: str
    memory_mib: int
    pid: int | None = None
    boot_seconds: float | None = None
    host_key: str = ""  # the public host key pinned in known_hosts
    disks: dict[str, str] = field(default_factory=dict)  # more read-only disks: serial -> file

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def console_log(self) -> Path:
        return self.path / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.path / "qemu.pid"

    @property
    def running(self) -> bool:
        return self.pid is not None and is_our_qemu(self.pid, self.name)

    @property
    def spec(self) -> VmVariant:
        return get_variant(self.variant)

    def targets_entry(self, net: VmNet) -> dict[str, Any]:
        """This VM as a host entry of an ``ssh`` target (what the lab's targets file lists)."""
        entry: dict[str, Any] = {
            "name": self.name,
            "address": self.address,
            "user": "azureuser",
            "identity_file": str(net.identity_file),
            "known_hosts": str(net.known_hosts),
            "host_key_policy": "strict",
            "sudo": True,
            "connect_timeout": CONNECT_TIMEOUTS.get(self.accel, CONNECT_TIMEOUTS["tcg"]),
        }
        if self.spec.profile:
            entry["profile"] = self.spec.profile
        return entry


# --- state ------------------------------------------------------------------------------


def _state_path(net: VmNet) -> Path:
    return net.state_dir / VM_STATE


def load_vms(net: VmNet) -> list[VmHost]:
    path = _state_path(net)
    if not path.is_file():
        return []
    return [VmHost(**h) for h in json.loads(path.read_text())]


def _save_vms(net: VmNet, vms: Iterable[VmHost]) -> None:
    path = _state_path(net)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(v) for v in vms], indent=2))
    os.replace(tmp, path)


def _record(net: VmNet, vm: VmHost) -> None:
    with _state_lock:
        vms = [v for v in load_vms(net) if v.name != vm.name]
        _save_vms(net, [*vms, vm])


# --- naming and addresses ---------------------------------------------------------------


def vm_name(net: VmNet, variant: str) -> str:
    return f"{net.lab_name}-{variant}"


def vm_address(net: VmNet, variant: str) -> str:
    """A fixed address per variant: .201 for the first variant, .202 for the second..."""
    index = list(ALL_VARIANTS).index(variant) + 1
    address = str(net.subnet.network_address + FIRST_VM_HOST + index)
    if address in net.used_addresses:
        raise VmError(f"lab VM {variant}: address {address} is taken by a lab host")
    return address


def _tap(net: VmNet, variant: str) -> str:
    return f"azv-{iface_key(net.lab_name)}-{list(ALL_VARIANTS).index(variant) + 1}"


def _mac(net: VmNet, variant: str) -> str:
    """52:54:00 (qemu's prefix), then the VM's address minus the first octet: unique per lab."""
    octets = ipaddress.IPv4Address(vm_address(net, variant)).packed[1:]
    return "52:54:00:" + ":".join(f"{o:02x}" for o in octets)


# --- known_hosts ------------------------------------------------------------------------


def _pin(known_hosts: Path, address: str, host_key: str) -> None:
    """Replace any line for ``address`` with the VM's host key (``address keytype key``)."""
    with _state_lock:
        lines = _lines_without(known_hosts, address)
        key = " ".join(host_key.split()[:2])
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        known_hosts.write_text("".join(f"{line}\n" for line in [*lines, f"{address} {key}"]))


def _unpin(known_hosts: Path, address: str) -> None:
    with _state_lock:
        if known_hosts.is_file():
            lines = _lines_without(known_hosts, address)
            known_hosts.write_text("".join(f"{line}\n" for line in lines))


def _lines_without(known_hosts: Path, address: str) -> list[str]:
    if not known_hosts.is_file():
        return []
    return [
        line for line in known_hosts.read_text().splitlines()
        if line.strip() and address not in line.split()[0].split(",")
    ]  # fmt: skip


# --- instance preparation -----------------------------------------------------------------


def _config_disk(vm: VmHost, net: VmNet) -> Path:
    """The small ext4 disk the initramfs copies over the root (see vm_image._LOCAL_BOTTOM)."""
    with tempfile.TemporaryDirectory(prefix="azl-vmcfg-") as tmp:
        top = Path(tmp)
        files = top / "files"
        host_key = vm.path / "ssh_host_ed25519_key"
        content: dict[str, tuple[str | bytes, int]] = {
            "etc/hostname": (vm.name + "\n", 0o644),
            "etc/hosts": (f"127.0.0.1 localhost\n{vm.address} {vm.name}\n", 0o644),
            "etc/systemd/network/10-lab.network": (
                f"[Match]\nMACAddress={vm.mac}\n\n[Network]\nAddress={vm.address}/{vm.prefix}\n"
                "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
                0o644,
            ),
            "etc/ssh/ssh_host_ed25519_key": (host_key.read_bytes(), 0o600),
            "etc/ssh/ssh_host_ed25519_key.pub": (vm.host_key + "\n", 0o644),
            "home/azureuser/.ssh/authorized_keys": (net.client_public_key + "\n", 0o600),
        }
        for rel, text in vm.spec.identity_files().items():
            content[rel] = (text, 0o644)
        for rel, (data, mode) in content.items():
            path = files / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
            path.chmod(mode)
        ssh_dir = files / "home/azureuser/.ssh"
        ssh_dir.chmod(0o700)
        for p in (ssh_dir, ssh_dir / "authorized_keys", files / "home/azureuser"):
            os.chown(p, 1000, 1000)
        (files / "home/azureuser").chmod(0o755)
        (top / "manifest").write_text("".join(f"{rel}\n" for rel in content))
        disk = vm.path / "cfg.img"
        disk.unlink(missing_ok=True)
        _sh(["mke2fs", "-q", "-t", "ext4", "-L", "azlcfg", "-d", str(top), str(disk), "8M"])
    return disk


def _sh(cmd: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise VmError(f"lab VMs: {' '.join(cmd)} failed: {res.stderr.strip()}")
    return res


# --- boot ---------------------------------------------------------------------------------


def _trusted_qemu_vm(vm: VmHost, overlay: Path, cfg_disk: Path) -> QemuVm:
    """A ``trusted``-layout VM: OVMF with Secure Boot (or in setup mode) boots systemd-boot
    from the disk's ESP; a vTPM where the variant has one."""
    boot = vm.spec.trusted
    assert boot is not None
    if boot.secure_boot:
        firmware = secure_boot_firmware(vm.path, lab_secure_boot_keys())
    else:
        firmware = setup_mode_firmware(vm.path)
    extra = firmware_qemu_args(firmware)
    if boot.tpm:
        extra += tpm_qemu_args(Swtpm(vm.path / "tpm"))
    drives = [Drive("disk", overlay, "qcow2", serial="azldisk", bootindex=0),
              Drive("azlcfg", cfg_disk, "raw", readonly=True, serial="azlcfg")]  # fmt: skip
    return QemuVm(
        name=vm.name, accel=vm.accel, cpus=1, memory_mib=vm.memory_mib,
        console_log=vm.console_log, pidfile=vm.pidfile, tap=vm.tap, mac=vm.mac,
        drives=drives, extra_args=extra,
    )  # fmt: skip


def _qemu_vm(vm: VmHost, image: VmImage, overlay: Path, cfg_disk: Path) -> QemuVm:
    """One lab VM for qemu: its kernel booted straight (no bootloader), the root overlay,
    the config disk, a dm-verity /usr where the layout has one, the extra disks."""
    if vm.spec.trusted is not None:
        return _trusted_qemu_vm(vm, overlay, cfg_disk)
    append = ["console=ttyS0", "root=LABEL=azlroot", "rw", "panic=-1", "azl.cfg=1",
              *vm.spec.cmdline]  # fmt: skip
    if image.usr_root_hash:
        append.append(f"azl.usrhash={image.usr_root_hash}")
    disks: list[tuple[str, Path, str, bool]] = [
        ("azlroot", overlay, "qcow2", False),
        ("azlcfg", cfg_disk, "raw", True),
    ]
    if image.usr and image.usr_hash_tree:
        disks.append(("azlusr", image.usr, "raw", True))
        disks.append(("azlusrhash", image.usr_hash_tree, "raw", True))
    disks += [(serial, Path(path), "raw", True) for serial, path in vm.disks.items()]
    return QemuVm(
        name=vm.name, accel=vm.accel, cpus=1, memory_mib=vm.memory_mib,
        console_log=vm.console_log, pidfile=vm.pidfile, tap=vm.tap, mac=vm.mac,
        drives=[Drive(serial, path, fmt, readonly=ro, serial=serial)
                for serial, path, fmt, ro in disks],
        kernel=KernelBoot(image.kernel, image.initrd, append),
    )  # fmt: skip


def boot_timeout(accel: str) -> float:
    """How long a VM under ``accel`` may take to answer on port 22 (``AZL_VM_BOOT_TIMEOUT``
    overrides)."""
    forced = os.environ.get("AZL_VM_BOOT_TIMEOUT")
    return float(forced) if forced else BOOT_TIMEOUTS.get(accel, BOOT_TIMEOUTS["tcg"])


def _wait_for_sshd(vm: VmHost, started: float, timeout: float) -> None:
    """Until sshd on the VM sends its banner; an ERROR with the console's tail otherwise."""
    waited = wait_for_sshd(vm.address, started + timeout, lambda: vm.running)
    if waited == "up":
        return
    if waited == "exited":
        raise VmError(
            f"lab VM {vm.name}: qemu exited during boot; console tail:\n"
            + console_tail(vm.console_log)
        )
    tail = console_tail(vm.console_log).strip() or "(the console printed nothing yet)"
    raise VmError(
        f"lab VM {vm.name} ({vm.address}, {vm.accel}): sshd did not answer within "
        f"{timeout:.0f} s; console tail:\n{tail}"
    )


def _start_qemu(vm: VmHost, image: VmImage, net: VmNet) -> float:
    """Host key, config disk, overlay, tap (and vTPM), then qemu; returns its start time."""
    vm.path.mkdir(parents=True, exist_ok=True)
    host_key_path = vm.path / "ssh_host_ed25519_key"
    for p in (host_key_path, host_key_path.with_name(host_key_path.name + ".pub")):
        p.unlink(missing_ok=True)
    vm.host_key = ensure_ed25519(host_key_path, f"root@{vm.name}")
    _pin(net.known_hosts, vm.address, vm.host_key)
    cfg = _config_disk(vm, net)
    overlay = vm.path / "root.qcow2"
    overlay.unlink(missing_ok=True)
    trusted = vm.spec.trusted
    base = image.disk(trusted.disk) if trusted else image.root
    base_format = "qcow2" if base.suffix == ".qcow2" else "raw"
    _sh(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format,
         str(overlay)])  # fmt: skip
    make_tap(vm.tap, net.bridge)
    vm.console_log.unlink(missing_ok=True)
    if trusted is not None and trusted.tpm:
        start_swtpm(vm.path / "tpm")
    cmd = qemu_command(_qemu_vm(vm, image, overlay, cfg))
    (vm.path / "qemu.cmd").write_text(" ".join(cmd) + "\n")
    t0 = time.monotonic()
    res = _sh(cmd, check=False)
    vm.pid = read_pid(vm.pidfile)
    _record(net, vm)  # recorded before the wait: stop_vms finds it even if the wait fails
    if res.returncode != 0 or vm.pid is None:
        raise VmError(f"lab VM {vm.name}: qemu did not start: {res.stderr.strip()}")
    return t0


def _boot(vm: VmHost, image: VmImage, net: VmNet, progress: Progress) -> VmHost:
    t0 = _start_qemu(vm, image, net)
    progress(f"vm {vm.name}: booting ({vm.accel}, {vm.memory_mib} MiB, {vm.address}) ...")
    _wait_for_sshd(vm, t0, boot_timeout(vm.accel))
    vm.boot_seconds = round(time.monotonic() - t0, 2)
    _record(net, vm)
    progress(f"vm {vm.name}: sshd answered after {vm.boot_seconds:.1f} s")
    return vm


# What the firmware or systemd-boot print when Secure Boot refuses an image (the EFI status
# strings of EFI_SECURITY_VIOLATION and EFI_ACCESS_DENIED, UEFI 2.10 appendix D).
REFUSED = ("security violation", "access denied")


def boot_refused(lab: Any, variant: str, timeout: float | None = None,
                 progress: Progress = print) -> list[str]:
    """Boot a variant that must not boot (``TrustedBoot.boots`` False) until the console
    shows the refusal; return the console lines that say it. The VM is stopped and removed
    as soon as the refusal shows (no boot timeout is waited out), also on failure. A VmError
    if it booted on, or qemu exited, or ``timeout`` passed without a refusal."""
    spec = get_variant(variant)
    if spec.trusted is None or spec.trusted.boots:
        raise VmError(f"lab VM {variant}: not a variant the firmware must refuse")
    net = VmNet.from_lab(lab)
    image = ensure_image(spec.layout, progress)
    vm = VmHost(name=vm_name(net, variant), variant=variant, address=vm_address(net, variant),
                prefix=net.subnet.prefixlen, mac=_mac(net, variant), tap=_tap(net, variant),
                dir=str(net.state_dir / "vm" / vm_name(net, variant)),
                accel=choose_accel(image.kernel), memory_mib=DEFAULT_MEMORY_MIB)  # fmt: skip
    limit = timeout if timeout is not None else boot_timeout(vm.accel)
    try:
        t0 = _start_qemu(vm, image, net)
        progress(f"vm {vm.name}: booting; the firmware must refuse its unsigned UKI ...")
        while time.monotonic() - t0 < limit:
            lines = console_tail(vm.console_log, 200).splitlines()
            said = [ln for ln in lines if any(r in ln.lower() for r in REFUSED)]
            if said:
                progress(f"vm {vm.name}: refused after {time.monotonic() - t0:.1f} s")
                return said
            if any("Linux version" in ln for ln in lines):
                raise VmError(f"lab VM {vm.name}: the unsigned UKI booted a kernel under "
                              "Secure Boot:\n" + "\n".join(lines[-15:]))
            if not vm.running:
                raise VmError(f"lab VM {vm.name}: qemu exited without a refusal; console:\n"
                              + "\n".join(lines[-15:]))
            time.sleep(POLL_SECONDS)
        raise VmError(f"lab VM {vm.name}: no refusal on the console within {limit:.0f} s; "
                      "console tail:\n" + console_tail(vm.console_log))
    finally:
        _stop_one(net, vm)


def parallel_boots(accel: str, memory_mib: int, count: int) -> int:
    """How many VMs may boot at once: one per core under TCG, bounded by the memory budget."""
    cores = os.cpu_count() or 1
    by_cpu = cores if accel == "tcg" else 2 * cores
    by_memory = max(1, MEMORY_BUDGET_MIB // memory_mib)
    return max(1, min(count, by_cpu, by_memory))


def start_vms(
    lab: Any,
    variants: Sequence[str],
    *,
    memory_mib: int = DEFAULT_MEMORY_MIB,
    progress: Progress = print,
    disks: dict[str, Path] | None = None,
    memory_budget_mib: int = MEMORY_BUDGET_MIB,
) -> list[VmHost]:
    """Build what is missing, boot one VM per variant, wait for sshd; return the VMs.

    A VM already running for a variant is kept. On failure every VM this call started is
    stopped before the error propagates. ``disks``: more read-only disks (serial -> file)
    for the VMs this call boots (a real node's components).
    """
    net = VmNet.from_lab(lab)
    wanted = list(dict.fromkeys(get_variant(v).name for v in variants))
    refused = [v for v in wanted if (t := get_variant(v).trusted) is not None and not t.boots]
    if refused:
        raise VmError(f"lab VM {refused[0]}: the firmware refuses to boot it by design (an "
                      "unsigned UKI under Secure Boot); it has no sshd to wait for")
    running = {v.variant: v for v in load_vms(net) if v.running}

    def memory_of(variant: str) -> int:
        return get_variant(variant).memory_mib or memory_mib

    total = sum(memory_of(v) for v in set(wanted) | set(running))
    if total > memory_budget_mib:
        raise VmError(
            f"lab VMs: {total} MiB wanted, budget {memory_budget_mib} MiB "
            "(AZL_VM_MEMORY_BUDGET_MIB); start fewer variants or less memory per VM"
        )
    images = {layout: ensure_image(layout, progress) for layout in
              dict.fromkeys(get_variant(v).layout for v in wanted if v not in running)}  # fmt: skip
    to_boot: list[tuple[VmHost, VmImage]] = []
    for variant in wanted:
        if variant in running:
            continue
        image = images[get_variant(variant).layout]
        name = vm_name(net, variant)
        to_boot.append((
            VmHost(
                name=name, variant=variant, address=vm_address(net, variant),
                prefix=net.subnet.prefixlen, mac=_mac(net, variant), tap=_tap(net, variant),
                dir=str(net.state_dir / "vm" / name), accel=choose_accel(image.kernel),
                memory_mib=memory_of(variant),
                disks={serial: str(path) for serial, path in (disks or {}).items()},
            ),
            image,
        ))  # fmt: skip
    if to_boot:
        workers = parallel_boots(to_boot[0][0].accel, memory_mib, len(to_boot))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_boot, vm, image, net, progress) for vm, image in to_boot]
            errors = [f.exception() for f in futures]
        failed = [e for e in errors if e is not None]
        if failed:
            for vm, _ in to_boot:
                _stop_one(net, vm)
            raise failed[0]
    if any(v not in NODE_VARIANTS for v in wanted):
        write_vm_targets(net)
    by_variant = {v.variant: v for v in load_vms(net)}
    return [by_variant[v] for v in wanted]


def _stop_one(net: VmNet, vm: VmHost) -> None:
    pid = vm.pid or read_pid(vm.pidfile)
    if pid is not None:
        stop_qemu(pid, vm.name)
    stop_swtpm(Swtpm(vm.path / "tpm"))  # exits with qemu (--terminate); the state goes here
    delete_link(vm.tap)
    _unpin(net.known_hosts, vm.address)
    shutil.rmtree(vm.path, ignore_errors=True)
    with _state_lock:
        _save_vms(net, [v for v in load_vms(net) if v.name != vm.name])


def stop_vms(
    lab: Any, progress: Progress = print, variants: Sequence[str] | None = None,
) -> int:
    """Stop every VM of the lab (or those of ``variants``) and remove its tap, pinned key and
    files; return how many."""
    net = VmNet.from_lab(lab)
    vms = [vm for vm in load_vms(net) if variants is None or vm.variant in variants]
    for vm in vms:
        _stop_one(net, vm)
        progress(f"vm {vm.name}: stopped")
    if variants is not None:
        return len(vms)
    _state_path(net).unlink(missing_ok=True)
    (net.state_dir / "vm-targets.yaml").unlink(missing_ok=True)
    shutil.rmtree(net.state_dir / "vm", ignore_errors=True)
    return len(vms)


def vm_status(lab: Any) -> list[dict[str, Any]]:
    """One row per VM: name, variant, address, state, accel, boot time."""
    net = VmNet.from_lab(lab)
    return [
        {
            "name": vm.name, "variant": vm.variant, "address": vm.address,
            "state": "running" if vm.running else "stopped", "accel": vm.accel,
            "boot_seconds": vm.boot_seconds, "stands_for": vm.spec.stands_for,
        }
        for vm in load_vms(net)
    ]  # fmt: skip


VM_TARGET = "lab-vm"


def write_vm_targets(lab: Any, target: str = VM_TARGET) -> Path:
    """``<state_dir>/vm-targets.yaml``: an ssh target with the lab's running VMs."""
    net = VmNet.from_lab(lab)
    vms = [vm for vm in load_vms(net) if vm.running and vm.variant not in NODE_VARIANTS]
    if not vms:
        raise VmError(f"lab VMs: no VM runs in lab {net.lab_name} (azl lab vm up VARIANT)")
    for vm in vms:  # the lab rewrites known_hosts on `up`: make sure the VMs are pinned
        _pin(net.known_hosts, vm.address, vm.host_key)
    doc = {
        "targets": {
            target: {
                "kind": "ssh",
                "description": f"lab {net.lab_name}: VMs "
                + ", ".join(f"{vm.name} (~ {vm.spec.stands_for})" for vm in vms),
                "hosts": [vm.targets_entry(net) for vm in vms],
                "suites": VM_TARGET_SUITES,  # the Debian userland's boot-time noise, explained
            }
        }
    }
    path = net.state_dir / "vm-targets.yaml"
    path.write_text(
        "# Written by the lab's VM hosts; rewritten on every start.\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )
    return path

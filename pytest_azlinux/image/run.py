"""Every instance of one image target in this run: prepared at resolve time, booted in the
background (boots overlap test collection), waited for on first connect, torn down at the end.

The controlling pytest process makes the run's network (a bridge with a free /24 of its
own, ``vm.net``) and boots; xdist workers find the run through an environment variable the
controller sets before it starts them (``AZL_IMAGE_RUN_<TARGET>``, the run's directory) and
wait for each instance's ``ready.json`` or ``failed.txt``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import progress
from ..errors import ImageBootError, TargetsError, VmError
from ..targets import HostSpec, ImageTarget, SshSettings, merge_ssh_spec
from ..vm.accel import accel_for_unknown_kernel
from ..vm.accel import cache_root as vm_cache_root
from ..vm.keys import ensure_ed25519
from ..vm.net import (
    MACHINE_LOCK,
    add_bridge,
    delete_link,
    free_subnet,
    iface_key,
    locked,
    networks_in_use,
)
from . import boot
from .boot import Instance
from .check import check_image
from .claims import DiskFacts, read_disk
from .ignition import IgnitionSpec, load_user_config, write_config
from .info import BootInfo
from .provisioning import Provisioning, decide
from .seed import SeedSpec, write_seed

FIRST_HOST = 200  # instances take .201, .202... of the run's /24
FOLLOWER_SLACK_SECONDS = 120.0
RUNS_DIR_ENV = "AZL_IMAGE_DIR"
DEFAULT_RUNS_DIR = Path("/var/lib/azl-image")


def secure_boot_keys_dir() -> Path:
    """The lab's Secure Boot keys (``firmware: uefi-secureboot``): the ones the lab's trusted
    VMs are signed with (``$AZL_VM_CACHE/secureboot``), made once and kept across runs, so an
    image signed with the lab's db key boots in every run."""
    return (vm_cache_root() / "secureboot").absolute()


def run_env(target: str) -> str:
    return "AZL_IMAGE_RUN_" + re.sub(r"[^A-Za-z0-9]", "_", target).upper()


def run_name(target: str, pid: int | None = None) -> str:
    """The run of process ``pid`` (default: this one) for ``target``: names its bridge, taps,
    qemu processes and directory, so runs of several processes coexist."""
    key = re.sub(r"[^a-z0-9]", "", iface_key(target.lower())) or "x"
    return f"img{os.getpid() if pid is None else pid}-{key}"[:32]


def run_dir(name: str) -> Path:
    """Where run ``name`` keeps its files (``$AZL_IMAGE_DIR``, default /var/lib/azl-image)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).absolute() / name


def bridge_name(name: str) -> str:
    """The bridge of run ``name``; its instances' taps are ``<bridge>-<index>``."""
    return f"azi-{iface_key(name)}"


@dataclass(frozen=True)
class RunNetwork:
    """What the controller made for the run: its bridge and its directory."""

    name: str
    bridge: str
    subnet: ipaddress.IPv4Network
    directory: Path

    def remove(self) -> None:
        delete_link(self.bridge)
        shutil.rmtree(self.directory, ignore_errors=True)

    def remove_command(self) -> str:
        return f"ip link del {self.bridge}; rm -rf {self.directory}"


def make_network(name: str) -> RunNetwork:
    """A bridge with the first free /24 of 198.18.0.0/15 and the run's directory (root)."""
    if os.geteuid() != 0:
        raise VmError(f"image run {name}: booting an image file needs root (a bridge, taps)")
    directory = run_dir(name)
    bridge = bridge_name(name)
    with locked(MACHINE_LOCK):
        subnet = free_subnet(networks_in_use())
        add_bridge(bridge, f"azl-image:{directory}", subnet)
    network = RunNetwork(name, bridge, subnet, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except BaseException:
        network.remove()
        raise
    return network


def host_names(target: str, count: int) -> list[str]:
    return [target] if count == 1 else [f"{target}-{i}" for i in range(1, count + 1)]


@dataclass
class ImageRun:
    """The instances of one image target; the target's context."""

    target: str
    config: ImageTarget
    directory: Path
    instances: list[Instance]
    network: RunNetwork | None = None  # set on the controller (it owns the network)
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _errors: dict[str, BaseException] = field(default_factory=dict)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _previous_handlers: dict[int, Any] = field(default_factory=dict)
    _progress: progress.Phase | None = None  # the boots, on the controller

    @property
    def specs(self) -> list[HostSpec]:
        return [inst.spec for inst in self.instances]

    # -- controller ---------------------------------------------------------------------
    def start(self) -> None:
        """Boot every instance in a thread of its own; Ctrl-C or SIGTERM ends the boots."""
        self._chain_signals()
        shown = self._progress = progress.phase(f"booting image {self.target}",
                                                len(self.instances))
        for inst in self.instances:
            thread = threading.Thread(
                target=self._boot_one, args=(inst, shown), name=f"azl-boot-{inst.host}",
                daemon=True,
            )
            self._threads[inst.host] = thread
            thread.start()

    def _boot_one(self, inst: Instance, shown: progress.Phase) -> None:
        shown.begin(inst.host)
        try:
            boot.boot(inst, self._cancel, lambda stage: shown.step(inst.host, stage))
        except BaseException as exc:
            self._errors[inst.host] = exc
            shown.end(inst.host, "failed")
        else:
            shown.end(inst.host, "up")
        if len(shown.done) == len(self.instances):  # the last boot to end closes it
            shown.close()

    def _chain_signals(self) -> None:
        """On SIGINT/SIGTERM: cancel the boots and kill their qemu at once (a test waiting
        for a VM, and the thread pool it waits in, end now rather than when the boot would
        have), then do what the signal did before."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def on_signal(num: int, frame: Any, previous: Any = previous) -> None:
                self._cancel.set()
                for inst in self.instances:
                    boot.kill(inst)
                if callable(previous):
                    previous(num, frame)
                elif previous != signal.SIG_IGN:
                    raise KeyboardInterrupt(f"signal {num}")

            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                signal.signal(signum, on_signal)
                self._previous_handlers[signum] = previous

    def _restore_signals(self) -> None:
        for signum, previous in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, previous)
        self._previous_handlers.clear()

    def stop(self) -> None:
        """Cancel the boots, kill qemu, delete taps and files, the bridge and the directory."""
        self._restore_signals()
        self._cancel.set()
        if self._progress is not None:
            self._progress.close()
        for inst in self.instances:  # first: a boot waiting on its VM (ssh included) ends now
            boot.stop(inst)
        for thread in self._threads.values():
            thread.join(timeout=60)
        for inst in self.instances:  # a qemu started while the first pass ran
            boot.stop(inst)
        if self.network is not None:
            self.network.remove()

    def keep(self) -> None:
        """``--azl-keep``: leave everything running and say how to get in and out."""
        self._restore_signals()
        for thread in self._threads.values():
            thread.join(timeout=1)
        lines = [f"azl: image target {self.target}: left running (--azl-keep):"]
        lines += [f"  {inst.host}: {boot.keep_hint(inst)}" for inst in self.instances]
        done = [boot.stop_command(inst) for inst in self.instances]
        if self.network is not None:
            done.append(self.network.remove_command())
        lines.append(f"  when done: {'; '.join(done)}")
        sys.stderr.write("\n".join(lines) + "\n")

    # -- every process ------------------------------------------------------------------
    def _instance(self, host: str) -> Instance:
        for inst in self.instances:
            if inst.host == host:
                return inst
        raise KeyError(host)

    def wait_ready(self, host: str) -> None:
        """Return once ``host`` is usable; raise its ImageBootError when it did not boot."""
        inst = self._instance(host)
        thread = self._threads.get(host)
        if thread is not None:
            thread.join()
            error = self._errors.get(host)
            if isinstance(error, ImageBootError):
                raise error
            if error is not None:
                raise inst.error(f"boot failed: {type(error).__name__}: {error}")
            return
        deadline = time.monotonic() + 2 * inst.boot_timeout + FOLLOWER_SLACK_SECONDS
        while time.monotonic() < deadline:
            if inst.ready_file.is_file():
                return
            if inst.failed_file.is_file():
                raise inst.error(inst.failed_file.read_text().split(": ", 2)[-1])
            time.sleep(0.5)
        raise inst.error("the controlling process never said whether it booted")

    def boot_info(self, host: str) -> BootInfo | None:
        """What the boot of ``host`` measured (None until it booted, or if it failed)."""
        try:
            return BootInfo.from_json(self._instance(host).ready_file.read_text())
        except (KeyError, OSError, ValueError):
            return None


def prepare(target: str, config: ImageTarget) -> ImageRun:
    """Controller: the run's bridge, keys, seeds and host specs; nothing boots yet."""
    image = Path(config.path)
    if not image.is_file():
        why = "is not a file" if image.exists() else "no such file"
        raise TargetsError(f"target {target!r}: field 'path': {why}: {image}")
    checked = check_image(target, image, config.image_format())  # corrupt: exit 4 now
    merge = load_user_config(target, config.ignition) if config.ignition else None
    if config.secure_boot_vars and not Path(config.secure_boot_vars).is_file():
        raise TargetsError(
            f"target {target!r}: field 'secure_boot_vars': no such file: {config.secure_boot_vars}"
        )
    network = make_network(run_name(target))
    try:
        disk = _read_disk(network.directory, image, checked.format)
        how = decide(config.provisioning, config.user, disk)
        if merge is not None and how.how != "ignition":
            raise TargetsError(
                f"target {target!r}: field 'ignition': the image is provisioned by {how.how} "
                f"({how.why}); set provisioning: ignition to use an Ignition config"
            )
        run = _instances(target, config, network, disk, how, merge)
    except BaseException:
        network.remove()
        raise
    os.environ[run_env(target)] = str(run.directory)  # for xdist workers started after this
    return run


def _read_disk(directory: Path, image: Path, fmt: str) -> DiskFacts:
    """What the file says before boot, read once per target through a throwaway overlay
    (the file itself is never opened writable)."""
    probe = directory / "probe.qcow2"
    res = subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.absolute()), "-F", fmt,
         str(probe)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        if res.returncode != 0:
            return DiskFacts(skipped=f"qemu-img create (overlay): {res.stderr.strip()}")
        return read_disk(probe)
    finally:
        probe.unlink(missing_ok=True)


def _instances(target: str, config: ImageTarget, network: RunNetwork, disk: DiskFacts,
               how: Provisioning, merge: str | None) -> ImageRun:  # fmt: skip
    subnet = network.subnet
    directory = network.directory / target
    directory.mkdir(parents=True, exist_ok=True)
    client_key = directory / "id"
    client_pub = ensure_ed25519(client_key, f"azl-image-{target}")
    known_hosts = directory / "known_hosts"
    layer = SshSettings(
        user=how.user, identity_file=str(client_key), known_hosts=str(known_hosts),
        host_key_policy="strict", sudo=True, connect_timeout=20.0,
    )  # fmt: skip
    instances: list[Instance] = []
    pins: list[str] = []
    timeout = boot.boot_timeout(config.boot_timeout, accel_for_unknown_kernel())
    for index, host in enumerate(host_names(target, config.instances), start=1):
        address = ipaddress.IPv4Address(int(subnet.network_address) + FIRST_HOST + index)
        mac = "52:54:00:" + ":".join(f"{o:02x}" for o in address.packed[1:])
        inst_dir = directory / host
        inst_dir.mkdir(parents=True, exist_ok=True)
        key_path = inst_dir / "ssh_host_ed25519_key"
        host_pub = ensure_ed25519(key_path, f"root@{host}")
        pins.append(f"{address} {' '.join(host_pub.split()[:2])}")
        spec = merge_ssh_spec(name=host, address=str(address), target=target, layers=(layer,),
                              profile=config.profile)  # fmt: skip
        inst = Instance(
            host=host, vm_name=f"{network.name}-{index}", image=Path(config.path),
            format=config.image_format(), firmware=config.firmware, memory=config.memory,
            cpus=config.cpus, boot_timeout=timeout, address=str(address), mac=mac,
            tap=f"{network.bridge}-{index}", bridge=network.bridge, dir=inst_dir,
            seed=inst_dir / "seed.iso", spec=spec, provisioning=how.how,
            provisioning_why=how.why, disk=disk, tpm=config.tpm,
            secure_boot_keys=secure_boot_keys_dir(),
            secure_boot_vars=Path(config.secure_boot_vars) if config.secure_boot_vars else None,
        )  # fmt: skip
        if how.how == "ignition":
            write_config(
                IgnitionSpec(
                    hostname=host, user=how.user, authorized_key=client_pub,
                    host_key_private=key_path.read_text(), host_key_public=host_pub, mac=mac,
                    address=str(address), prefix=subnet.prefixlen, merge=merge,
                ),
                inst.ignition_config,
            )  # fmt: skip
        else:
            write_seed(
                SeedSpec(
                    instance_id=f"azl-{uuid.uuid4().hex[:12]}", hostname=host,
                    authorized_key=client_pub, host_key_private=key_path.read_text(),
                    host_key_public=host_pub, mac=mac, address=str(address),
                    prefix=subnet.prefixlen, user=how.user,
                ),
                inst.seed,
            )  # fmt: skip
        instances.append(inst)
    known_hosts.write_text("".join(f"{line}\n" for line in pins))
    (directory / "run.json").write_text(json.dumps(
        {"hosts": [i.host for i in instances], "user": how.user}))  # fmt: skip
    return ImageRun(target, config, directory, instances, network=network)


def follow(target: str, config: ImageTarget) -> ImageRun:
    """xdist worker: the run the controller prepared (its directory from the environment)."""
    where = os.environ.get(run_env(target))
    if not where or not (Path(where) / "run.json").is_file():
        raise TargetsError(f"target {target!r}: image run not prepared by the controller")
    directory = Path(where)
    run = json.loads((directory / "run.json").read_text())
    layer = SshSettings(
        user=run["user"], identity_file=str(directory / "id"),
        known_hosts=str(directory / "known_hosts"), host_key_policy="strict", sudo=True,
        connect_timeout=20.0,
    )  # fmt: skip
    pinned = {
        line.split()[0]: line for line in (directory / "known_hosts").read_text().splitlines()
    }
    instances = []
    for index, host in enumerate(run["hosts"], 1):
        address = list(pinned)[index - 1]
        spec = merge_ssh_spec(name=host, address=address, target=target, layers=(layer,),
                              profile=config.profile)  # fmt: skip
        instances.append(Instance(
            host=host, vm_name="", image=Path(config.path), format=config.format,
            firmware=config.firmware, memory=config.memory, cpus=config.cpus,
            boot_timeout=boot.boot_timeout(config.boot_timeout, accel_for_unknown_kernel()),
            address=address,
            mac="", tap="", bridge="",
            dir=directory / host, seed=directory / host / "seed.iso", spec=spec,
        ))  # fmt: skip
    return ImageRun(target, config, directory, instances)

"""``Lab``: bring a set of namespaced lab hosts up, take them down, inspect and fault them."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..localproc import pid_alive
from ..vm.keys import ensure_ed25519
from ..vm.net import MACHINE_LOCK, add_bridge, locked, networks_in_use, ssh_banner
from . import faults, hostfs, hostproc
from .errors import LabError
from .names import MAX_HOSTS, LabNames, lab_name
from .state import LabHost, LabState
from .subnets import pick_subnet
from .system import (
    link_exists,
    netns_exists,
    parse_size,
    require_root,
    require_tools,
    run,
    try_run,
)
from .targetsfile import write_targets
from .variants import DEFAULT_VARIANTS, check_variants

DEFAULT_PARENT = Path("/var/lib/azl-lab")
START_TIMEOUT = 60.0
_WORKERS = 8
# Holders started by this process, kept so they can be reaped (no zombies in our tests).
_PROCS: dict[int, subprocess.Popen[bytes]] = {}


def default_state_dir(name: str) -> Path:
    parent = os.environ.get("AZL_LAB_DIR")
    return (Path(parent) if parent else DEFAULT_PARENT) / name


def known_labs(parent: Path | None = None) -> list[str]:
    """Names of the labs with a state directory under ``parent`` (``$AZL_LAB_DIR`` or
    /var/lib/azl-lab): every lab ``azl lab up`` made there and no ``down`` removed."""
    root = parent or default_state_dir("_").parent
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "state.json").is_file())


class Lab:
    """A named lab: its hosts, the state directory, and the targets file it writes.

    Several labs coexist on one machine: kernel object names derive from the lab name and
    each lab takes its own /24 inside 198.18.0.0/15.
    """

    def __init__(
        self, name: str | None = None, state_dir: str | Path | None = None,
        subnet: str | None = None,
    ) -> None:
        self.name = lab_name(name)  # None: $AZL_LAB_NAME, else "azl"
        # absolute: loop devices report absolute backing files, compared with ours
        self.state_dir = (
            Path(state_dir) if state_dir else default_state_dir(self.name)).absolute()
        self.subnet = subnet
        self.names = LabNames(self.name)

    def __repr__(self) -> str:
        return f"Lab({self.name!r}, state_dir={str(self.state_dir)!r})"

    def builtin_waivers(self) -> Path:
        """The lab's own waivers (``waivers.yaml``): what fails on its hosts by design. The
        gate adds them for a ``kind: lab`` target, whose context this lab is."""
        return Path(__file__).with_name("waivers.yaml")

    # -- state ------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def targets_file(self) -> Path:
        """YAML targets file with the ssh target ``lab`` (written by ``up``)."""
        return self.state_dir / "targets.yaml"

    @property
    def identity_file(self) -> Path:
        return self.state_dir / "id"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    def load_state(self) -> LabState | None:
        try:
            return LabState.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            raise LabError(f"{self.state_file}: unreadable lab state ({exc}); "
                           f"remove {self.state_dir} after `azl lab down`") from None

    @property
    def hosts(self) -> list[LabHost]:
        state = self.load_state()
        return sorted(state.hosts, key=lambda h: h.index) if state else []

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if name in (h.name, str(h.index), h.address):
                return h
        known = ", ".join(h.name for h in self.hosts) or "none (is the lab up?)"
        raise LabError(f"lab {self.name}: no host {name!r} (hosts: {known})")

    def _bridge_is_ours(self) -> bool:
        if not link_exists(self.names.bridge):
            return False
        info = run(["ip", "-o", "link", "show", "dev", self.names.bridge], check=False)
        return self.names.bridge_alias(str(self.state_dir)) in info

    def is_up(self) -> bool:
        return self.state_file.exists() and self._bridge_is_ours()

    # -- up ---------------------------------------------------------------------------
    def up(
        self,
        hosts: int = 3,
        variants: Sequence[str] = DEFAULT_VARIANTS,
        disk_size: str = "1G",
    ) -> list[LabHost]:
        """Bring ``hosts`` hosts up (idempotent: existing healthy hosts are kept as they are,
        missing or dead ones are (re)created); return all hosts of the lab."""
        require_root("up")
        require_tools()
        variant_list = check_variants(list(variants))
        size = parse_size(disk_size)
        if not 1 <= hosts <= MAX_HOSTS:
            raise LabError(f"--hosts {hosts}: a lab holds 1..{MAX_HOSTS} hosts")
        fresh = not self.state_dir.exists()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        with locked(self.state_dir):
            try:
                state = self._ensure_network(size)
            except LabError:
                if fresh:  # nothing was made: leave no empty state dir behind
                    shutil.rmtree(self.state_dir, ignore_errors=True)
                raise
            client_pub = ensure_ed25519(self.identity_file, f"azl-lab-{self.name}")
            for index in range(1, hosts + 1):
                if state.host(self.names.host(index)) is None:
                    state.hosts.append(self._new_host(state, index, variant_list))
            state.save(self.state_file)
            todo = [h for h in state.hosts if not self._running(h)]
            try:
                self._start_hosts(state, todo, client_pub)
            finally:
                state.save(self.state_file)
            write_targets(state, self.state_dir)
            return sorted(state.hosts, key=lambda h: h.index)

    def _ensure_network(self, disk_size: int) -> LabState:
        state = self.load_state()
        bridge = self.names.bridge
        if link_exists(bridge) and not self._bridge_is_ours():
            raise LabError(
                f"bridge {bridge} exists but belongs to another lab (same name "
                f"{self.name!r}, other state dir) or to something else; pick another lab name"
            )
        if state is not None and self._bridge_is_ours():
            return state
        with locked(MACHINE_LOCK):
            in_use = networks_in_use()
            subnet = self.subnet
            if subnet is None and state is not None:
                old = ipaddress.ip_network(state.subnet)
                subnet = state.subnet if not any(n.overlaps(old) for n in in_use) else None
            net = pick_subnet(in_use, self._reserved_by_other_labs(), subnet)
            if state is not None and state.subnet != str(net):
                self._teardown_hosts(state.hosts)  # stale (e.g. after a reboot): renumber
                state.hosts.clear()
            gateway = add_bridge(bridge, self.names.bridge_alias(str(self.state_dir)), net)
        if state is None:
            state = LabState(self.name, str(net), bridge, gateway, hostfs.free_uid(), disk_size)
        state.subnet, state.bridge_address = str(net), gateway
        state.save(self.state_file)
        return state

    def _reserved_by_other_labs(self) -> list[ipaddress.IPv4Network]:
        """Subnets recorded by sibling labs' state (a lab being started holds no address yet)."""
        out = []
        for path in self.state_dir.parent.glob("*/state.json"):
            if path.parent == self.state_dir:
                continue
            with contextlib.suppress(Exception):
                out.append(ipaddress.ip_network(LabState.from_json(path.read_text()).subnet))
        return [n for n in out if isinstance(n, ipaddress.IPv4Network)]

    def _new_host(self, state: LabState, index: int, variants: list[str]) -> LabHost:
        net = ipaddress.ip_network(state.subnet)
        name = self.names.host(index)
        return LabHost(
            name=name,
            index=index,
            variant=variants[(index - 1) % len(variants)],
            address=str(net.network_address + 1 + index),
            netns=self.names.netns(index),
            veth=self.names.veth(index),
            dir=str(self.state_dir / "hosts" / name),
        )

    def _running(self, host: LabHost) -> bool:
        return (
            netns_exists(host.netns)
            and host.holder_pid is not None
            and pid_alive(host.holder_pid)
            and link_exists(host.veth)
            and host.loop is not None
            and hostproc.loop_backing_file(host.loop) == host.disk_image
        )

    def _start_hosts(self, state: LabState, todo: list[LabHost], client_pub: str) -> None:
        if not todo:
            return
        self._teardown_hosts(todo)  # remnants of dead hosts (files are kept: same host keys)
        with locked(MACHINE_LOCK):  # losetup --find races with other labs
            for host in todo:
                host.path.mkdir(parents=True, exist_ok=True)
                host.loop = hostproc.attach_disk(host, state.disk_size)
                host.faults = {}

        def start(host: LabHost) -> None:
            hostfs.prepare_host_files(host, state.uid, client_pub)
            hostproc.create_link(host, state.bridge)
            proc = hostproc.start_holder(host)
            _PROCS[proc.pid] = proc

        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            list(pool.map(start, todo))
        deadline = time.monotonic() + START_TIMEOUT
        errors = []
        for host in todo:
            try:
                hostproc.wait_ready(host, _PROCS.get(host.holder_pid or -1), deadline)
            except LabError as exc:
                errors.append(str(exc))
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise LabError(f"{errors[0]}{more}; see {self.state_dir}/hosts/*/holder.log, "
                           f"then `azl lab down --name {self.name}`")

    # -- down -------------------------------------------------------------------------
    def down(self) -> None:
        """Remove everything the lab made; safe to run again, or on a half-made lab."""
        require_root("down")
        if self.load_state() is not None:
            from .vm import stop_vms  # VMs first: their taps sit on the bridge

            stop_vms(self, progress=lambda _message: None)
        if not self.state_dir.exists():
            self._remove_bridge()
            return
        with locked(self.state_dir):
            state = self.load_state()
            if state is not None:
                self._teardown_hosts(state.hosts)
            self._detach_stray_loops()
            self._remove_bridge()
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _teardown_hosts(self, hosts: list[LabHost]) -> None:
        def destroy(host: LabHost) -> None:
            hostproc.destroy(host)
            if host.holder_pid is not None:
                _PROCS.pop(host.holder_pid, None)

        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            list(pool.map(destroy, hosts))

    def _detach_stray_loops(self) -> None:
        root = str(self.state_dir.resolve()) + "/"
        for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
            with contextlib.suppress(OSError):
                if backing.read_text().strip().startswith(root):
                    try_run(["losetup", "-d", f"/dev/{backing.parent.parent.name}"])

    def _remove_bridge(self) -> None:
        if self._bridge_is_ours():
            run(["ip", "link", "del", self.names.bridge])

    # -- status, faults ---------------------------------------------------------------
    def status(self) -> list[tuple[LabHost, str]]:
        """Each host with its health: ``ok``, or what is wrong (and active faults)."""
        hosts = self.hosts
        with ThreadPoolExecutor(max_workers=16) as pool:
            health = list(pool.map(self._health, hosts))
        return list(zip(hosts, health, strict=True))

    def _health(self, host: LabHost) -> str:
        if not self._running(host):
            what = "not running"
        elif host.faults.get("down"):
            what = "down (link down)"
        elif hostproc.sshd_pid(host) is None:
            what = "unreachable (sshd stopped)"
        elif ssh_banner(host.address, 2.0) is None:
            what = "unreachable (sshd does not answer)"
        else:
            what = "ok"
        shown = {k: v for k, v in host.faults.items() if k not in ("down", "sshd_stop")}
        if shown:
            what += " [" + ", ".join(f"{k}={v:g}" for k, v in shown.items()) + "]"
        return what

    def fault(
        self,
        host: str,
        down: bool = False,
        sshd_stop: bool = False,
        loss: float | None = None,
        delay: float | None = None,
        rate: float | None = None,
        clear: bool = False,
    ) -> LabHost:
        """Apply faults to ``host`` (they add up until ``clear`` removes them all)."""
        require_root("fault")
        if not (down or sshd_stop or clear) and loss is None and delay is None and rate is None:
            raise LabError("fault: give --down, --sshd-stop, --loss, --delay, --rate or --clear")
        if not self.is_up():
            raise LabError(f"lab {self.name} is not up (azl lab up --name {self.name})")
        with locked(self.state_dir):
            state = self.load_state()
            target = self.host(host)
            assert state is not None
            h = state.host(target.name)
            assert h is not None
            if not self._running(h):
                raise LabError(f"lab host {h.name} is not running (azl lab up repairs it)")
            if clear:
                faults.set_link_up(h, True)
                faults.clear_link(h)
                if hostproc.sshd_pid(h) is None:
                    hostproc.start_sshd(h)
                h.faults = {}
            link = faults.LinkFault(
                loss=loss if loss is not None else h.faults.get("loss"),
                delay=delay if delay is not None else h.faults.get("delay"),
                rate=rate if rate is not None else h.faults.get("rate"),
            )
            if loss is not None or delay is not None or rate is not None:
                faults.apply_link(h, link)
                h.faults.update({k: v for k, v in
                                 (("loss", loss), ("delay", delay), ("rate", rate))
                                 if v is not None})
            if down:
                faults.set_link_up(h, False)
                h.faults["down"] = True
            if sshd_stop:
                hostproc.stop_sshd(h)
                h.faults["sshd_stop"] = True
            state.save(self.state_file)
            return h

    def seed_audit_log(self, host: str, log_path: str | Path) -> Path:
        """Copy a recorded audit log to the host's private /var/log/audit/audit.log."""
        source = Path(log_path)
        if not source.is_file():
            raise LabError(f"seed-audit: {source} is not a readable file")
        return hostfs.seed_file(self.host(host), "/var/log/audit/audit.log", source)

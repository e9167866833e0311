"""Lab VM hosts on real qemu VMs: each variant's kernel really runs the LSM / FIPS / verity.

One lab (one namespaced host, for the bridge) and one VM per variant for the module; VMs and
lab are always stopped and removed at the end. Under software emulation (no usable KVM here)
a VM needs about a minute to reach sshd and two boot at a time, so the module takes minutes.
Needs root, qemu-system-x86_64, debootstrap (first run: builds the image, ~4 min).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.analyse.avc import parse_records
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.lab import vm as vmmod
from pytest_azlinux.lab.vm import VmHost, load_vms, start_vms, stop_vms, write_vm_targets
from pytest_azlinux.lab.vm_image import VmError
from pytest_azlinux.targets import SshTarget, load_targets, ssh_host_specs
from tests.fixtures.lab import connect, make_lab, unique_lab_name

VARIANTS = ["selinux-enforcing", "selinux-permissive", "apparmor", "fips", "verity"]
# The denial workload: run cat as httpd_t (a confined web-server domain) on /etc/shadow.
DENIAL = "runcon -t httpd_t -r system_r -u system_u -- cat /etc/shadow"


@pytest.fixture(scope="module")
def vm_lab() -> Iterator[tuple[Lab, dict[str, VmHost]]]:
    with make_lab(unique_lab_name("v"), hosts=1, variants=["azl3"]) as lab:
        try:
            vms = start_vms(lab, VARIANTS)
            yield lab, {v.variant: v for v in vms}
        finally:
            stop_vms(lab)


@pytest.fixture(scope="module")
def vm_hosts(vm_lab: tuple[Lab, dict[str, VmHost]]) -> Iterator[dict[str, Host]]:
    lab, vms = vm_lab
    target = load_targets(write_vm_targets(lab)).get("lab-vm")
    assert isinstance(target, SshTarget)
    by_name = {v.name: v.variant for v in vms.values()}
    hosts = {by_name[s.name]: connect(s) for s in ssh_host_specs(target, "lab-vm")}
    try:
        yield hosts
    finally:
        for h in hosts.values():
            with contextlib.suppress(Exception):
                h.close()


@pytest.mark.parametrize("variant", VARIANTS)
def test_vm_carries_the_azure_linux_identity_on_a_debian_kernel(
    vm_hosts: dict[str, Host], vm_lab: tuple[Lab, dict[str, VmHost]], variant: str
) -> None:
    host = vm_hosts[variant]
    spec = vm_lab[1][variant].spec
    facts = host.facts
    assert facts.os_id == "azurelinux" and facts.version == "3.0.20251021"
    assert facts.variant_id == spec.variant_id
    assert facts.image_key == f"azurelinux-3.0.20251021-{spec.variant_id}"
    assert facts.kernel.endswith("-amd64"), facts.kernel  # Debian's kernel, said plainly
    for item in spec.cmdline:
        assert item in facts.cmdline
    assert host.run("sudo -n true").rc == 0  # passwordless sudo, as lab hosts


def test_selinux_enforcing_denial_is_real(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["selinux-enforcing"]
    assert host.check_output("getenforce").strip() == "Enforcing"
    res = host.run(DENIAL, sudo=True)
    assert res.rc != 0 and "Permission denied" in res.stderr
    out = host.run("ausearch --input-logs -m AVC -c runcon", sudo=True).stdout
    records = [r for r in parse_records(out) if r.verdict == "denied"]
    assert records, f"no AVC from runcon in ausearch output:\n{out[-2000:]}"
    assert all(r.permissive is False for r in records)
    assert any(r.tcontext and r.tcontext.type == "httpd_t" for r in records)


def test_selinux_permissive_logs_with_permissive_1(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["selinux-permissive"]
    assert host.check_output("getenforce").strip() == "Permissive"
    res = host.run(DENIAL, sudo=True)
    assert res.rc == 0 and "root:" in res.stdout  # permissive: the read goes through
    out = host.run("ausearch --input-logs -m AVC", sudo=True).stdout
    records = [
        r for r in parse_records(out) if r.verdict == "denied" and r.comm in ("runcon", "cat")
    ]
    assert records, f"no AVC for the workload:\n{out[-2000:]}"
    assert all(r.permissive is True for r in records)
    assert any(r.tcontext and r.tcontext.type == "shadow_t" for r in records)


def test_apparmor_is_the_active_lsm(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["apparmor"]
    assert host.read_text("/sys/module/apparmor/parameters/enabled").strip() == "Y"
    lsm = host.read_text("/sys/kernel/security/lsm").split(",")
    assert "apparmor" in lsm and "selinux" not in lsm
    assert host.run("systemctl is-active apparmor.service").stdout.strip() == "active"
    assert host.run("cat /proc/self/attr/apparmor/current").stdout.strip() == "unconfined"


def test_fips_kernel_reports_fips_enabled(vm_hosts: dict[str, Host]) -> None:
    assert vm_hosts["fips"].read_text("/proc/sys/crypto/fips_enabled").strip() == "1"
    assert vm_hosts["selinux-enforcing"].read_text("/proc/sys/crypto/fips_enabled").strip() == "0"


def test_verity_usr_is_verified_and_read_only(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["verity"]
    status = host.check_output("veritysetup status usr", sudo=True)
    assert "is active and is in use" in status
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in status.splitlines())
    )
    assert (fields.get("type"), fields.get("status")) == ("VERITY", "verified"), status
    assert "readonly" in fields.get("mode", ""), status
    assert host.check_output("findmnt -no SOURCE,OPTIONS /usr").startswith("/dev/mapper/usr ro")
    res = host.run("touch /usr/azl-write-test", sudo=True)
    assert res.rc != 0 and "Read-only file system" in res.stderr


def test_boot_timeout_is_an_error_with_console_tail_and_cleans_up(
    vm_lab: tuple[Lab, dict[str, VmHost]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A VM that does not reach sshd in time: VmError with the console, nothing left over."""
    lab, running = vm_lab
    stop_vms_for = "selinux-permissive"
    # restart one variant with a bound no VM can meet
    one = running[stop_vms_for]
    vmmod._stop_one(vmmod.VmNet.from_lab(lab), one)
    monkeypatch.setattr(vmmod, "BOOT_TIMEOUT", 3.0)
    with pytest.raises(VmError) as info:
        start_vms(lab, [stop_vms_for])
    msg = str(info.value)
    assert "sshd did not answer within 3 s" in msg and "console tail" in msg
    assert msg.split("console tail:", 1)[1].strip(), "the console tail is empty"
    assert stop_vms_for not in {v.variant for v in load_vms(vmmod.VmNet.from_lab(lab))}
    assert not Path(one.dir).exists()
    assert subprocess.run(["ip", "link", "show", one.tap], capture_output=True).returncode != 0
    assert one.address not in lab.known_hosts.read_text()
